"""One typed view of a domain: its name, machine, disks and payloads, read once.

Every path that reads a domain (the hook's prepare and migrate filter, attach, detach,
show, check, redaction's listing, OVF export) goes through :func:`read_domain` or
:func:`view_of`, and binds payloads to disks with :meth:`DomainView.bindings`: the rule
of docs/format.md (``target``) lives here only. Edits are planned on a view
(domain/plan.py) and applied to the tree it was read from.

No I/O here. A disk is a :class:`Disk`, with a reference to its element for the edits;
nothing else reads a ``<disk>`` element.
"""

from __future__ import annotations

from .. import has_payload_metadata
from ..errors import BindingError, XMLError, quote, shown
from ..frozen import Frozen, assign
from ..model import Payload, replace
from .entries import (
    EntryBinding,
    FwcfgEntry,
    Interface,
    bind_entries,
    network_payload,
    read_fwcfg_entries,
    read_interfaces,
)
from .metadata import DIGESTING, SKIPPING, Declared, decode, read_declared

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    Element = Any    # lxml, or the standard library's on the hook's read-only path

#: Machine families, by the bus their payload disks go on (edit.BUSES).
I440FX = "i440fx"
Q35 = "q35"


class Disk(Frozen):
    """A ``<disk>`` of the domain: what binding, the store and the edits need of it."""

    __slots__ = ("target", "device", "kind", "source", "bus", "driver_type", "element")
    _uncompared = _unshown = ("element",)
    target: str | None          # <target dev>
    device: str                 # disk (libvirt's default), cdrom, floppy, lun
    kind: str                   # <disk type>: file (libvirt's default here), block, network...
    source: str | None          # <source file>
    bus: str | None             # <target bus>
    driver_type: str | None     # <driver type>: raw, qcow2...
    element: Element            # the <disk> element, for the edits

    def __init__(self, target: str | None, device: str, kind: str, source: str | None, bus: str | None,
                 driver_type: str | None = None, element: Element = None) -> None:
        assign(self, "target", target)
        assign(self, "device", device)
        assign(self, "kind", kind)
        assign(self, "source", source)
        assign(self, "bus", bus)
        assign(self, "driver_type", driver_type)
        assign(self, "element", element)

    def describe(self) -> str:
        """'disk hdc' — for messages; the target quoted, as it comes from input."""
        return f"disk {shown(self.target, 40)}" if self.target else "a disk without target"

    def in_dir(self, image_dir: str) -> bool:
        """Whether its source lies directly in ``image_dir`` (a disk payloadhook manages)."""
        return self.source is not None and self.source.rpartition("/")[0] == image_dir


class Binding(Frozen):
    """A payload and the disk whose source receives its image."""

    __slots__ = ("payload", "disk")
    payload: Payload
    disk: Disk

    def __init__(self, payload: Payload, disk: Disk) -> None:
        assign(self, "payload", payload)
        assign(self, "disk", disk)

    @property
    def source(self) -> str:
        assert self.disk.source is not None    # bind() refuses a disk without one
        return self.disk.source


def read_disk(element: Element) -> Disk:
    target = element.find("target")
    source = element.find("source")
    driver = element.find("driver")
    return Disk(target=target.get("dev") if target is not None else None,
                device=element.get("device", "disk"),
                kind=element.get("type", "file"),
                source=source.get("file") if source is not None else None,
                bus=target.get("bus") if target is not None else None,
                driver_type=driver.get("type") if driver is not None else None,
                element=element)


def _machine_family(root: Element) -> str:
    os_type = root.find("os/type")
    machine = os_type.get("machine", "") if os_type is not None else ""
    return Q35 if "q35" in machine else I440FX


