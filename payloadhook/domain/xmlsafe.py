"""Reading untrusted XML: domain XML and OVF, with no DTD, no entity and a size bound.

No I/O here. Two parsers: :func:`read_xml` (the standard library's expat and
ElementTree's C tree builder) serves the hook, which only reads; :func:`parse_xml`
(lxml) serves what edits and writes XML back (the command, OVF, migration's filter),
where lxml keeps prefixes and comments as they were.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxml import etree

from ..errors import XMLError

#: libvirt refuses a domain XML over about 4 MiB on its RPC; twice that is surely hostile.
MAX_XML_BYTES = 8 * 1024 * 1024

#: What may precede the root element, or a DOCTYPE: blanks, the declaration, PIs, comments.
_PROLOG = rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*"    # compiled where used: not on the hook's path



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


def serialize(domain: etree._Element) -> bytes:
    from lxml import etree
    return etree.tostring(domain, encoding="utf-8")
