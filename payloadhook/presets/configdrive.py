"""The OpenStack config drive, as Nova writes it: a CD-ROM labelled ``config-2`` with

    openstack/<version>/meta_data.json     uuid, name, hostname, files
    openstack/<version>/user_data          (when given)
    openstack/<version>/network_data.json  (when given)
    openstack/<version>/vendor_data.json   (when given)

in two version directories holding the same files: ``latest`` and ``2018-08-27``.

Why both: cloud-init's reader (cloudinit/sources/helpers/openstack.py, ``_find_working_version``)
takes the newest dated directory among the versions it knows (OS_VERSIONS, 2012-08-10 to
2018-08-27 in cloud-init 22.4) and falls back to ``latest`` only when none is there, as an
older cloud-init that does not know 2018-08-27 does. Nova writes every version it serves;
the newest one cloud-init knows and ``latest`` serve both kinds of reader with two copies.

cloud-init requires ``uuid`` (it becomes the instance-id); ``hostname`` becomes
local-hostname. attach and run-once use the domain's name, and for ``uuid`` what
``--instance-id`` says (presets/instanceid.py: the domain's UUID by default); ``build``, which
has no domain, a UUID derived from a SHA-256 of every other file (the same seed keeps its
instance, a changed one is a new instance, as for NoCloud) and no name.

``meta-data=F`` is a JSON object merged over that document: its keys win (for ``build``, it is
where ``uuid``, ``name`` and ``hostname`` come from). The keys cloud-init's reader acts on are
held to what it requires of them: ``uuid``, ``name``, ``hostname`` strings (a ``uuid`` given
with ``--instance-id`` is refused: two answers to one question), ``public_keys`` an object of
strings, ``random_seed`` base64, ``files`` absent or empty (its entries name ``content/``
files the command does not write, and the reader fails on a missing one).
"""

from __future__ import annotations

import json

from ..errors import PayloadError, quote
from ..model import CDROM, Payload, PayloadFile
from . import Identity, instanceid
from .formats import check_user_data, load_json

LABEL = "config-2"
PARTS = ("user-data", "meta-data", "network-data", "vendor-data")
REQUIRED = ("user-data",)
VERSIONS = ("latest", "2018-08-27")
#: A part, and the file it becomes in each version directory.
FILE_NAMES = {"user-data": "user_data", "network-data": "network_data.json", "vendor-data": "vendor_data.json"}


def check(parts: dict[str, bytes], limit: int) -> None:
    """user_data as cloud-init acts on it; network_data.json a JSON object; vendor_data.json
    JSON (an object, a list or a string, as cloud-init's reader accepts)."""
    check_user_data(parts["user-data"], "--config-drive user-data", limit)
    if "network-data" in parts:
        if not isinstance(load_json(parts["network-data"], "--config-drive network-data"), dict):
            raise PayloadError("--config-drive network-data is not a JSON object (links, networks, services)")
    if "vendor-data" in parts:
        if not isinstance(load_json(parts["vendor-data"], "--config-drive vendor-data"), (dict, list, str)):
            raise PayloadError("--config-drive vendor-data is not a JSON object, list or string")
    if "meta-data" in parts:
        check_meta_data(load_json(parts["meta-data"], "--config-drive meta-data"))


#: Keys of meta_data.json whose value must be a string.
STRING_KEYS = ("uuid", "name", "hostname", "availability_zone", "project_id")


def check_meta_data(document) -> None:
    """A given meta_data.json, held to what cloud-init's reader requires (module doc)."""
    what = "--config-drive meta-data"
    if not isinstance(document, dict):
        raise PayloadError(f"{what} is not a JSON object")
    for key in STRING_KEYS:
        if key in document and (not isinstance(document[key], str) or not document[key]):
            raise PayloadError(f"{what}: {key} is not a non-empty string")
    if "uuid" in document and not instanceid.is_literal(document["uuid"]):
        raise PayloadError(f"{what}: uuid is not one path component of printable characters (cloud-init "
                           "makes it a directory name)")
    keys = document.get("public_keys", {})
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise PayloadError(f"{what}: public_keys is not an object of strings (name: key)")
    if "random_seed" in document:
        import binascii
        try:
            binascii.a2b_base64(document["random_seed"].encode("ascii"), strict_mode=True)
        except (AttributeError, UnicodeEncodeError, binascii.Error):
            raise PayloadError(f"{what}: random_seed is not base64") from None
    if document.get("network_config"):
        raise PayloadError(f"{what}: network_config names a content/ file this command does not write (cloud-init "
                           "then refuses the whole drive); leave it out (give --net or network-data=)")
    if "meta" in document and not isinstance(document["meta"], dict):
        raise PayloadError(f"{what}: meta is not a JSON object (cloud-init reads meta.dsmode from it)")
    if document.get("files", []) != []:
        raise PayloadError(f"{what}: files names content/ files this command does not write; leave it out "
                           "(give the files through user data)")
    for key in document:
        if not key or not key.isprintable():
            raise PayloadError(f"{what}: key {quote(key, 40)} is empty or holds a control character")


def meta_data(parts: dict[str, bytes], identity: Identity, instance_id: str | None = None) -> bytes:
    """meta_data.json: the domain's identity, the given ``meta-data`` merged over it."""
    given = json.loads(parts["meta-data"]) if "meta-data" in parts else {}
    if "uuid" in given and instance_id is not None:
        raise PayloadError("--config-drive meta-data gives a uuid, and --instance-id another: give one of them")
    document: dict = {}
    if identity.name:
        document["name"] = identity.name
    if identity.hostname:
        document["hostname"] = identity.hostname
    document["files"] = []
    document.update(given)
    if "name" in given and "hostname" not in given:
        hostname = Identity(name=given["name"]).hostname
        if hostname:
            document["hostname"] = hostname
    if "uuid" not in given:
        others = {name: parts[name] for name in parts if name != "meta-data"}
        if set(document) != {"files"}:     # a build without meta-data keeps the id it always had
            others["meta-data"] = json.dumps(document, sort_keys=True, allow_nan=False).encode()
        identity_id = instanceid.resolve(instance_id, identity, others, "uuid")
        document["uuid"] = identity_id
    first = [key for key in ("uuid", "name", "hostname") if key in document]
    document = {key: document[key] for key in first + [k for k in document if k not in first and k != "files"]
                + ["files"]}
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def build(parts: dict[str, bytes], identity: Identity, target: str | None = None,
          instance_id: str | None = None) -> Payload:
    """The config drive of checked ``parts``; ``instance_id`` the ``--instance-id`` policy or
    value."""
    meta = meta_data(parts, identity, instance_id)
    files = []
    for version in VERSIONS:
        base = f"openstack/{version}/"
        files.append(PayloadFile(base + "meta_data.json", meta))
        files.extend(PayloadFile(base + FILE_NAMES[name], parts[name]) for name in PARTS
                     if name in parts and name in FILE_NAMES)
    return Payload(type=CDROM, files=tuple(files), target=target, volume_id=LABEL)