class DomainView(Frozen):
    """A domain as payloadhook sees it. ``payloads`` are decoded on first use, so that
    limits (config.check) can be checked on ``declared`` before any work."""

    __slots__ = ("name", "uuid", "machine_family", "disks", "declared", "root", "fwcfg_entries", "interfaces",
                 "_payloads")
    _uncompared = _unshown = ("root", "_payloads")
    name: str | None
    uuid: str | None
    machine_family: str
    disks: tuple[Disk, ...]
    declared: tuple[Declared, ...]
    root: Element
    fwcfg_entries: tuple[FwcfgEntry, ...]
    interfaces: tuple[Interface, ...]
    _payloads: tuple[Payload, ...] | None

    def __init__(self, name: str | None, uuid: str | None, machine_family: str, disks: tuple[Disk, ...],
                 declared: tuple[Declared, ...], root: Element, fwcfg_entries: tuple[FwcfgEntry, ...] = (),
                 interfaces: tuple[Interface, ...] = ()) -> None:
        assign(self, "name", name)
        assign(self, "uuid", uuid)
        assign(self, "machine_family", machine_family)
        assign(self, "disks", disks)
        assign(self, "declared", declared)
        assign(self, "root", root)
        assign(self, "fwcfg_entries", tuple(fwcfg_entries))
        assign(self, "interfaces", tuple(interfaces))
        assign(self, "_payloads", None)

    @property
    def payloads(self) -> tuple[Payload, ...]:
        """The declared payloads decoded and validated, once (a cache, not a field)."""
        if self._payloads is None:
            assign(self, "_payloads", tuple(decode(declared) for declared in self.declared))
        assert self._payloads is not None
        return self._payloads

    @property
    def decoded(self) -> bool:
        """Whether :attr:`payloads` were decoded (limits come before: config.check)."""
        return self._payloads is not None

    def disk(self, target: str | None) -> Disk | None:
        """The disk with that target, if any."""
        for disk in self.disks:
            if disk.target == target:
                return disk
        return None

    def disk_for(self, payload: Payload) -> Disk:
        """The disk a payload binds to (docs/format.md, ``target``): the one it names,
        or else the domain's one disk of its type."""
        return disk_for(payload, self.disks)

    def target_of(self, payload: Payload) -> str | None:
        """The target a payload names or binds to, None where it binds to none: for listing
        and editing, where a payload that cannot bind is still shown or removed."""
        if payload.target is not None:
            return payload.target
        if not payload.is_medium:
            return None
        try:
            return self.disk_for(payload).target
        except BindingError:
            return None

    def targeted(self) -> tuple[Payload, ...]:
        """The payloads, each with the target it binds to written in (where it binds): what
        OVF export records, so that an import puts each back on its disk."""
        return tuple(replace(payload, target=self.target_of(payload)) for payload in self.payloads)

    def bindings(self) -> tuple[Binding, ...]:
        """Each payload bound to its disk, which must be a raw file and receive no other."""
        return bind(self.payloads, self.disks)

    def entry_bindings(self) -> tuple[EntryBinding, ...]:
        """Each fw_cfg payload's file bound to its ``<sysinfo type='fwcfg'>`` entry."""
        return bind_entries(self.payloads, self.fwcfg_entries)

    def network_payload(self) -> Payload | None:
        """The network payload, if any (at most one)."""
        return network_payload(self.payloads)

    def require_name(self) -> str:
        if not self.name:
            raise XMLError("domain XML has no <name>")
        return self.name


def disk_for(payload: Payload, disks: tuple[Disk, ...] | list[Disk]) -> Disk:
    if payload.target is not None:
        matches = [d for d in disks if d.target == payload.target]
        if not matches:
            known = ", ".join(shown(d.target, 20) for d in disks[:16] if d.target) or "none"
            if len(disks) > 16:
                known += ", …"
            raise BindingError(f"{payload.describe()}: no disk has target {quote(payload.target, 40)} "
                               f"(disks: {known})")
        disk = matches[0]
        if disk.device != payload.type:
            raise BindingError(f"{payload.describe()}: {disk.describe()} is a {shown(disk.device, 20)}, "
                               f"not a {payload.type}")
        return disk
    matches = [d for d in disks if d.device == payload.type]
    if not matches:
        raise BindingError(f"{payload.type} payload: the domain has no {payload.type} disk to bind it to")
    if len(matches) > 1:
        names = ", ".join(shown(str(d.target), 20) for d in matches[:16]) + (", …" if len(matches) > 16 else "")
        raise BindingError(f"{payload.type} payload: several {payload.type} disks ({names}); name one with target=")
    return matches[0]


def bind(payloads: tuple[Payload, ...] | list[Payload], disks: tuple[Disk, ...] | list[Disk]) -> tuple[Binding, ...]:
    """Bind each media payload to its disk, which must be a raw file and receive no other
    payload (network and fw_cfg payloads bind to no disk: entries.py)."""
    bindings: list[Binding] = []
    used: set[str] = set()
    for payload in payloads:
        if not payload.is_medium:
            continue
        disk = disk_for(payload, disks)
        key = disk.target or ""
        if key in used:
            raise BindingError(f"{payload.describe()}: {disk.describe()} already receives another payload")
        used.add(key)
        if disk.kind != "file" or not disk.source:
            raise BindingError(f"{payload.describe()}: {disk.describe()} needs type='file' and a <source file=...>")
        if disk.driver_type not in (None, "raw"):
            # QEMU would otherwise fail later, reading the image as that format
            raise BindingError(f"{payload.describe()}: {disk.describe()} has <driver type="
                               f"{quote(disk.driver_type, 20)}>; a payload image is raw")
        bindings.append(Binding(payload=payload, disk=disk))
    return tuple(bindings)


def view_of(root: Element) -> DomainView:
    """The view of an already parsed domain (lxml for edits, or the standard library's)."""
    return DomainView(name=root.findtext("name"), uuid=root.findtext("uuid"),
                      machine_family=_machine_family(root),
                      disks=tuple(read_disk(element) for element in root.findall("devices/disk")),
                      declared=read_declared(root), root=root,
                      fwcfg_entries=read_fwcfg_entries(root), interfaces=read_interfaces(root))


def read_domain(xml: bytes | str, *, editable: bool = True) -> DomainView:
    """Read a domain XML once. ``editable`` (the default) parses with lxml, whose tree the
    edits change and write back; the hook's prepare, which only reads, passes False and
    pays for the standard library's parser only. Both read the same (test_hostile_xml.py)."""
    from .. import xmlsafe
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    del xml
    plain = has_payload_metadata(data)
    # the hook's reader digests the payload declarations from expat's events (metadata.py)
    root = xmlsafe.parse_xml(data) if editable else xmlsafe.read_xml(data, digesting=DIGESTING, skipping=SKIPPING)
    del data
    view = view_of(root)
    if view.declared and not plain:
        # the namespace spelled with character references: the hook's byte test would not see
        # the payloads the command lists
        raise XMLError("domain XML declares the payload namespace with character references; write it plainly")
    return view
