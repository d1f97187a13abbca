"""A domain's devices that are not disks, as payloads without a device bind to them
(the network seed and fw_cfg): fw_cfg entries and network interfaces.

No I/O here. An fw_cfg payload's file binds to the ``<sysinfo type='fwcfg'><entry
name='NAME' file='PATH'/>`` of its name, as a media payload binds to a disk through its
source: PATH lies in image_dir, and the hook writes the file there at prepare. A network
payload binds to no element; the seed service finds the domain by its interfaces, which
must each carry a filter that stops MAC and IP spoofing.
"""

from __future__ import annotations

from ..errors import BindingError, quote
from ..frozen import Frozen, assign
from ..model import FWCFG, NETWORK, Payload, PayloadFile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    Element = Any

#: libvirt's filters that stop a guest sending with another MAC or IP address than its own:
#: clean-traffic, and the filters built on it (libvirt's examples/nwfilter).
SPOOF_FILTERS = frozenset({"clean-traffic", "clean-traffic-gateway"})


class FwcfgEntry(Frozen):
    """An ``<entry>`` of ``<sysinfo type='fwcfg'>``: its name, and its file or inline value."""

    __slots__ = ("name", "file", "element")
    _uncompared = _unshown = ("element",)
    name: str | None
    file: str | None
    element: Element

    def __init__(self, name: str | None, file: str | None, element: Element = None) -> None:
        assign(self, "name", name)
        assign(self, "file", file)
        assign(self, "element", element)


class EntryBinding(Frozen):
    """An fw_cfg payload's file and the path its entry reads it from."""

    __slots__ = ("payload", "item", "entry")
    payload: Payload
    item: PayloadFile
    entry: FwcfgEntry

    def __init__(self, payload: Payload, item: PayloadFile, entry: FwcfgEntry) -> None:
        assign(self, "payload", payload)
        assign(self, "item", item)
        assign(self, "entry", entry)

    @property
    def source(self) -> str:
        assert self.entry.file is not None    # bind_entries() refuses an entry without one
        return self.entry.file


class Interface(Frozen):
    """An ``<interface>`` of the domain: what the seed service and attach need of it."""

    __slots__ = ("kind", "mac", "network", "bridge", "tap", "filter", "element")
    _uncompared = _unshown = ("element",)
    kind: str                   # <interface type>: network, bridge, direct...
    mac: str | None             # <mac address>, lower-case
    network: str | None         # <source network>
    bridge: str | None          # <source bridge> (libvirt writes it for type network too, live)
    tap: str | None             # <target dev>, live only
    filter: str | None          # <filterref filter>
    element: Element

    def __init__(self, kind: str, mac: str | None, network: str | None, bridge: str | None, tap: str | None,
                 filter: str | None, element: Element = None) -> None:
        for name, value in (("kind", kind), ("mac", mac), ("network", network), ("bridge", bridge),
                            ("tap", tap), ("filter", filter), ("element", element)):
            assign(self, name, value)

    def describe(self) -> str:
        return f"interface {self.mac}" if self.mac else "an interface without a MAC address"

    @property
    def stops_spoofing(self) -> bool:
        return self.filter in SPOOF_FILTERS


def read_fwcfg_entries(root: Element) -> tuple[FwcfgEntry, ...]:
    return tuple(FwcfgEntry(name=entry.get("name"), file=entry.get("file"), element=entry)
                 for sysinfo in root.findall("sysinfo") if sysinfo.get("type") == "fwcfg"
                 for entry in sysinfo.findall("entry"))


def read_interfaces(root: Element) -> tuple[Interface, ...]:
    interfaces = []
    for element in root.findall("devices/interface"):
        mac, source, target, filterref = (element.find(tag) for tag in ("mac", "source", "target", "filterref"))
        interfaces.append(Interface(
            kind=element.get("type", ""),
            mac=(mac.get("address") or "").lower() or None if mac is not None else None,
            network=source.get("network") if source is not None else None,
            bridge=source.get("bridge") if source is not None else None,
            tap=target.get("dev") if target is not None else None,
            filter=filterref.get("filter") if filterref is not None else None,
            element=element))
    return tuple(interfaces)


def network_payload(payloads: tuple[Payload, ...]) -> Payload | None:
    """The domain's network payload: at most one (the seed service serves one per domain)."""
    found = [payload for payload in payloads if payload.type == NETWORK]
    if len(found) > 1:
        raise BindingError(f"the domain declares {len(found)} network payloads; at most one is served")
    return found[0] if found else None


def bind_entries(payloads: tuple[Payload, ...], entries: tuple[FwcfgEntry, ...]) -> tuple[EntryBinding, ...]:
    """Each fw_cfg payload's file bound to the entry of its name, which must read a file
    (``file=``) and receive no other file; a name is one entry, across all fw_cfg payloads."""
    by_name: dict[str, list[FwcfgEntry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name or "", []).append(entry)
    bindings: list[EntryBinding] = []
    seen: set[str] = set()
    for payload in payloads:
        if payload.type != FWCFG:
            continue
        for item in payload.files:
            if item.name in seen:
                raise BindingError(f"fwcfg payload: entry {quote(item.name)} is declared twice")
            seen.add(item.name)
            found = by_name.get(item.name, [])
            if not found:
                raise BindingError(f"fwcfg payload: no <sysinfo type='fwcfg'> entry is named {quote(item.name)}")
            if len(found) > 1:
                raise BindingError(f"fwcfg payload: several fw_cfg entries are named {quote(item.name)}")
            if not found[0].file:
                raise BindingError(f"fwcfg payload: the fw_cfg entry {quote(item.name)} needs file=... "
                                   "(the hook writes that file), not a value")
            bindings.append(EntryBinding(payload=payload, item=item, entry=found[0]))
    return tuple(bindings)
