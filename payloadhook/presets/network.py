"""``--net IFACE=dhcp|ADDR/PREFIX[,gw=GW][,dns=IP+IP][,name=NAME]``: a guest's network
configuration, written as its reader wants it, as oVirt, Nova and Proxmox write it from the
machine's NICs.

- NoCloud: ``network-config`` version 2 (netplan's schema, which cloud-init reads), one
  ``ethernets`` entry per interface, matched on its MAC (``match: {macaddress: ...}``), so the
  guest's own name for it does not matter; ``set-name`` only when ``name=`` asks for it (a rename
  fights udev's predictable names and other tools).
- Config drive: ``network_data.json`` as Nova writes it: ``links`` (type ``phy``, by
  ``ethernet_mac_address``; ``name`` only when asked, which cloud-init honours), ``networks``
  (``ipv4_dhcp``, or ``ipv4``/``ipv6`` with ``ip_address``, ``netmask``, a default route
  and the network's dns ``services``) and the ``services`` (dns) of all of them.

``IFACE`` is a MAC, a target device or an index (0, 1, … in the domain's order), told apart
by its form; :func:`resolve` binds each to a MAC the domain has (``build``, without a domain,
takes MACs only). No I/O here.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

from ..errors import PayloadError, UsageError, quote

WHAT = "--net"
#: Each pattern is matched whole (fullmatch: '$' would take a trailing newline).
MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
#: A Linux interface name: at most 15 bytes (IFNAMSIZ), no '/', ':', blank or control
#: character, and not '.' or '..' (dev_valid_name).
INTERFACE_NAME = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9_.-]{1,15}")
#: A prefix length, and an interface's index: ASCII digits, bounded (str.isdigit takes '²').
PREFIX = re.compile(r"0|[1-9][0-9]{0,2}")
INDEX = re.compile(r"[0-9]{1,3}")
#: The characters of an address's text: no zone suffix, no blank, nothing else.
ADDRESS_TEXT = re.compile(r"[0-9A-Fa-f:.]{2,45}")
MAX_NETS = 64
MAX_DNS = 8

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class NetSpec:
    """One ``--net`` as given: the interface named, and its addressing."""

    iface: str
    address: IPInterface | None         # None: DHCP
    gateway: IPAddress | None = None
    dns: tuple[IPAddress, ...] = ()
    name: str | None = None             # set-name, when asked

    @property
    def dhcp(self) -> bool:
        return self.address is None


@dataclass(frozen=True)
class Nic:
    """A ``--net`` bound to the MAC of an interface (lower case, as cloud-init compares)."""

    mac: str
    spec: NetSpec


@dataclass(frozen=True)
class Interface:
    """A domain's ``<interface>``: its MAC and, where it has one, its target device."""

    mac: str | None
    target: str | None


def parse(text: str) -> NetSpec:
    """One ``--net`` value; a refusal names what is wrong, in one line."""
    iface, equals, rest = text.partition("=")
    if not equals or not iface:
        raise UsageError(f"{WHAT} {quote(text, 60)} is not IFACE=dhcp|ADDR/PREFIX[,gw=GW][,dns=IP+IP]")
    items = rest.split(",")
    head, options = items[0], items[1:]
    address = None if head == "dhcp" else _address(head, iface)
    seen: dict[str, str] = {}
    for option in options:
        key, equals, value = option.partition("=")
        if not equals or key not in ("gw", "dns", "name"):
            raise UsageError(f"{WHAT} {quote(iface, 40)}: {quote(option, 40)} is not gw=GW, dns=IP+IP or name=NAME")
        if key in seen:
            raise UsageError(f"{WHAT} {quote(iface, 40)}: {key} is given twice")
        seen[key] = value
    gateway = _gateway(seen["gw"], address, iface) if "gw" in seen else None
    dns = tuple(_ip(value, f"dns server of {quote(iface, 40)}") for value in seen["dns"].split("+")) \
        if "dns" in seen else ()
    if len(dns) > MAX_DNS:
        raise PayloadError(f"{WHAT} {quote(iface, 40)}: over {MAX_DNS} dns servers")
    name = seen.get("name")
    if name is not None and not INTERFACE_NAME.fullmatch(name):
        raise PayloadError(f"{WHAT} {quote(iface, 40)}: name {quote(name, 40)} is not an interface name "
                           "(1 to 15 of A-Z, a-z, 0-9, '_', '.', '-'; not '.' or '..')")
    return NetSpec(iface=iface, address=address, gateway=gateway, dns=dns, name=name)


