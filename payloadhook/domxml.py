"""Domain XML: find the payload metadata and the disks, and bind one to the other.

No I/O here. The element names of CONTRACT.md section 1 appear in this module
only, with the namespace as one constant, in the reader and in the writer.

Two parsers, one reader. :func:`read_xml` (the standard library's expat and
ElementTree's C tree builder) serves the hook, which only reads: importing lxml
alone cost 16 ms of every prepare. :func:`parse_xml` (lxml) serves what edits and
writes XML back (the command, OVF, migration's filter), where lxml keeps prefixes
and comments as they were. The reader functions take either tree: they use only
``find``, ``findall``, ``get``, ``text`` and iteration over children.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxml import etree

from . import NAMESPACE
from .errors import BindingError, PayloadError, XMLError
from .model import Payload, PayloadFile, decode_content

#: libvirt refuses a domain XML over about 4 MiB on its RPC; twice that is surely hostile.
MAX_XML_BYTES = 8 * 1024 * 1024

PREFIX = "pl"
PL = "{%s}" % NAMESPACE
PAYLOADS = PL + "payloads"
PAYLOAD = PL + "payload"
VOLUME_ID = PL + "volume_id"
FILES = PL + "files"
FILE = PL + "file"
NAME = PL + "name"
CONTENT = PL + "content"


@dataclass(frozen=True)
class Disk:
    """A ``<disk>`` of the domain, as far as binding needs it."""

    target: str | None
    device: str
    kind: str
    source: str | None
    bus: str | None


@dataclass(frozen=True)
class Binding:
    """A payload and the disk whose source receives its image."""

    payload: Payload
    disk: Disk

    @property
    def source(self) -> str:
        return self.disk.source  # bind() guarantees it is set


#: What may precede the root element, or a DOCTYPE: blanks, the declaration, PIs, comments.
_PROLOG = rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*"    # compiled where used: not on the hook's path


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parser(huge_tree: bool = False) -> etree.XMLParser:
    from lxml import etree
    # No entity expansion, no DTD loading, no network: libxml2 then refuses billion-laughs
    # and external entities alike. huge_tree (text nodes over 10 MB) only where a size cap
    # bounds the document: OVF with inline content.
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True,
                           huge_tree=huge_tree, remove_comments=False)


def _check_size(data: bytes | str, what: str, max_bytes: int) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > max_bytes:
        raise XMLError(f"{what} is {len(data)} bytes, over the {max_bytes} bytes accepted")
    return data


def _check_root(root, what: str, root_tag: str | None):
    if root_tag is not None and root.tag != root_tag:
        raise XMLError(f"{what} has root element <{root.tag}>, not <{root_tag}>")
    return root


class _Refused(Exception):
    """Raised inside expat's callbacks: the document declares a DTD or an entity."""


def _refuse(*_args) -> None:
    raise _Refused()


