"""Edits of a domain definition, planned on a view then applied to its tree.

``attach`` and ``detach`` (and ``run-once``, ``ovf import``) and the migrate filter each
work out what they will change as a pure function of a :class:`~.view.DomainView`
(``plan_*``), then a small function writes that plan into the lxml tree the view was read
from (``apply_*``). The plan is what the command reports ("replaced ... label cidata ->
PAYLOAD") and what the tests compare.

A payload disk is one whose source lies in image_dir; only such disks are reused by
attach and removed by detach, so a user's own CD-ROM drive is never taken over or dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BindingError, quote, shown
from ..model import CDROM, FLOPPY, IMAGE_SUFFIX, Payload, replace
from .view import I440FX, Q35, Disk, DomainView

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Target names and bus, by machine family and payload type, in the order libvirt users expect.
BUSES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    (I440FX, CDROM): ("ide", ("hdc", "hdd", "hdb", "hda")),
    (Q35, CDROM): ("sata", tuple(f"sd{c}" for c in "abcdefghijklmnopqrstuvwxyz")),
    (I440FX, FLOPPY): ("fdc", ("fda", "fdb")),
}


@dataclass(frozen=True)
class AttachPlan:
    """What attaching a payload changes in a definition."""

    payload: Payload                    # as it will be written: its target set
    target: str
    bus: str
    source: str                         # the image's path in image_dir
    disk: Disk | None                   # the disk reused; None: a new disk is added
    replaces: tuple[Payload, ...]       # payloads already bound to that disk, dropped
    kept: tuple[Payload, ...]           # every other payload, unchanged

    @property
    def new_disk(self) -> bool:
        return self.disk is None

    @property
    def changes(self) -> tuple[str, ...]:
        """What differs from the payload it replaces, in words: ('label cidata -> PAYLOAD',
        '3 files -> 4'). Empty when it replaces nothing, or an identical payload."""
        if not self.replaces:
            return ()
        old, new = self.replaces[0], self.payload
        said: list[str] = []
        if old.label != new.label:
            said.append(f"label {shown(old.label, 40)} -> {shown(new.label, 40)}")
        if len(old.files) != len(new.files):
            said.append(f"{len(old.files)} files -> {len(new.files)}")
        elif old.files != new.files:
            said.append("file contents or names changed")
        return tuple(said)


@dataclass(frozen=True)
class DetachPlan:
    """What detaching changes: the payloads removed, their payload disks removed, the rest kept."""

    removed: tuple[Payload, ...]
    disks: tuple[Disk, ...]
    kept: tuple[Payload, ...]
    image_dir: str = ""


@dataclass(frozen=True)
class Move:
    """One payload disk's source, moved into this host's image_dir by the migrate filter."""

    disk: Disk
    source: str


def plan_attach(view: DomainView, payload: Payload, image_dir: str) -> AttachPlan:
    """Where ``payload`` goes: the target it names, else the domain's payload disk of its
    type, else the first free target of the machine's bus for that type (a new disk). A
    payload without a device is planned by domain/deviceless.py."""
    if not payload.is_medium:
        from . import deviceless
        return deviceless.plan_attach(view, payload, image_dir)  # type: ignore[return-value]
    if (view.machine_family, payload.type) not in BUSES:
        raise BindingError(f"machine type {view.machine_family} has no floppy controller; use a cdrom payload")
    bus, candidates = BUSES[(view.machine_family, payload.type)]
    target = payload.target
    if target is None:
        mine = [d for d in view.disks if d.device == payload.type and d.in_dir(image_dir) and d.target]
        if mine:
            target = mine[0].target
        else:
            taken = {d.target for d in view.disks}
            free = [t for t in candidates if t not in taken]
            if not free:
                raise BindingError(f"no free {bus} target for a {payload.type} disk; name one with --target")
            target = free[0]
    assert target is not None
    disk = view.disk(target)
    if disk is not None:
        if disk.device != payload.type:
            raise BindingError(f"{disk.describe()} is a {shown(disk.device, 20)}, not a {payload.type}")
        if disk.source is not None and not disk.in_dir(image_dir):
            raise BindingError(f"{disk.describe()} holds {shown(disk.source)}; payloadhook takes over only empty "
                               f"drives or its own disks in {image_dir}")
    name = view.require_name()
    source = f"{image_dir}/{name}-{target}{IMAGE_SUFFIX[payload.type]}"
    new = replace(payload, target=target)
    # an old payload without target binds to the one disk of its type: the same disk if,
    # once this disk is added, that is still the only one
    after = [d.target for d in view.disks if d.device == payload.type]
    if disk is None:
        after.append(target)
    replaces: list[Payload] = []
    kept: list[Payload] = []
    for old in view.payloads:
        if old.target is not None:
            same = old.target == target
        else:
            same = old.type == payload.type and after == [target]
        (replaces if same else kept).append(old)
    return AttachPlan(payload=new, target=target, bus=bus, source=source, disk=disk,
                      replaces=tuple(replaces), kept=tuple(kept))


def apply_attach(view: DomainView, plan: AttachPlan) -> None:
    """Write an attach plan into the lxml tree ``view`` was read from."""
    from lxml import etree

    from . import deviceless
    if isinstance(plan, deviceless.DevicelessPlan):
        deviceless.apply_attach(view, plan)
        return

    from . import layout
    from .metadata import set_payloads
    root = view.root
    if plan.disk is not None:
        element = plan.disk.element
        element.set("type", "file")
        source = element.find("source")
        if source is None:
            source = etree.Element("source")
            target = element.find("target")
            layout.insert(element, element.index(target) if target is not None else len(element), source)
        source.attrib.clear()
        source.set("file", plan.source)
    else:
        devices = root.find("devices")
        if devices is None:
            devices = etree.Element("devices")
            layout.insert(root, len(root), devices)
        element = etree.Element("disk", type="file", device=plan.payload.type)
        etree.SubElement(element, "driver", name="qemu", type="raw")
        etree.SubElement(element, "source", file=plan.source)
        etree.SubElement(element, "target", dev=plan.target, bus=plan.bus)
        # read-only for floppies too, as oVirt attaches payloads: a write would not survive the
        # next start anyway, and libvirt counts read-only disks as safe to migrate unshared
        etree.SubElement(element, "readonly")
        existing = devices.findall("disk")
        layout.insert(devices, devices.index(existing[-1]) + 1 if existing else 0, element)
    set_payloads(root, [*plan.kept, plan.payload])


def plan_detach(view: DomainView, image_dir: str, payload_type: str | None = None,
                target: str | None = None) -> DetachPlan:
    """The payloads on ``target`` (or of ``payload_type``, or all), and their payload disks."""

    def matches(payload: Payload) -> bool:
        if target is not None:
            return view.target_of(payload) == target
        return payload_type is None or payload.type == payload_type

    removed = tuple(p for p in view.payloads if matches(p))
    if not removed:
        what = (f"on {shown(target, 40)}" if target else
                (f"of type {payload_type}" if payload_type else "at all"))
        raise BindingError(f"domain {shown(view.name or '', 60)} has no payload {what}")
    disks: list[Disk] = []
    for payload in removed:
        disk = view.disk(view.target_of(payload))
        if disk is not None and disk.in_dir(image_dir) and disk not in disks:
            disks.append(disk)
    return DetachPlan(removed=removed, disks=tuple(disks),
                      kept=tuple(p for p in view.payloads if not matches(p)), image_dir=image_dir)


def apply_detach(view: DomainView, plan: DetachPlan) -> tuple[str, ...]:
    """Write a detach plan into the lxml tree ``view`` was read from; return what it undid
    besides the payloads and their disks (for a payload without a device), in words."""
    from . import layout
    from .metadata import set_payloads
    changes: tuple[str, ...] = ()
    if any(not payload.is_medium for payload in plan.removed):
        from .deviceless import detach
        changes = detach(view, plan.removed, plan.image_dir)
    set_payloads(view.root, plan.kept)
    for disk in plan.disks:
        layout.remove(disk.element)
    return changes


def image_file_name(source: str) -> str:
    """The file name a payload disk's source ends in, which the migrate filter keeps: a
    plain name only, as prepare accepts (never '', '.', '..' or a hidden or unprintable name)."""
    from ..store.paths import is_plain_image_name
    name = source.rpartition("/")[2]
    if not is_plain_image_name(name):
        raise BindingError(f"disk source {quote(source)} does not end in a plain file name")
    return name


def plan_relocate(view: DomainView, image_dir: str) -> tuple[Move, ...]:
    """The migrate/restore filter's moves: each bound payload disk's source into ``image_dir``
    under the same file name; nothing for a source already there."""
    moves = []
    for binding in view.bindings():
        new = f"{image_dir}/{image_file_name(binding.source)}"
        if new != binding.source:
            moves.append(Move(disk=binding.disk, source=new))
    return tuple(moves)


def plan_relocate_entries(view: DomainView, image_dir: str) -> tuple[tuple[Any, str], ...]:
    """The same for fw_cfg entries: each bound entry's file into ``image_dir``, as
    (element, new path)."""
    moves = []
    for binding in view.entry_bindings():
        new = f"{image_dir}/{image_file_name(binding.source)}"
        if new != binding.source:
            moves.append((binding.entry.element, new))
    return tuple(moves)


def apply_relocate(moves: tuple[Move, ...], entries: tuple[tuple[Any, str], ...] = ()) -> None:
    for move in moves:
        element: Any = move.disk.element.find("source")
        element.set("file", move.source)
    for entry, path in entries:
        entry.set("file", path)
