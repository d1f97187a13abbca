"""cloud-init NoCloud: a CD-ROM labelled ``cidata`` holding ``user-data`` and ``meta-data``
at its root, and optionally ``network-config`` and ``vendor-data``.

cloud-init's DataSourceNoCloud finds the medium by its label (``cidata`` or ``CIDATA``) and
reads it with ``util.pathprefix2dict(path, required=["user-data", "meta-data"],
optional=["vendor-data", "network-config"])``; meta-data and network-config go through
``util.load_yaml`` (a mapping, or nothing), user data and vendor data through its user-data
processor (a recognised header). tests/test_presets_consumers.py feeds our images to that code.

Without a given meta-data one is generated:

- ``instance-id``: the domain's UUID. cloud-init runs its per-instance steps (users, keys,
  hostname, first-boot network) again when the instance-id changes; the UUID is what makes a
  domain that instance, so ``attach`` and ``run-once`` alike use it: a run-once start is the
  same machine, whose per-instance steps ran once already (give a meta-data with a new
  instance-id to run them again). ``build`` has no domain: it uses ``iid-`` and 16 hex digits
  of a SHA-256 of the parts given, so that rebuilding the same seed keeps the instance and a
  changed user-data, network-config or vendor-data makes a new one (cloud-localds writes a
  fixed ``iid-local01``, under which a changed seed is never applied again).
- ``local-hostname``: the domain's name as a host name (none for ``build``).
"""

from __future__ import annotations

import json

from ..model import CDROM, Payload, PayloadFile
from . import Identity, content_id
from .formats import check_mapping, check_network_config, check_user_data

LABEL = "cidata"
PARTS = ("user-data", "meta-data", "network-config", "vendor-data")
REQUIRED = ("user-data",)


def check(parts: dict[str, bytes], limit: int) -> None:
    """Each part as cloud-init reads it; ``limit`` bounds gzipped user data once expanded."""
    check_user_data(parts["user-data"], "--cloud-init user-data", limit)
    if "vendor-data" in parts:
        check_user_data(parts["vendor-data"], "--cloud-init vendor-data", limit)
    if "meta-data" in parts:
        check_mapping(parts["meta-data"], "--cloud-init meta-data", empty=True)
    if "network-config" in parts:
        check_network_config(parts["network-config"], "--cloud-init network-config")


def meta_data(parts: dict[str, bytes], identity: Identity) -> bytes:
    """The meta-data generated where none is given (see the module doc). JSON strings are
    YAML's double-quoted scalars: any name reads back as it was."""
    instance_id = identity.uuid or "iid-" + content_id(parts)[:16]
    lines = [f"instance-id: {json.dumps(instance_id)}"]
    if identity.hostname:
        lines.append(f"local-hostname: {json.dumps(identity.hostname)}")
    return ("\n".join(lines) + "\n").encode()


def build(parts: dict[str, bytes], identity: Identity, target: str | None = None) -> Payload:
    """The NoCloud seed of checked ``parts``."""
    given = dict(parts)
    if "meta-data" not in given:
        given["meta-data"] = meta_data(parts, identity)
    files = tuple(PayloadFile(name, given[name]) for name in PARTS if name in given)
    return Payload(type=CDROM, files=files, target=target, volume_id=LABEL)