def read_xml(data: bytes | str, what: str = "domain XML", root_tag: str | None = "domain",
             max_bytes: int = MAX_XML_BYTES):
    """Parse untrusted XML for reading only (an ElementTree element): refuse any DTD, and
    with it every entity, external or not, and oversized input.

    expat calls back here for each element and ElementTree's C tree builder builds the
    tree. Tags come out as lxml names them (``{namespace}local``), so the readers serve both."""
    import pyexpat
    from xml.etree.ElementTree import TreeBuilder

    data = _check_size(data, what, max_bytes)
    builder = TreeBuilder()
    names: dict[str, str] = {}

    def name(raw: str) -> str:
        found = names.get(raw)
        if found is None:
            found = names[raw] = "{" + raw if "}" in raw else raw
        return found

    def start(tag: str, attributes: dict[str, str]) -> None:
        builder.start(name(tag), {name(k): v for k, v in attributes.items()} if attributes else {})

    parser = pyexpat.ParserCreate(None, "}")
    parser.StartDoctypeDeclHandler = _refuse   # before any declaration inside it is read
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    parser.buffer_size = 1 << 20     # base64 arrives in few pieces, not one per line
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(name(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except _Refused:
        raise XMLError(f"{what} has a DOCTYPE; DTDs and entities are not accepted") from None
    except pyexpat.ExpatError as exc:
        raise XMLError(f"{what} is not well-formed XML: {pyexpat.ErrorString(exc.code)}, "
                       f"line {exc.lineno}, column {exc.offset}") from None
    return _check_root(builder.close(), what, root_tag)


def parse_xml(data: bytes | str, what: str = "domain XML", root_tag: str | None = "domain",
              max_bytes: int = MAX_XML_BYTES, huge_tree: bool = False) -> etree._Element:
    """Parse untrusted XML with lxml, to edit it; refuse DTDs, entities and oversized input."""
    from lxml import etree

    data = _check_size(data, what, max_bytes)
    prolog = re.compile(_PROLOG, re.S).match(data, 3 if data.startswith(b"\xef\xbb\xbf") else 0)
    if data.startswith(b"<!DOCTYPE", prolog.end()):
        raise XMLError(f"{what} has a DOCTYPE; DTDs and entities are not accepted")
    try:
        root = etree.fromstring(data, _parser(huge_tree))
    except etree.XMLSyntaxError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not well-formed"
        raise XMLError(f"{what} is not well-formed XML: {reason}") from None
    if root is None:
        raise XMLError(f"{what} is empty")
    if root.getroottree().docinfo.doctype:
        raise XMLError(f"{what} has a DOCTYPE; DTDs and entities are not accepted")
    return _check_root(root, what, root_tag)


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


def disk_elements(domain: etree._Element) -> list[etree._Element]:
    return domain.findall("devices/disk")


def disk_target(disk: etree._Element) -> str | None:
    """A ``<disk>`` element's ``<target dev=...>``."""
    target = disk.find("target")
    return target.get("dev") if target is not None else None


def disk_source(disk: etree._Element) -> str | None:
    """A ``<disk>`` element's ``<source file=...>``."""
    source = disk.find("source")
    return source.get("file") if source is not None else None


def read_disks(domain: etree._Element) -> list[Disk]:
    disks = []
    for element in disk_elements(domain):
        target = element.find("target")
        disks.append(Disk(
            target=disk_target(element),
            device=element.get("device", "disk"),
            kind=element.get("type", "file"),
            source=disk_source(element),
            bus=target.get("bus") if target is not None else None,
        ))
    return disks


def disk_for(payload: Payload, disks: list[Disk]) -> Disk:
    """The disk a payload binds to (CONTRACT.md section 1, ``target``): the one it names,
    or else the domain's one disk of its type."""
    if payload.target is not None:
        matches = [d for d in disks if d.target == payload.target]
        if not matches:
            known = ", ".join(d.target for d in disks if d.target) or "none"
            raise BindingError(f"{payload.describe()}: no disk has target {payload.target!r} (disks: {known})")
        disk = matches[0]
        if disk.device != payload.type:
            raise BindingError(f"{payload.describe()}: disk {disk.target} is a {disk.device}, not a {payload.type}")
        return disk
    matches = [d for d in disks if d.device == payload.type]
    if not matches:
        raise BindingError(f"{payload.type} payload: the domain has no {payload.type} disk to bind it to")
    if len(matches) > 1:
        names = ", ".join(str(d.target) for d in matches)
        raise BindingError(f"{payload.type} payload: several {payload.type} disks ({names}); name one with target=")
    return matches[0]


def target_of(payload: Payload, disks: list[Disk]) -> str | None:
    """The target a payload names or binds to, None where it binds to none: for listing and
    editing a definition, where a payload that cannot bind is still shown or removed."""
    if payload.target is not None:
        return payload.target
    try:
        return disk_for(payload, disks).target
    except BindingError:
        return None


def bind(payloads: list[Payload], disks: list[Disk]) -> list[Binding]:
    """Bind each payload to its disk, which must be a file and receive no other payload."""
    bindings: list[Binding] = []
    used: set[str] = set()
    for payload in payloads:
        disk = disk_for(payload, disks)
        key = disk.target or ""
        if key in used:
            raise BindingError(f"{payload.describe()}: disk {disk.target} already receives another payload")
        used.add(key)
        if disk.kind != "file" or not disk.source:
            raise BindingError(f"{payload.describe()}: disk {disk.target} needs type='file' and a <source file=...>")
        bindings.append(Binding(payload=payload, disk=disk))
    return bindings


def bindings(domain: etree._Element) -> list[Binding]:
    """The domain's payloads, each bound to its disk."""
    return bind(read_payloads(domain), read_disks(domain))


def bindings_from_xml(data: bytes | str) -> list[Binding]:
    return bindings(read_xml(data))


def domain_name(domain: etree._Element) -> str:
    name = domain.findtext("name")
    if not name:
        raise XMLError("domain XML has no <name>")
    return name


def relocate_sources(domain: etree._Element, bindings: list[Binding], image_dir: str) -> bool:
    """Point each payload disk's source into ``image_dir`` (same file name); True if any moved."""
    changed = False
    targets = {binding.disk.target for binding in bindings}
    for element in disk_elements(domain):
        source = element.find("source")
        if source is None or disk_target(element) not in targets:
            continue
        old = source.get("file", "")
        new = image_dir + "/" + old.rstrip("/").rpartition("/")[2]
        if old != new:
            source.set("file", new)
            changed = True
    return changed


def serialize(domain: etree._Element) -> bytes:
    from lxml import etree
    return etree.tostring(domain, encoding="utf-8")


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
