"""Payloads to and from OVF (DMTF DSP0243, envelope 1.x and 2.x; oVirt's and VMware's dialects).

A payload travels as one ``Item`` of the ``VirtualHardwareSection`` per disk, in the shape
oVirt gives its devices: ``rasd:ResourceType`` 15 (CD-ROM) or 14 (floppy), unqualified
``Type``/``Device``/``SpecParams`` children (as ovirt-engine's OvfWriter writes them), and
the payload under ``SpecParams/vmPayload``::

    <Item>
      <rasd:Caption>payload cdrom hdc</rasd:Caption>
      <rasd:InstanceId>payloadhook-hdc</rasd:InstanceId>
      <rasd:ResourceType>15</rasd:ResourceType>
      <rasd:ElementName>payload-hdc</rasd:ElementName>
      <Type>disk</Type>
      <Device>cdrom</Device>
      <IsReadOnly>true</IsReadOnly>
      <SpecParams>
        <vmPayload>
          <volId>config-2</volId>
          <target>hdc</target>
          <file>
            <path>openstack/latest/meta_data.json</path>
            <size>14</size>
            <sha256>...</sha256>
            <content encoding="base64">...</content>      (only with --with-content)
          </file>
        </vmPayload>
      </SpecParams>
    </Item>

Content is left out unless asked for: oVirt left payloads out of its OVF because they may
hold secrets, and an OVF travels further than a domain definition. Everything else in an
OVF is kept as it is: merge only adds (or replaces) payload items.
"""

from __future__ import annotations

import base64
import os

from lxml import etree

from .domain.xmlsafe import parse_xml
from .errors import PayloadError, XMLError
from .model import CDROM, FLOPPY, Payload, PayloadFile, decode_content

OVF_NAMESPACES = ("http://schemas.dmtf.org/ovf/envelope/1", "http://schemas.dmtf.org/ovf/envelope/1/",
                  "http://schemas.dmtf.org/ovf/envelope/2")
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
RESOURCE_TYPES = {CDROM: "15", FLOPPY: "14"}   # oVirt's OvfHardware.CD and .Floppy; DMTF CIM values too
#: An OVF with inline content is larger than a domain XML: the payload limits bound it, not libvirt's RPC.
MAX_OVF_BYTES = 256 * 1024 * 1024


def parse_ovf(data: bytes) -> etree._Element:
    """Parse an untrusted OVF: no DTD, no entities, no network, bounded in size."""
    root = parse_xml(data, what="OVF", root_tag=None, max_bytes=MAX_OVF_BYTES, huge_tree=True)
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or namespace not in OVF_NAMESPACES:
        raise XMLError(f"OVF has root element <{etree.QName(root).localname}> in namespace {namespace!r}; "
                       "expected an OVF 1.x or 2.x Envelope")
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


def _rasd(element: etree._Element, name: str) -> str | None:
    return element.findtext(f"{{{RASD}}}{name}")


def _child(element: etree._Element, name: str) -> etree._Element | None:
    """A child by local name: oVirt's children are unqualified, in a default-namespace
    OVF (VMware's) they take the Item's namespace."""
    for child in element:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return child
    return None


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str) and etree.QName(c).localname == name]


def _text(element: etree._Element, name: str) -> str | None:
    child = _child(element, name)
    return None if child is None else (child.text or "")


def _vm_payload(item: etree._Element) -> etree._Element | None:
    spec = _child(item, "SpecParams")
    return None if spec is None else _child(spec, "vmPayload")


def _is_payload_item(item: etree._Element) -> bool:
    return _vm_payload(item) is not None


def payload_item(payload: Payload, item_tag: str, with_content: bool, qualify: bool = False) -> etree._Element:
    """An Item for one payload. Its oVirt children (Type, Device, SpecParams...) are
    unqualified, as oVirt writes them, except under a default namespace (VMware-style
    OVFs), where ``qualify`` puts them in the Item's namespace: lxml would otherwise
    write them without the xmlns="" that keeps them unqualified."""
    target = payload.target or ""
    item = etree.Element(item_tag, nsmap={"rasd": RASD})
    namespace = etree.QName(item_tag).namespace
    q = (lambda name: f"{{{namespace}}}{name}") if qualify and namespace else (lambda name: name)
    for name, value in (("Caption", f"payload {payload.type} {target}".strip()),
                        ("InstanceId", f"payloadhook-{target or payload.type}"),
                        ("ResourceType", RESOURCE_TYPES[payload.type]),
                        ("ElementName", f"payload-{target or payload.type}")):
        etree.SubElement(item, f"{{{RASD}}}{name}").text = value
    etree.SubElement(item, q("Type")).text = "disk"
    etree.SubElement(item, q("Device")).text = payload.type
    etree.SubElement(item, q("IsReadOnly")).text = "true" if payload.type == CDROM else "false"
    vm_payload = etree.SubElement(etree.SubElement(item, q("SpecParams")), q("vmPayload"))
    if payload.volume_id is not None:
        etree.SubElement(vm_payload, q("volId")).text = payload.volume_id
    if payload.target is not None:
        etree.SubElement(vm_payload, q("target")).text = payload.target
    for entry in payload.files:
        element = etree.SubElement(vm_payload, q("file"))
        etree.SubElement(element, q("path")).text = entry.name
        etree.SubElement(element, q("size")).text = str(entry.size)
        etree.SubElement(element, q("sha256")).text = entry.sha256
        if with_content:
            content = etree.SubElement(element, q("content"), encoding="base64")
            content.text = base64.b64encode(entry.content).decode()
    return item


