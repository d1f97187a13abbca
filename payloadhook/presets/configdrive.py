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
local-hostname. attach and run-once use the domain's UUID and name; ``build``, which has no
domain, a UUID derived from a SHA-256 of the parts given (the same seed keeps its instance,
a changed one is a new instance, as for NoCloud) and no name.
"""

from __future__ import annotations

import json
import uuid as uuidlib

from ..errors import PayloadError
from ..model import CDROM, Payload, PayloadFile
from . import Identity, content_id
from .formats import check_user_data, load_json

LABEL = "config-2"
PARTS = ("user-data", "network-data", "vendor-data")
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


def meta_data(parts: dict[str, bytes], identity: Identity) -> bytes:
    uuid = identity.uuid or str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "payloadhook:" + content_id(parts)))
    document: dict = {"uuid": uuid}
    if identity.name:
        document["name"] = identity.name
    if identity.hostname:
        document["hostname"] = identity.hostname
    document["files"] = []
    return (json.dumps(document, indent=2) + "\n").encode()


def build(parts: dict[str, bytes], identity: Identity, target: str | None = None) -> Payload:
    """The config drive of checked ``parts``."""
    meta = meta_data(parts, identity)
    files = []
    for version in VERSIONS:
        base = f"openstack/{version}/"
        files.append(PayloadFile(base + "meta_data.json", meta))
        files.extend(PayloadFile(base + FILE_NAMES[name], parts[name]) for name in PARTS if name in parts)
    return Payload(type=CDROM, files=tuple(files), target=target, volume_id=LABEL)
