"""Edits of a domain definition for ``attach`` and ``detach``: payload metadata plus its disk.

No I/O: a domain's XML element in, the same element edited. A payload disk is one whose
source lies in image_dir; only such disks are reused by ``attach`` and removed by ``detach``,
so a user's own CD-ROM drive is never taken over or dropped.
"""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from .disks import disk_elements, disk_source, disk_target, read_disks, target_of
from .metadata import read_payloads, set_payloads
from ..errors import BindingError
from ..media import image_suffix
from ..model import CDROM, FLOPPY, Payload

#: Target names and bus, by machine family and payload type, in the order libvirt users expect.
BUSES = {("i440fx", CDROM): ("ide", ["hdc", "hdd", "hdb", "hda"]),
         ("q35", CDROM): ("sata", [f"sd{c}" for c in "abcdefghijklmnopqrstuvwxyz"]),
         ("i440fx", FLOPPY): ("fdc", ["fda", "fdb"])}


def machine_family(domain: etree._Element) -> str:
    os_type = domain.find("os/type")
    machine = os_type.get("machine", "") if os_type is not None else ""
    return "q35" if "q35" in machine else "i440fx"


def is_payload_disk(disk: etree._Element, image_dir: str) -> bool:
    source = disk_source(disk)
    return source is not None and source.rpartition("/")[0] == image_dir


def attach(domain: etree._Element, payload: Payload, image_dir: str) -> Payload:
    """Add or replace ``payload`` and the disk it binds to; return it with its target set."""
    name = domain.findtext("name")
    family = machine_family(domain)
    if (family, payload.type) not in BUSES:
        raise BindingError(f"machine type {family} has no floppy controller; use a cdrom payload")
    bus, candidates = BUSES[(family, payload.type)]
    disks = disk_elements(domain)
    existing = {disk_target(d): d for d in disks}
    target = payload.target
    if target is None:
        mine = [d for d in disks if d.get("device") == payload.type and is_payload_disk(d, image_dir)]
        if mine:
            target = disk_target(mine[0])
        else:
            free = [t for t in candidates if t not in existing]
            if not free:
                raise BindingError(f"no free {bus} target for a {payload.type} disk; name one with --target")
            target = free[0]
    source = f"{image_dir}/{name}-{target}{image_suffix(payload.type)}"
    disk = existing.get(target)
    if disk is not None:
        if disk.get("device") != payload.type:
            raise BindingError(f"disk {target} is a {disk.get('device', 'disk')}, not a {payload.type}")
        if disk_source(disk) is not None and not is_payload_disk(disk, image_dir):
            raise BindingError(f"disk {target} holds {disk_source(disk)}; payloadhook takes over only empty "
                               f"drives or its own disks in {image_dir}")
        disk.set("type", "file")
        element = disk.find("source")
        if element is None:
            element = etree.Element("source")
            disk.find("target").addprevious(element) if disk.find("target") is not None else disk.append(element)
        element.attrib.clear()
        element.set("file", source)
    else:
        devices = domain.find("devices")
        if devices is None:
            devices = etree.SubElement(domain, "devices")
        disk = etree.Element("disk", type="file", device=payload.type)
        etree.SubElement(disk, "driver", name="qemu", type="raw")
        etree.SubElement(disk, "source", file=source)
        etree.SubElement(disk, "target", dev=target, bus=bus)
        # read-only for floppies too, as oVirt attaches payloads: a write would not survive the
        # next start anyway, and libvirt counts read-only disks as safe to migrate unshared
        etree.SubElement(disk, "readonly")
        after = disk_elements(domain)
        (after[-1].addnext(disk) if after else devices.insert(0, disk))
    payload = replace(payload, target=target)
    others = [p for p in read_payloads(domain) if not _same_slot(p, payload, domain)]
    set_payloads(domain, others + [payload])
    return payload


def _same_slot(old: Payload, new: Payload, domain: etree._Element) -> bool:
    if old.target is not None:
        return old.target == new.target
    # an old payload without target binds to the one disk of its type: the same disk if that is ours
    same_type = [disk_target(d) for d in disk_elements(domain) if d.get("device") == old.type]
    return old.type == new.type and same_type == [new.target]


def detach(domain: etree._Element, image_dir: str, payload_type: str | None = None,
           target: str | None = None) -> list[Payload]:
    """Remove the matching payloads and their payload disks; return what was removed."""
    payloads = read_payloads(domain)
    devices = {disk_target(d): d for d in disk_elements(domain)}
    disks = read_disks(domain)

    def matches(p: Payload) -> bool:
        if target is not None:
            return target_of(p, disks) == target
        return payload_type is None or p.type == payload_type

    removed = [p for p in payloads if matches(p)]
    if not removed:
        what = f"on {target}" if target else (f"of type {payload_type}" if payload_type else "at all")
        raise BindingError(f"domain {domain.findtext('name')} has no payload {what}")
    set_payloads(domain, [p for p in payloads if not matches(p)])
    for p in removed:
        disk = devices.get(target_of(p, disks))
        if disk is not None and is_payload_disk(disk, image_dir):
            disk.getparent().remove(disk)
    return removed
