"""A domain's disks as libvirt describes them (``<devices><disk device='disk'>``), and which
one an injection writes. Formats come from ``<driver type=…>`` (raw where the XML names
none, as libvirt then reads the disk); nothing is probed. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import GuestError, shown

#: The source types libguestfs is given directly: a file or a host block device.
LOCAL_TYPES = {"file": "file", "block": "dev"}


@dataclass(frozen=True)
class GuestDisk:
    target: str
    kind: str               # file, block, network, volume…
    source: str | None      # the file or device, for file and block disks
    format: str
    readonly: bool
    shareable: bool
    boot_order: int | None

    @property
    def local(self) -> bool:
        return self.source is not None


def read_disks(root) -> tuple[GuestDisk, ...]:
    """The domain's hard disks (not CD-ROMs, floppies or LUNs), in document order."""
    found = []
    for element in root.findall("devices/disk"):
        if element.get("device", "disk") != "disk":
            continue
        target = element.find("target")
        if target is None or not target.get("dev"):
            continue
        kind = element.get("type", "file")
        source = element.find("source")
        path = source.get(LOCAL_TYPES[kind]) if source is not None and kind in LOCAL_TYPES else None
        driver = element.find("driver")
        boot = element.find("boot")
        order = boot.get("order") if boot is not None else None
        found.append(GuestDisk(
            target=target.get("dev"), kind=kind, source=path or None,
            format=(driver.get("type") if driver is not None else None) or "raw",
            readonly=element.find("readonly") is not None, shareable=element.find("shareable") is not None,
            boot_order=int(order) if order and order.isdigit() else None))
    return tuple(found)


def written_disk(disks: tuple[GuestDisk, ...], target: str | None) -> GuestDisk:
    """The disk an injection writes: the one ``--disk`` names; else the only disk, or the boot
    disk (lowest boot order, else the first). Refused: a disk that is not there, read-only,
    shareable (another domain may have it open), or not a local file or block device."""
    if not disks:
        raise GuestError("the domain has no hard disk to inject into")
    if target is not None:
        chosen = next((d for d in disks if d.target == target), None)
        if chosen is None:
            raise GuestError(f"the domain has no hard disk {shown(target, 40)} (it has "
                             f"{', '.join(shown(d.target, 40) for d in disks)})")
    else:
        ordered = [d for d in disks if d.boot_order is not None]
        chosen = min(ordered, key=lambda d: d.boot_order or 0) if ordered else disks[0]
    where = f"disk {shown(chosen.target, 40)}"
    if chosen.readonly:
        raise GuestError(f"{where} is read-only (<readonly/>); payloadhook writes only a disk the domain writes")
    if chosen.shareable:
        raise GuestError(f"{where} is shareable (<shareable/>): another domain may have it open; "
                         "payloadhook does not write a shared disk")
    if not chosen.local:
        raise GuestError(f"{where} is a {shown(chosen.kind, 20)} disk; payloadhook injects into a file or "
                         "block device disk only")
    return chosen


def readable_disks(disks: tuple[GuestDisk, ...]) -> tuple[GuestDisk, ...]:
    """The disks libguestfs can be given (local ones), for inspection."""
    return tuple(d for d in disks if d.local)
