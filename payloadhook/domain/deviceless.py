"""attach and detach of payloads without a device (network seed, fw_cfg), planned on a
view then applied to its tree, as domain/plan.py does for media.

A network payload needs three things of the definition besides its metadata, and attach
adds whichever is missing, recording what it added in ``<pl:attached>`` inside the payload
metadata, so that detach removes exactly that and nothing a user wrote:

- the SMBIOS system serial ``ds=nocloud-net;s=http://169.254.169.254/``, by which
  cloud-init's NoCloud finds the seed (Debian 12's cloud-init 22.4 reads ``ds=nocloud;...``
  as a local seed and stops; ``nocloud-net`` makes it read the seed in its network stage);
- ``<os><smbios mode='sysinfo'/>``, without which libvirt passes no sysinfo to QEMU;
- ``<filterref filter='clean-traffic'/>`` on each interface without a filter: the seed
  service answers a domain only through an interface whose filter stops MAC and IP spoofing.

An fw_cfg payload's files each get an ``<entry name='NAME' file='IMAGE_DIR/...'/>`` of
``<sysinfo type='fwcfg'>``; as with disks, an entry whose file lies in image_dir is
payloadhook's, and detach removes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BindingError, quote, shown
from ..model import FWCFG, NETWORK, Payload
from .entries import Interface
from .metadata import Added
from .view import DomainView

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    Element = Any

SEED_URL = "http://169.254.169.254/"
SEED_SERIAL = f"ds=nocloud-net;s={SEED_URL}"
CLEAN_TRAFFIC = "clean-traffic"


@dataclass(frozen=True)
class DevicelessPlan:
    """What attaching a network or fw_cfg payload changes."""

    payload: Payload
    replaces: tuple[Payload, ...]
    kept: tuple[Payload, ...]
    image_dir: str
    added: Added = Added()
    entries: tuple[tuple[str, str], ...] = ()      # (name, file) of fw_cfg entries to write
    unfiltered: tuple[str, ...] = ()               # interfaces whose own filter is not known to stop spoofing

    @property
    def target(self) -> None:
        return None

    @property
    def changes(self) -> tuple[str, ...]:
        said = []
        if self.added.serial:
            said.append(f"SMBIOS serial set to {SEED_SERIAL}")
        if self.added.smbios:
            said.append("<smbios mode='sysinfo'/> added")
        for mac in self.added.filters:
            said.append(f"clean-traffic added to interface {mac}")
        for mac in self.unfiltered:
            said.append(f"interface {mac} has a filter other than clean-traffic: not served through it")
        return tuple(said)


def entry_file(image_dir: str, domain: str, name: str) -> str:
    """Where an fw_cfg entry's file lies: the domain's name and the entry's, '/' made '_'."""
    return f"{image_dir}/{domain}-fwcfg-{name.replace('/', '_')}"


def plan_attach(view: DomainView, payload: Payload, image_dir: str) -> DevicelessPlan:
    """A network payload replaces the domain's network payload; an fw_cfg payload replaces
    the fw_cfg payload whose names it shares, or else is added beside the others."""
    domain = view.require_name()
    if payload.type == NETWORK:
        replaces = tuple(p for p in view.payloads if p.type == NETWORK)
        kept = tuple(p for p in view.payloads if p.type != NETWORK)
        added, unfiltered = _network_needs(view)
        return DevicelessPlan(payload=payload, replaces=replaces, kept=kept, image_dir=image_dir, added=added,
                              unfiltered=unfiltered)
    assert payload.type == FWCFG
    names = {item.name for item in payload.files}
    replaces = tuple(p for p in view.payloads if p.type == FWCFG and names & {i.name for i in p.files})
    kept = tuple(p for p in view.payloads if p not in replaces)
    files = [entry_file(image_dir, domain, name) for name in names]
    if len(set(files)) != len(files):
        raise BindingError("fwcfg payload: two entry names differ only in '/' and '_', and would share a file")
    taken = {item.name for p in kept if p.type == FWCFG for item in p.files}
    for entry in view.fwcfg_entries:
        if entry.name in names and entry.name not in taken and not _in_dir(entry.file, image_dir):
            raise BindingError(f"the fw_cfg entry {quote(entry.name)} is the domain's own (not in {image_dir}); "
                               "payloadhook replaces only its entries")
    entries = tuple((item.name, entry_file(image_dir, domain, item.name)) for item in payload.files)
    return DevicelessPlan(payload=payload, replaces=replaces, kept=kept, image_dir=image_dir, entries=entries)


def _in_dir(path: str | None, image_dir: str) -> bool:
    return path is not None and path.rpartition("/")[0] == image_dir


def _network_needs(view: DomainView) -> tuple[Added, tuple[str, ...]]:
    root = view.root
    serial = _serial_entry(root)
    if serial is not None and (serial.text or "") != SEED_SERIAL:
        raise BindingError(f"the domain's SMBIOS system serial is {quote(serial.text or '')}; the network seed "
                           f"needs {SEED_SERIAL} there (remove the serial to let attach set it)")
    smbios = root.find("os/smbios")
    if smbios is not None and smbios.get("mode") != "sysinfo":
        raise BindingError(f"the domain has <smbios mode={quote(smbios.get('mode') or '', 20)}>; the network "
                           "seed needs mode='sysinfo', by which libvirt passes the serial to the guest")
    if root.find("os") is None:
        raise BindingError("the domain has no <os> element")
    served = [i for i in view.interfaces if i.kind in ("network", "bridge")]
    if not served:
        raise BindingError("the domain has no interface on a libvirt network or bridge to be served through")
    filters = tuple(i.mac for i in served if i.filter is None and i.mac)
    if any(i.mac is None for i in served if i.filter is None):
        raise BindingError("an interface of the domain has no <mac address>; define the domain with libvirt first")
    unfiltered = tuple(str(i.mac) for i in served if i.filter is not None and not i.stops_spoofing)
    return Added(serial=serial is None, smbios=smbios is None, filters=filters), unfiltered


