"""The disks of a domain, and the rule that binds a payload to one (CONTRACT.md section 1, ``target``).

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxml import etree

from ..errors import BindingError, XMLError
from ..model import Payload
from .metadata import read_payloads
from .xmlsafe import read_xml

@dataclass(frozen=True)
class Disk:
    """A ``<disk>`` of the domain, as far as binding needs it."""

    target: str | None
    device: str
    kind: str
    source: str | None
    bus: str | None


@dataclass(frozen=True)
class Binding:
    """A payload and the disk whose source receives its image."""

    payload: Payload
    disk: Disk

    @property
    def source(self) -> str:
        return self.disk.source  # bind() guarantees it is set



def disk_elements(domain: etree._Element) -> list[etree._Element]:
    return domain.findall("devices/disk")


def disk_target(disk: etree._Element) -> str | None:
    """A ``<disk>`` element's ``<target dev=...>``."""
    target = disk.find("target")
    return target.get("dev") if target is not None else None


def disk_source(disk: etree._Element) -> str | None:
    """A ``<disk>`` element's ``<source file=...>``."""
    source = disk.find("source")
    return source.get("file") if source is not None else None


def read_disks(domain: etree._Element) -> list[Disk]:
    disks = []
    for element in disk_elements(domain):
        target = element.find("target")
        disks.append(Disk(
            target=disk_target(element),
            device=element.get("device", "disk"),
            kind=element.get("type", "file"),
            source=disk_source(element),
            bus=target.get("bus") if target is not None else None,
        ))
    return disks


def disk_for(payload: Payload, disks: list[Disk]) -> Disk:
    """The disk a payload binds to (CONTRACT.md section 1, ``target``): the one it names,
    or else the domain's one disk of its type."""
    if payload.target is not None:
        matches = [d for d in disks if d.target == payload.target]
        if not matches:
            known = ", ".join(d.target for d in disks if d.target) or "none"
            raise BindingError(f"{payload.describe()}: no disk has target {payload.target!r} (disks: {known})")
        disk = matches[0]
        if disk.device != payload.type:
            raise BindingError(f"{payload.describe()}: disk {disk.target} is a {disk.device}, not a {payload.type}")
        return disk
    matches = [d for d in disks if d.device == payload.type]
    if not matches:
        raise BindingError(f"{payload.type} payload: the domain has no {payload.type} disk to bind it to")
    if len(matches) > 1:
        names = ", ".join(str(d.target) for d in matches)
        raise BindingError(f"{payload.type} payload: several {payload.type} disks ({names}); name one with target=")
    return matches[0]


def target_of(payload: Payload, disks: list[Disk]) -> str | None:
    """The target a payload names or binds to, None where it binds to none: for listing and
    editing a definition, where a payload that cannot bind is still shown or removed."""
    if payload.target is not None:
        return payload.target
    try:
        return disk_for(payload, disks).target
    except BindingError:
        return None


def bind(payloads: list[Payload], disks: list[Disk]) -> list[Binding]:
    """Bind each payload to its disk, which must be a file and receive no other payload."""
    bindings: list[Binding] = []
    used: set[str] = set()
    for payload in payloads:
        disk = disk_for(payload, disks)
        key = disk.target or ""
        if key in used:
            raise BindingError(f"{payload.describe()}: disk {disk.target} already receives another payload")
        used.add(key)
        if disk.kind != "file" or not disk.source:
            raise BindingError(f"{payload.describe()}: disk {disk.target} needs type='file' and a <source file=...>")
        bindings.append(Binding(payload=payload, disk=disk))
    return bindings


def bindings(domain: etree._Element) -> list[Binding]:
    """The domain's payloads, each bound to its disk."""
    return bind(read_payloads(domain), read_disks(domain))


def bindings_from_xml(data: bytes | str) -> list[Binding]:
    return bindings(read_xml(data))


def domain_name(domain: etree._Element) -> str:
    name = domain.findtext("name")
    if not name:
        raise XMLError("domain XML has no <name>")
    return name


def relocate_sources(domain: etree._Element, bindings: list[Binding], image_dir: str) -> bool:
    """Point each payload disk's source into ``image_dir`` (same file name); True if any moved."""
    changed = False
    targets = {binding.disk.target for binding in bindings}
    for element in disk_elements(domain):
        source = element.find("source")
        if source is None or disk_target(element) not in targets:
            continue
        old = source.get("file", "")
        new = image_dir + "/" + old.rstrip("/").rpartition("/")[2]
        if old != new:
            source.set("file", new)
            changed = True
    return changed