def _ip(value: str, what: str) -> IPAddress:
    """An address as plain text: IPv4's dotted quad or IPv6's hex groups, nothing else (no zone
    suffix ``%...``, which ``ipaddress`` takes with any character in it, newlines included, and
    which would be written into the guest's configuration). What is written is ``str()`` of the
    parsed address, its canonical form, never the text given."""
    if ADDRESS_TEXT.fullmatch(value):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            if getattr(address, "scope_id", None) is None:
                return address
    raise PayloadError(f"{WHAT}: {what} {quote(value, 60)} is not an IP address")


def _address(value: str, iface: str) -> IPInterface:
    where = f"{WHAT} {quote(iface, 40)}"
    address, slash, prefix = value.partition("/")
    if not slash:
        raise UsageError(f"{where}: {quote(value, 60)} is neither dhcp nor ADDR/PREFIX (the prefix is required)")
    host = _ip(address, f"address of {quote(iface, 40)}")
    if not PREFIX.fullmatch(prefix) or int(prefix) > host.max_prefixlen or int(prefix) == 0:
        raise PayloadError(f"{where}: prefix {quote(prefix, 10)} is not 1 to {host.max_prefixlen} "
                           f"for an IPv{host.version} address")
    interface = ipaddress.ip_interface(f"{host}/{int(prefix)}")
    network = interface.network
    if network.num_addresses > 2 and host in (network.network_address, getattr(network, "broadcast_address", None)) \
            and host.version == 4:
        raise PayloadError(f"{where}: {host} is the network's own or broadcast address in {network}")
    return interface


def _gateway(value: str, address: IPInterface | None, iface: str) -> IPAddress:
    where = f"{WHAT} {quote(iface, 40)}"
    if address is None:
        raise UsageError(f"{where}: gw= goes with a static address; DHCP gives the gateway")
    gateway = _ip(value, f"gateway of {quote(iface, 40)}")
    if gateway.version != address.version or gateway not in address.network:
        raise PayloadError(f"{where}: gateway {gateway} is outside the network {address.network}")
    if gateway == address.ip:
        raise PayloadError(f"{where}: gateway {gateway} is the interface's own address")
    return gateway


def resolve(specs: tuple[NetSpec, ...], interfaces: tuple[Interface, ...] | None) -> tuple[Nic, ...]:
    """Each spec bound to a MAC: of the domain's ``interfaces`` (by MAC, target device or
    index), or, where there is no domain (None), the MAC given."""
    if len(specs) > MAX_NETS:
        raise PayloadError(f"{WHAT} is given over {MAX_NETS} times")
    nics: list[Nic] = []
    for spec in specs:
        mac = _mac_of(spec.iface, interfaces)
        if any(nic.mac == mac for nic in nics):
            raise PayloadError(f"{WHAT} names the interface {mac} twice")
        nics.append(Nic(mac=mac, spec=spec))
    names = [nic.spec.name for nic in nics if nic.spec.name]
    if len(names) != len(set(names)):
        raise PayloadError(f"{WHAT}: two interfaces are given the same name=")
    keys = [_key(index, nic.spec) for index, nic in enumerate(nics)]
    for index, key in enumerate(keys):
        if key in keys[:index]:
            raise PayloadError(f"{WHAT}: name={quote(key, 40)} is also the key network-config gives another "
                               "--net without name= (nicN, the Nth --net counted from 0); choose another name=")
    return tuple(nics)


def _key(index: int, spec: NetSpec) -> str:
    """An interface's key in network-config's ``ethernets``: its name= or ``nic<index>``."""
    return spec.name or f"nic{index}"


