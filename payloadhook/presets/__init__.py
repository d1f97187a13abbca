"""Presets (README, "Presets"): the four well-known payloads, laid out from a few named
parts as their readers look for them.

One module per preset, each named for what it builds, as cloud-init names its data sources:

- cloudinit.py    cloud-init NoCloud, a CD-ROM labelled ``cidata``
- configdrive.py  the OpenStack config drive, a CD-ROM labelled ``config-2``
- sysprep.py      a Windows answer file, on a floppy or a CD-ROM
- ovfenv.py       an OVF environment document (DMTF DSP0243's ISO transport)
- ignition.py     an Ignition config, as the fw_cfg entry opt/com.coreos/config

Each has ``check(parts)`` (the format's own rules, before anything is written; a
:class:`~payloadhook.errors.PayloadError` with one line when not) and ``build(parts, ...)``
(a :class:`~payloadhook.model.Payload`). No I/O here, and nothing heavy at import: ``show``
imports :func:`recognise` to name what a domain holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..model import Payload

CLOUD_INIT = "cloud-init"
CONFIG_DRIVE = "config-drive"
SYSPREP = "sysprep"
OVF_ENV = "ovf-env"
IGNITION = "ignition"
KINDS = (CLOUD_INIT, CONFIG_DRIVE, SYSPREP, OVF_ENV, IGNITION)

#: What ``show`` calls each.
DESCRIPTIONS = {CLOUD_INIT: "cloud-init NoCloud", CONFIG_DRIVE: "OpenStack config drive",
                SYSPREP: "Windows answer file", OVF_ENV: "OVF environment", IGNITION: "Ignition config"}


@dataclass(frozen=True)
class Identity:
    """What a preset says of the machine: the domain's UUID and name (None for ``build``,
    which has no domain)."""

    uuid: str | None = None
    name: str | None = None

    @property
    def hostname(self) -> str | None:
        """The name as a host name (RFC 1123 label: a-z, 0-9 and '-', at most 63), as Nova
        sanitises an instance's display name; None when nothing is left."""
        if not self.name:
            return None
        label = re.sub(r"[^a-z0-9-]+", "-", self.name.lower())[:63].strip("-")
        return label or None


def content_id(parts: dict[str, bytes]) -> str:
    """A digest of the parts (names, lengths, contents): what stands in for a domain's
    UUID where ``build`` has none, the same for the same inputs and new when one changes."""
    import hashlib
    digest = hashlib.sha256()
    for name in sorted(parts):
        digest.update(b"%s\0%d\0" % (name.encode(), len(parts[name])))
        digest.update(parts[name])
    return digest.hexdigest()


def recognise(payload: Payload) -> str | None:
    """Which preset ``payload`` is, by its label and file names (never its content); None
    for a payload laid out by hand."""
    names = {f.name for f in payload.files}
    label = (payload.label or "").lower()
    seed = payload.type == "network"    # a seed served over the network has no label
    if (payload.type in ("cdrom", "floppy") and label == "cidata" or seed) and {"user-data", "meta-data"} <= names <= \
            {"user-data", "meta-data", "vendor-data", "network-config"}:
        return CLOUD_INIT
    if (payload.type == "cdrom" and label == "config-2" or seed) and "openstack/latest/meta_data.json" in names:
        return CONFIG_DRIVE
    folded = {name.casefold() for name in names}
    if folded and folded <= {"autounattend.xml", "unattend.xml"}:
        return SYSPREP
    if payload.type == "cdrom" and folded == {"ovf-env.xml"}:
        return OVF_ENV
    if payload.type == "fwcfg" and names == {"opt/com.coreos/config"}:
        return IGNITION
    return None
