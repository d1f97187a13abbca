"""cloud-init NoCloud: a CD-ROM labelled ``cidata`` holding ``user-data`` and ``meta-data``
at its root, and optionally ``network-config`` and ``vendor-data``.

cloud-init's DataSourceNoCloud finds the medium by its label (``cidata`` or ``CIDATA``) and
reads it with ``util.pathprefix2dict(path, required=["user-data", "meta-data"],
optional=["vendor-data", "network-config"])``; meta-data and network-config go through
``util.load_yaml`` (a mapping, or nothing), user data and vendor data through its user-data
processor (a recognised header). tests/test_presets_consumers.py feeds our images to that code.

Without a given meta-data one is generated:

- ``instance-id``: as ``--instance-id`` says (presets/instanceid.py): by default the domain's
  UUID under ``attach`` and ``run-once`` (a run-once start is the same machine, whose
  per-instance steps ran once already), and under ``build``, which has no domain, ``iid-`` and
  16 hex digits of a SHA-256 of every other file of the seed, so that rebuilding the same seed
  keeps the instance and a changed user-data, network-config or vendor-data makes a new one
  (cloud-localds writes a fixed ``iid-local01``, under which a changed seed is never applied
  again). ``--instance-id content`` gives that digest under ``attach`` too.
- ``local-hostname``: the domain's name as a host name (none for ``build``).

The same files go on a FAT floppy labelled ``CIDATA`` with ``--type floppy`` (NoCloud looks
for the label in either case, on any file system blkid reads).
"""

from __future__ import annotations

import json

from ..model import CDROM, FLOPPY, Payload, PayloadFile
from . import Identity, instanceid
from .formats import check_mapping, check_network_config, check_user_data

LABEL = "cidata"
#: FAT labels are upper case; cloud-init looks for both.
FLOPPY_LABEL = "CIDATA"
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


def meta_data(parts: dict[str, bytes], identity: Identity, instance_id: str | None = None) -> bytes:
    """The meta-data generated where none is given (see the module doc), each value a YAML
    double-quoted scalar (:func:`_scalar`) that reads back as it was."""
    rest = f"local-hostname: {_scalar(identity.hostname)}\n" if identity.hostname else ""
    others = dict(parts)
    if rest:
        others["meta-data"] = rest.encode()
    value = instanceid.resolve(instance_id, identity, others, "iid-")
    return (f"instance-id: {_scalar(value)}\n" + rest).encode()


#: What YAML reads as a line break (or drops) inside a double-quoted scalar: escaped.
_YAML_BREAKS = {"\x85": "\\x85", "\u2028": "\\u2028", "\u2029": "\\u2029", "\ufeff": "\\ufeff"}


def _scalar(value: str) -> str:
    """``value`` as a YAML double-quoted scalar: JSON's escapes (YAML reads them alike) for
    quotes, backslashes and control characters, every other character as itself. Not JSON's
    ``\\ud83d\\ude00`` for a character outside the BMP: YAML reads that as two lone surrogates,
    and cloud-init could not make the instance's directory of them."""
    text = json.dumps(value, ensure_ascii=False)
    for char, escape in _YAML_BREAKS.items():
        text = text.replace(char, escape)
    return text


def build(parts: dict[str, bytes], identity: Identity, target: str | None = None, instance_id: str | None = None,
          medium: str = CDROM) -> Payload:
    """The NoCloud seed of checked ``parts`` on ``medium`` (cdrom or floppy); ``instance_id``
    the ``--instance-id`` policy or value, for a generated meta-data."""
    given = dict(parts)
    if "meta-data" not in given:
        given["meta-data"] = meta_data(parts, identity, instance_id)
    files = tuple(PayloadFile(name, given[name]) for name in PARTS if name in given)
    return Payload(type=medium, files=files, target=target, volume_id=FLOPPY_LABEL if medium == FLOPPY else LABEL)
