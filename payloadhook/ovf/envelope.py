"""The OVF envelope: parsing it safely, finding its hardware section and its children.

Elements are matched by local name: oVirt writes ``Type``, ``Device``, ``SpecParams`` and
what they hold unqualified, a default-namespace OVF (VMware's style) may put them in the
envelope's namespace; both read the same.
"""

from __future__ import annotations

from lxml import etree

from ..errors import XMLError, shown
from ..model import CDROM, FLOPPY, FWCFG, NETWORK
from ..xmlsafe import parse_xml

OVF_NAMESPACES = ("http://schemas.dmtf.org/ovf/envelope/1", "http://schemas.dmtf.org/ovf/envelope/1/",
                  "http://schemas.dmtf.org/ovf/envelope/2")
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
RESOURCE_TYPES = {CDROM: "15", FLOPPY: "14"}   # oVirt's OvfHardware.CD and .Floppy; DMTF CIM values too
TYPES_BY_RESOURCE = {value: key for key, value in RESOURCE_TYPES.items()}
#: Payloads without a device are CIM's "Other" (1), told apart by their <Device>.
OTHER_RESOURCE = "1"
RESOURCE_TYPES.update({NETWORK: OTHER_RESOURCE, FWCFG: OTHER_RESOURCE})
#: An OVF with inline content is larger than a domain XML: the payload limits bound it, not libvirt's RPC.
MAX_OVF_BYTES = 256 * 1024 * 1024


def parse_ovf(data: bytes, keep_cdata: bool = False) -> etree._Element:
    """Parse an untrusted OVF: no DTD, no entities, no network, bounded in size."""
    root = parse_xml(data, what="OVF", root_tag=None, max_bytes=MAX_OVF_BYTES, huge_tree=True,
                     keep_cdata=keep_cdata)
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or namespace not in OVF_NAMESPACES:
        raise XMLError(f"OVF has root element <{shown(etree.QName(root).localname, 60)}> in namespace "
                       f"'{shown(namespace, 100)}'; expected an OVF 1.x or 2.x Envelope")
    return root


def hardware_section(envelope: etree._Element) -> etree._Element:
    """The first virtual system's hardware section: <VirtualHardwareSection> (DMTF, VMware)
    or <Section xsi:type="ovf:VirtualHardwareSection_Type"> (oVirt)."""
    for element in envelope.iter():
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        if name == "VirtualHardwareSection" or (
                name == "Section" and (element.get(f"{{{XSI}}}type") or "").endswith("VirtualHardwareSection_Type")):
            return element
    raise XMLError("OVF has no VirtualHardwareSection")


def rasd(element: etree._Element, name: str) -> str | None:
    return element.findtext(f"{{{RASD}}}{name}")


def child(element: etree._Element, name: str) -> etree._Element | None:
    """A child by local name."""
    for candidate in element:
        if isinstance(candidate.tag, str) and etree.QName(candidate).localname == name:
            return candidate
    return None


def children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str) and etree.QName(c).localname == name]


def text(element: etree._Element, name: str) -> str | None:
    found = child(element, name)
    return None if found is None else (found.text or "")


def vm_payload(item: etree._Element) -> etree._Element | None:
    """An Item's SpecParams/vmPayload: what makes it a payload item."""
    spec = child(item, "SpecParams")
    return None if spec is None else child(spec, "vmPayload")


def payload_items(section: etree._Element) -> list[etree._Element]:
    return [item for item in children(section, "Item") if vm_payload(item) is not None]