def _mac_of(iface: str, interfaces: tuple[Interface, ...] | None) -> str:
    if interfaces is None:
        if not MAC.fullmatch(iface):
            raise UsageError(f"{WHAT} {quote(iface, 40)}: build has no domain, so IFACE is the interface's MAC "
                             "(52:54:00:12:34:56)")
        return iface.lower()
    if MAC.fullmatch(iface):
        if any(i.mac == iface.lower() for i in interfaces):
            return iface.lower()
        raise PayloadError(f"{WHAT}: the domain has no interface with the MAC {iface.lower()}")
    if INDEX.fullmatch(iface):
        if int(iface) < len(interfaces) and interfaces[int(iface)].mac:
            return interfaces[int(iface)].mac    # type: ignore[return-value]
        raise PayloadError(f"{WHAT}: the domain has no interface {int(iface)} with a MAC (it has "
                           f"{len(interfaces)} interfaces, counted from 0)")
    for interface in interfaces:
        if interface.target == iface and interface.mac:
            return interface.mac
    raise PayloadError(f"{WHAT}: the domain has no interface whose target device is {quote(iface, 40)} "
                       "(name it by MAC or index: a target device is in the XML only where it was given)")


def interfaces_of(root) -> tuple[Interface, ...]:
    """A parsed domain's ``<devices><interface>``s, in order."""
    found = []
    for element in root.findall("devices/interface"):
        mac = element.find("mac")
        target = element.find("target")
        address = mac.get("address") if mac is not None else None
        found.append(Interface(mac=address.lower() if address and MAC.fullmatch(address) else None,
                               target=target.get("dev") if target is not None else None))
    return tuple(found)


def _default(version: int) -> str:
    return "0.0.0.0/0" if version == 4 else "::/0"


def network_config(nics: tuple[Nic, ...]) -> bytes:
    """NoCloud's network-config, version 2."""
    import yaml  # type: ignore[import-untyped]
    ethernets: dict = {}
    for index, nic in enumerate(nics):
        spec = nic.spec
        entry: dict = {"match": {"macaddress": nic.mac}}
        if spec.name:
            entry["set-name"] = spec.name
        if spec.address is None:
            entry["dhcp4"] = True
        else:
            entry["addresses"] = [str(spec.address)]
            if spec.gateway is not None:
                entry["routes"] = [{"to": _default(spec.gateway.version), "via": str(spec.gateway)}]
        if spec.dns:
            entry["nameservers"] = {"addresses": [str(ip) for ip in spec.dns]}
        ethernets[_key(index, spec)] = entry
    return yaml.safe_dump({"version": 2, "ethernets": ethernets}, sort_keys=False,
                          default_flow_style=False).encode()


def network_data(nics: tuple[Nic, ...]) -> bytes:
    """The config drive's network_data.json."""
    links: list[dict] = []
    networks: list[dict] = []
    services: list[dict] = []
    for index, nic in enumerate(nics):
        spec = nic.spec
        link: dict = {"id": f"nic{index}", "type": "phy", "ethernet_mac_address": nic.mac}
        if spec.name:
            link["name"] = spec.name
        links.append(link)
        network: dict = {"id": f"network{index}", "link": link["id"]}
        dns = [{"type": "dns", "address": str(ip)} for ip in spec.dns]
        if spec.address is None:
            network["type"] = "ipv4_dhcp"
        else:
            version = spec.address.version
            network.update({"type": f"ipv{version}", "ip_address": str(spec.address.ip),
                            "netmask": str(spec.address.netmask)})
            if spec.gateway is not None:
                network["routes"] = [{"network": "0.0.0.0" if version == 4 else "::",
                                      "netmask": "0.0.0.0" if version == 4 else "::",
                                      "gateway": str(spec.gateway)}]
        if dns:
            network["services"] = dns
        networks.append(network)
        services.extend(service for service in dns if service not in services)
    document = {"links": links, "networks": networks, "services": services}
    return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
