"""Writing payloads into OVF: a new envelope (``export``), or an existing OVF whose payload
items alone are replaced (``merge``).

Without content an item carries each file's name and size only: a SHA-256 of content that
is not there gives a short secret away (a 4-digit PIN comes back from its digest in
milliseconds), so digests are written only when asked for (``with_digests``) or beside the
content they describe.
"""

from __future__ import annotations

import base64
import re

from lxml import etree

from ..model import CDROM, Payload
from .envelope import OVF_NAMESPACES, RASD, RESOURCE_TYPES, XSI, children, hardware_section, parse_ovf, vm_payload

#: What may precede the root element: a byte order mark, blanks, the declaration, PIs, comments.
_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)


def payload_item(payload: Payload, item_tag: str, with_content: bool, with_digests: bool = False,
                 unqualify: bool = False) -> etree._Element:
    """An Item for one payload. Its oVirt children (Type, Device, SpecParams...) are
    unqualified, as oVirt writes them; ``unqualify`` (the Item sits under a default
    namespace, VMware's style) declares ``xmlns=""`` on them so they stay so."""
    target = payload.target or ""
    item = etree.Element(item_tag, nsmap={"rasd": RASD})
    for name, value in (("Caption", f"payload {payload.type} {target}".strip()),
                        ("InstanceId", f"payloadhook-{target or payload.type}"),
                        ("ResourceType", RESOURCE_TYPES[payload.type]),
                        ("ElementName", f"payload-{target or payload.type}")):
        etree.SubElement(item, f"{{{RASD}}}{name}").text = value
    _plain(item, "Type", unqualify).text = "disk"
    _plain(item, "Device", unqualify).text = payload.type
    _plain(item, "IsReadOnly", unqualify).text = "true" if payload.type == CDROM else "false"
    vm = etree.SubElement(_plain(item, "SpecParams", unqualify), "vmPayload")
    if payload.volume_id is not None:
        etree.SubElement(vm, "volId").text = payload.volume_id
    if payload.target is not None:
        etree.SubElement(vm, "target").text = payload.target
    for entry in payload.files:
        element = etree.SubElement(vm, "file")
        etree.SubElement(element, "path").text = entry.name
        etree.SubElement(element, "size").text = str(entry.size)
        if entry.sealed is not None:
            # sealed: never a hash, never plaintext; with content, the sealed blob as it is
            # (it opens only for the domain it was sealed for: reseal --from-uuid rebinds it)
            if with_content:
                content = etree.SubElement(element, "content", encoding="sealed", key=entry.sealed.key_id)
                content.text = base64.b64encode(entry.sealed.blob).decode()
            else:
                etree.SubElement(element, "sealed", key=entry.sealed.key_id)
            continue
        if with_content or with_digests:
            etree.SubElement(element, "sha256").text = entry.sha256
        if with_content:
            content = etree.SubElement(element, "content", encoding="base64")
            content.text = base64.b64encode(entry.content).decode()
    return item


def _plain(parent: etree._Element, tag: str, unqualify: bool) -> etree._Element:
    """An unqualified child; under a default namespace, declared so (xmlns=""): lxml would
    otherwise write it bare, and a reader would take it into that namespace."""
    if unqualify:
        return etree.SubElement(parent, tag, nsmap={None: ""})  # type: ignore[dict-item]
    return etree.SubElement(parent, tag)


def export(payloads: list[Payload], name: str, with_content: bool = False, with_digests: bool = False) -> bytes:
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
        section.append(payload_item(payload, f"{{{ovf}}}Item", with_content, with_digests))
    etree.indent(envelope)
    return etree.tostring(envelope, encoding="UTF-8", xml_declaration=True, pretty_print=True)


def merge(ovf: bytes, payloads: list[Payload], with_content: bool = False, with_digests: bool = False) -> bytes:
    """The OVF with its payload items replaced by ``payloads``; nothing else changes: the
    prolog (declaration with its standalone, comments) is copied as it was, CDATA stays
    CDATA, the new elements are in the dialect's Item element and otherwise unqualified."""
    envelope = parse_ovf(ovf, keep_cdata=True)
    section = hardware_section(envelope)
    items = children(section, "Item")
    for item in items:
        if vm_payload(item) is not None:
            _remove_keeping_layout(item)
    remaining = [i for i in items if vm_payload(i) is None]
    if remaining:
        item_tag = remaining[0].tag            # the dialect's own: unqualified (oVirt) or ovf:Item
    else:
        namespace = etree.QName(section).namespace
        item_tag = f"{{{namespace}}}Item" if namespace else "Item"
    anchor = remaining[-1] if remaining else None
    depth = sum(1 for _ in section.iterancestors()) + 1
    unqualify = bool(section.nsmap.get(None))
    for payload in payloads:
        item = payload_item(payload, item_tag, with_content, with_digests, unqualify)
        etree.indent(item, space="  ", level=depth)
        if anchor is not None:
            # the new item takes the anchor's place in the layout: the anchor gets the
            # spacing that precedes it, the item the spacing that followed the anchor
            previous = anchor.getprevious()
            before = previous.tail if previous is not None else section.text
            after = anchor.tail
            anchor.addnext(item)
            item.tail, anchor.tail = after, before
        else:
            section.append(item)
        anchor = item
    tree = envelope.getroottree()
    written = etree.tostring(tree, encoding=tree.docinfo.encoding or "UTF-8", xml_declaration=True)
    assert isinstance(written, bytes)
    # the original prolog, byte for byte, in place of lxml's; and its trailing blanks
    body = written[_prolog_end(written):]
    trailing = ovf[len(ovf.rstrip()):]
    return ovf[:_prolog_end(ovf)] + body.rstrip() + trailing


def _prolog_end(document: bytes) -> int:
    match = _PROLOG.match(document)
    return match.end() if match else 0


def _remove_keeping_layout(element: etree._Element) -> None:
    previous = element.getprevious()
    parent = element.getparent()
    assert parent is not None    # an Item inside its section
    if previous is not None:
        previous.tail = element.tail
    else:
        parent.text = element.tail
    parent.remove(element)
