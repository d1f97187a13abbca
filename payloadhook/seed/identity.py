"""Who is asking: the served domain a request comes from, by the kernel's tables, never by
what the request says.

A request arrives on a listener bound to one bridge (SO_BINDTODEVICE). It is the domain's
when, all at once:

1. the neighbour table of that bridge holds the peer's IPv4 address with a MAC address
   (the host resolved it to answer the connection: a host process has no neighbour entry
   on the bridge, and an address alone never names a domain);
2. the bridge's forwarding database puts that MAC on exactly one port, a tap recorded at
   the domain's ``started`` by its interface index (taps.py), whose master is that bridge:
   a neighbour that forges the MAC arrives through its own tap, which the database then
   names (and the record does not);
3. that tap's interface carries that MAC and a filter that stops MAC and IP spoofing
   (``clean-traffic``), in libvirt's live XML at started and in the seed of prepare;
4. no other served tap claims the same MAC (a second domain defined with the first's MAC).

Only then is the domain's seed read. The lookups are netlink requests (pyroute2), one
socket for the service, no child process.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..domain.entries import SPOOF_FILTERS
from .record import Tap

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

#: Neighbour states in which the entry's MAC is one the host resolved (linux/neighbour.h).
NUD_INCOMPLETE, NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_FAILED, NUD_NOARP, NUD_PERMANENT = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)
RESOLVED = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT
#: An FDB entry of the bridge itself (its own address), not one learned on a port.
NTF_SELF = 0x02
AF_BRIDGE = 7


@dataclass(frozen=True)
class Served:
    """A domain the service may answer: its seed file and taps (from the hook's records)."""

    domain: str
    uuid: str
    seed_path: str
    taps: tuple[Tap, ...]


class Kernel:
    """The kernel's tables the service reads, over one netlink socket."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def neighbour_mac(self, address: str, bridge: int) -> str | None:
        """The MAC the bridge's neighbour table resolves ``address`` to, if resolved."""
        for entry in self.ipr.get_neighbours(family=socket.AF_INET, ifindex=bridge, dst=address):
            if entry["ifindex"] == bridge and entry["state"] & RESOLVED and entry.get_attr("NDA_DST") == address:
                mac = entry.get_attr("NDA_LLADDR")
                return mac.lower() if isinstance(mac, str) else None
        return None

    def ports_of(self, mac: str, bridge: int) -> set[int]:
        """The ports of ``bridge`` its forwarding database has learned ``mac`` on."""
        ports = set()
        for entry in self.ipr.get_neighbours(family=AF_BRIDGE, master=bridge):
            if (str(entry.get_attr("NDA_LLADDR") or "").lower() == mac and not entry["flags"] & NTF_SELF
                    and entry.get_attr("NDA_MASTER") == bridge):
                ports.add(entry["ifindex"])
        return ports

    def master_of(self, ifindex: int) -> int | None:
        """The index of the device ``ifindex`` is enslaved to (its bridge), if any: by its name
        and sysfs's link, which costs a tenth of a netlink request parsed by pyroute2."""
        import os
        try:
            name = socket.if_indextoname(ifindex)
            master = os.path.basename(os.readlink(f"/sys/class/net/{name}/master"))
            return socket.if_nametoindex(master)
        except OSError:
            return None

    def ifname_of(self, ifindex: int) -> str | None:
        """The name of ``ifindex`` by a system call (if_indextoname), not a netlink request."""
        try:
            return socket.if_indextoname(ifindex)
        except OSError:
            return None

    def name_of(self, ifindex: int) -> str | None:
        try:
            links = self.ipr.get_links(ifindex)
        except Exception:
            return None
        return links[0].get_attr("IFLA_IFNAME") if links else None

    def index_of(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None


def identify(kernel: Kernel, served: Iterable[Served], peer: str, bridge: int) -> tuple[Served, Tap] | None:
    """The served domain the request from ``peer`` on ``bridge`` comes from, and the tap it
    came through, or None."""
    mac = kernel.neighbour_mac(peer, bridge)
    if mac is None:
        return None
    ports = kernel.ports_of(mac, bridge)
    if len(ports) != 1:
        return None
    port = next(iter(ports))
    claims = [(item, tap) for item in served for tap in item.taps if tap.mac == mac]
    if len(claims) != 1:    # nobody's, or two served taps with the one MAC: nobody's either
        return None
    item, tap = claims[0]
    if tap.ifindex != port or tap.filter not in SPOOF_FILTERS or kernel.ifname_of(port) != tap.dev:
        return None
    if kernel.master_of(port) != bridge:
        return None
    return item, tap