def merge(ovf: bytes, payloads: list[Payload], with_content: bool = False) -> bytes:
    """The OVF with its payload items replaced by ``payloads``; nothing else changes."""
    envelope = parse_ovf(ovf)
    section = hardware_section(envelope)
    items = _children(section, "Item")
    for item in items:
        if _is_payload_item(item):
            _remove_keeping_layout(item)
    remaining = [i for i in items if not _is_payload_item(i)]
    if remaining:
        item_tag = remaining[0].tag            # the dialect's own: unqualified (oVirt) or ovf:Item
    else:
        namespace = etree.QName(section).namespace
        item_tag = f"{{{namespace}}}Item" if namespace else "Item"
    anchor = remaining[-1] if remaining else None
    depth = sum(1 for _ in section.iterancestors()) + 1
    qualify = etree.QName(item_tag).namespace is not None and \
        section.nsmap.get(None) == etree.QName(item_tag).namespace
    for payload in payloads:
        item = payload_item(payload, item_tag, with_content, qualify)
        etree.indent(item, space="  ", level=depth)
        if anchor is not None:
            # the new item takes the anchor's place in the layout: the anchor gets the
            # spacing that precedes it, the item the spacing that followed the anchor
            before = anchor.getprevious().tail if anchor.getprevious() is not None else section.text
            after = anchor.tail
            anchor.addnext(item)
            item.tail, anchor.tail = after, before
        else:
            section.append(item)
        anchor = item
    declaration = ovf.lstrip().startswith(b"<?xml")
    return etree.tostring(envelope.getroottree(), encoding="UTF-8", xml_declaration=declaration)


def _remove_keeping_layout(element: etree._Element) -> None:
    previous = element.getprevious()
    parent = element.getparent()
    if previous is not None:
        previous.tail = element.tail
    else:
        parent.text = element.tail
    parent.remove(element)


def export(payloads: list[Payload], name: str, with_content: bool = False) -> bytes:
    """A minimal OVF 1.x envelope that carries the payloads of one virtual system."""
    ovf = OVF_NAMESPACES[0]
    envelope = etree.Element(f"{{{ovf}}}Envelope", nsmap={"ovf": ovf, "rasd": RASD, "xsi": XSI})
    etree.SubElement(envelope, f"{{{ovf}}}References")
    system = etree.SubElement(envelope, f"{{{ovf}}}VirtualSystem", {f"{{{ovf}}}id": name})
    etree.SubElement(system, f"{{{ovf}}}Info").text = "A virtual system's payloads, by payloadhook"
    etree.SubElement(system, f"{{{ovf}}}Name").text = name
    section = etree.SubElement(system, f"{{{ovf}}}VirtualHardwareSection")
    etree.SubElement(section, f"{{{ovf}}}Info").text = "Payload devices"
    for payload in payloads:
        section.append(payload_item(payload, f"{{{ovf}}}Item", with_content))
    etree.indent(envelope)
    return etree.tostring(envelope, encoding="UTF-8", xml_declaration=True, pretty_print=True)


def read_payloads(ovf: bytes, files_from: str | None = None) -> list[Payload]:
    """The payloads an OVF carries, checked by the same rules as the hook's.

    A file without content is taken from ``files_from`` (by its path below it) and must
    match the recorded size and SHA-256; without ``files_from`` it is an error that
    names every file missing.
    """
    section = hardware_section(parse_ovf(ovf))
    payloads, missing = [], []
    for item in _children(section, "Item"):
        vm_payload = _vm_payload(item)
        if vm_payload is None:
            continue
        resource = _rasd(item, "ResourceType")
        payload_type = {v: k for k, v in RESOURCE_TYPES.items()}.get(resource or "")
        if payload_type is None or (_text(item, "Device") or payload_type) != payload_type:
            raise PayloadError(f"OVF payload item has ResourceType {resource!r}; expected 15 (cdrom) or 14 (floppy)")
        files = []
        for element in _children(vm_payload, "file"):
            path = _text(element, "path") or ""
            size, digest = _text(element, "size"), _text(element, "sha256")
            content_element = _child(element, "content")
            if content_element is not None:
                content = decode_content(content_element.text or "", content_element.get("encoding"), path)
            elif files_from is not None:
                content = _from_directory(files_from, path)
            else:
                missing.append(path)
                continue
            entry = PayloadFile(name=path, content=content)
            if size is not None and size != str(entry.size):
                raise PayloadError(f"OVF file {path!r}: {entry.size} bytes, but the OVF records {size}")
            if digest is not None and digest != entry.sha256:
                raise PayloadError(f"OVF file {path!r}: SHA-256 differs from the one the OVF records")
            files.append(entry)
        payloads.append(Payload(type=payload_type, files=tuple(files), target=_text(vm_payload, "target"),
                                volume_id=_text(vm_payload, "volId")))
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise PayloadError(f"OVF carries no content for {shown}; give --files-from DIR")
    return payloads


def _from_directory(directory: str, path: str) -> bytes:
    # The path was not checked yet (the Payload checks it after): refuse a way out first.
    if path.startswith("/") or ".." in path.split("/") or "\0" in path:
        raise PayloadError(f"OVF file path {path!r} is not a relative path")
    try:
        with open(os.path.join(directory, path), "rb") as stream:
            return stream.read()
    except OSError as exc:
        raise PayloadError(f"OVF file {path!r}: cannot read it from {directory}: {exc.strerror}") from None
