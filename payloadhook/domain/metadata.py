"""Payload metadata in a domain's <metadata> (CONTRACT.md section 1): reading and writing it.

No I/O here. The element names of the contract appear in this module only, with the
namespace as one constant. The readers take lxml or standard-library trees alike: they
use only ``find``, ``findall``, ``get``, ``text`` and iteration over children.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxml import etree

from .. import NAMESPACE
from ..errors import PayloadError
from ..model import Payload, PayloadFile, decode_content

PREFIX = "pl"
PL = "{%s}" % NAMESPACE
PAYLOADS = PL + "payloads"
PAYLOAD = PL + "payload"
VOLUME_ID = PL + "volume_id"
FILES = PL + "files"
FILE = PL + "file"
NAME = PL + "name"
CONTENT = PL + "content"


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]



def _child_text(element: etree._Element, tag: str, where: str) -> str | None:
    found = element.findall(tag)
    if len(found) > 1:
        raise PayloadError(f"{where}: more than one <{PREFIX}:{_local(tag)}>")
    if not found:
        return None
    return found[0].text or ""


def _check_children(element: etree._Element, allowed: tuple[str, ...], where: str) -> None:
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        if child.tag not in allowed:
            raise PayloadError(f"{where}: unexpected element <{_local(child.tag)}>")


def read_payloads(domain: etree._Element) -> list[Payload]:
    """The payloads declared in the domain's metadata, validated."""
    roots = domain.findall(f"metadata/{PAYLOADS}")
    if len(roots) > 1:
        raise PayloadError("domain metadata has more than one <pl:payloads> element")
    if not roots:
        return []
    _check_children(roots[0], (PAYLOAD,), "<pl:payloads>")
    return [_read_payload(element, index) for index, element in enumerate(roots[0].findall(PAYLOAD), 1)]


def _read_payload(element: etree._Element, index: int) -> Payload:
    where = f"payload {index}"
    payload_type = element.get("type")
    if payload_type is None:
        raise PayloadError(f"{where} has no type attribute; use cdrom or floppy")
    _check_children(element, (VOLUME_ID, FILES), where)
    volume_id = _child_text(element, VOLUME_ID, where)
    files_elements = element.findall(FILES)
    if len(files_elements) > 1:
        raise PayloadError(f"{where}: more than one <pl:files>")
    files = []
    for files_element in files_elements:
        _check_children(files_element, (FILE,), where)
        for file_element in files_element.findall(FILE):
            _check_children(file_element, (NAME, CONTENT), where)
            name = _child_text(file_element, NAME, where)
            if name is None:
                raise PayloadError(f"{where}: a <pl:file> has no <pl:name>")
            contents = file_element.findall(CONTENT)
            if len(contents) != 1:
                raise PayloadError(f"{where}: file {name!r} needs exactly one <pl:content>")
            content = decode_content(contents[0].text or "", contents[0].get("encoding"), name)
            files.append(PayloadFile(name=name, content=content))
    try:
        return Payload(type=payload_type, files=tuple(files), target=element.get("target"), volume_id=volume_id)
    except PayloadError as exc:
        raise PayloadError(f"{where}: {exc}") from None


def payloads_element(payloads: list[Payload]) -> etree._Element:
    """The ``<pl:payloads>`` element declaring ``payloads`` (content as base64)."""
    import base64

    from lxml import etree
    root = etree.Element(PAYLOADS, nsmap={PREFIX: NAMESPACE})
    for payload in payloads:
        element = etree.SubElement(root, PAYLOAD, type=payload.type)
        if payload.target:
            element.set("target", payload.target)
        if payload.volume_id is not None:
            etree.SubElement(element, VOLUME_ID).text = payload.volume_id
        files = etree.SubElement(element, FILES)
        for item in payload.files:
            file_element = etree.SubElement(files, FILE)
            etree.SubElement(file_element, NAME).text = item.name
            content = etree.SubElement(file_element, CONTENT, encoding="base64")
            content.text = base64.b64encode(item.content).decode("ascii")
    return root


def set_payloads(domain: etree._Element, payloads: list[Payload]) -> None:
    """Replace the domain's payload metadata with ``payloads`` (none: remove it)."""
    from lxml import etree
    metadata = domain.find("metadata")
    if metadata is not None:
        for old in metadata.findall(PAYLOADS):
            metadata.remove(old)
    if not payloads:
        if metadata is not None and len(metadata) == 0 and not (metadata.text or "").strip():
            domain.remove(metadata)
        return
    if metadata is None:
        metadata = etree.Element("metadata")
        name = domain.find("name")
        anchor = domain.find("uuid") if domain.find("uuid") is not None else name
        if anchor is not None:
            anchor.addnext(metadata)
        else:
            domain.insert(0, metadata)
    metadata.append(payloads_element(payloads))