def _serial_entry(root: Element) -> Element | None:
    for sysinfo in root.findall("sysinfo"):
        if sysinfo.get("type") == "smbios":
            for entry in sysinfo.findall("system/entry"):
                if entry.get("name") == "serial":
                    return entry
    return None


def apply_attach(view: DomainView, plan: DevicelessPlan) -> None:
    image_dir = plan.image_dir
    from .metadata import read_added, set_payloads, write_added
    root = view.root
    previous = read_added(root)
    if plan.payload.type == NETWORK:
        _add_network_needs(view, plan.added)
        added = previous.merged(plan.added)
    else:
        _set_entries(root, plan, image_dir)
        added = previous
    set_payloads(root, [*plan.kept, plan.payload])
    write_added(root, added)


def _child(parent: Element, tag: str, index: int | None = None, **attrs: str) -> Element:
    from lxml import etree

    from . import layout
    element = etree.Element(tag)
    for key, value in attrs.items():
        element.set(key, value)
    layout.insert(parent, len(parent) if index is None else index, element)
    return element


def _add_network_needs(view: DomainView, added: Added) -> None:
    root = view.root
    if added.serial:
        sysinfo = next((s for s in root.findall("sysinfo") if s.get("type") == "smbios"), None)
        if sysinfo is None:
            os_element = root.find("os")
            sysinfo = _child(root, "sysinfo", root.index(os_element), type="smbios")
        system = sysinfo.find("system")
        if system is None:
            system = _child(sysinfo, "system")
        _child(system, "entry", name="serial").text = SEED_SERIAL
    if added.smbios:
        _child(root.find("os"), "smbios", mode="sysinfo")
    for interface in view.interfaces:
        if interface.mac in added.filters and interface.filter is None:
            _child(interface.element, "filterref", filter=CLEAN_TRAFFIC)


def _set_entries(root: Element, plan: DevicelessPlan, image_dir: str) -> None:
    from . import layout
    sysinfo = next((s for s in root.findall("sysinfo") if s.get("type") == "fwcfg"), None)
    if sysinfo is None:
        os_element = root.find("os")
        sysinfo = _child(root, "sysinfo", root.index(os_element) if os_element is not None else len(root),
                         type="fwcfg")
    replaced = {item.name for p in plan.replaces for item in p.files} | {name for name, _ in plan.entries}
    for entry in sysinfo.findall("entry"):
        if entry.get("name") in replaced and _in_dir(entry.get("file"), image_dir):
            layout.remove(entry)
    for name, path in plan.entries:
        _child(sysinfo, "entry", name=name, file=path)


def detach(view: DomainView, removed: tuple[Payload, ...], image_dir: str) -> tuple[str, ...]:
    """Undo what attach added for the ``removed`` deviceless payloads; return it in words."""
    from . import layout
    from .metadata import read_added, write_added
    root = view.root
    said: list[str] = []
    names = {item.name for p in removed if p.type == FWCFG for item in p.files}
    for sysinfo in [s for s in root.findall("sysinfo") if s.get("type") == "fwcfg"]:
        for entry in sysinfo.findall("entry"):
            if entry.get("name") in names and _in_dir(entry.get("file"), image_dir):
                layout.remove(entry)
                said.append(f"fw_cfg entry {shown(entry.get('name'), 60)} removed")
        if not len(sysinfo):
            layout.remove(sysinfo)
    if any(p.type == NETWORK for p in removed):
        added = read_added(root)
        serial = _serial_entry(root)
        if added.serial and serial is not None and serial.text == SEED_SERIAL:
            system = serial.getparent()
            layout.remove(serial)
            if not len(system):
                sysinfo = system.getparent()
                layout.remove(system)
                if not len(sysinfo):
                    layout.remove(sysinfo)
            said.append("SMBIOS serial removed")
        smbios = root.find("os/smbios")
        if added.smbios and smbios is not None and smbios.get("mode") == "sysinfo":
            layout.remove(smbios)
            said.append("<smbios mode='sysinfo'/> removed")
        for interface in view.interfaces:
            if interface.mac in added.filters and interface.filter == CLEAN_TRAFFIC:
                filterref = interface.element.find("filterref")
                if filterref is not None and not len(filterref):
                    layout.remove(filterref)
                    said.append(f"clean-traffic removed from interface {interface.mac}")
        write_added(root, Added())
    return tuple(said)


def served_interfaces(interfaces: tuple[Interface, ...]) -> tuple[Interface, ...]:
    """The interfaces the seed service may answer through: on a network or bridge, with a
    MAC, under a filter that stops spoofing."""
    return tuple(i for i in interfaces if i.kind in ("network", "bridge") and i.mac and i.stops_spoofing)
