"""Reading untrusted XML: domain XML and OVF, with no DTD, no entity and a size bound.

No I/O here. Two parsers, one reading: :func:`read_xml` (expat, driven by expattree.py)
serves the hook's ``prepare``, which only reads and must not pay for lxml;
:func:`parse_xml` (lxml) serves what edits and writes XML back (the command, OVF, the
migrate filter), where lxml keeps prefixes and comments as they were. Both refuse the same
documents (DTDs, entities, oversized, not UTF-8 compatible), keep comments and processing
instructions as children, and the metadata reader refuses them where the two parsers would
read text differently; tests/test_hostile_xml.py feeds both the same documents.
Messages never quote document text: parse errors give the parser's reason and a position.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxml import etree

from .errors import XMLError

#: libvirt refuses a domain XML over about 4 MiB on its RPC; twice that is surely hostile.
MAX_XML_BYTES = 8 * 1024 * 1024

#: What may precede the root element, or a DOCTYPE: blanks, the declaration, PIs, comments.
_PROLOG = rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*"    # compiled where used: not on the hook's path



def _parser(huge_tree: bool = False, keep_cdata: bool = False) -> etree.XMLParser:
    from lxml import etree
    # No entity expansion, no DTD loading, no network: libxml2 then refuses billion-laughs
    # and external entities alike. huge_tree (text nodes over 10 MB) only where a size cap
    # bounds the document: OVF with inline content.
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True,
                           huge_tree=huge_tree, remove_comments=False, strip_cdata=not keep_cdata)


def _check_size(data: bytes | str, what: str, max_bytes: int) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > max_bytes:
        raise XMLError(f"{what} is {len(data)} bytes, over the {max_bytes} bytes accepted")
    # UTF-16 or UTF-32: the hook's cheap byte test for the namespace would miss its metadata,
    # and the hook would build nothing where the command lists payloads. libvirt writes UTF-8.
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        raise XMLError(f"{what} is not in UTF-8 (nor an encoding ASCII text reads the same in)")
    _check_declared_encoding(data, what)
    return data


#: The encodings a document may declare: expat and libxml2 read these the same (UTF-8).
_ENCODINGS = (b"utf-8", b"us-ascii")
_BLANKS = b" \t\r\n"


def _check_declared_encoding(data: bytes, what: str) -> None:
    """Refuse a document whose XML declaration names an encoding other than UTF-8 or US-ASCII,
    or that does not start with '<' (EBCDIC, which libxml2 guesses from the first bytes): for
    any other encoding expat and libxml2 read different text (Shift_JIS, MacRoman), or expat
    fails (UTF-7, windows-874). Bytes only, linear, no re (the hook's path)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data[start:start + 1] != b"<":
        head = data[start:start + 4]
        # UTF-16 or UTF-32 without a BOM ('<' after or before NULs), or EBCDIC's '<?xm'
        if head[:1] == b"\x00" or head[1:2] == b"\x00" or head == b"\x4c\x6f\xa7\x94":
            raise XMLError(f"{what} is not UTF-8 (UTF-16, UTF-32 or EBCDIC); only UTF-8 (or US-ASCII) is accepted")
        return      # blanks, or not XML at all: no declaration can follow, and the parsers say so
    if not data.startswith(b"<?xml", start) or data[start + 5:start + 6] not in (b" ", b"\t", b"\r", b"\n"):
        return
    end = data.find(b"?>", start)
    declaration = data[start + 5:end if end >= 0 else len(data)]
    at = declaration.find(b"encoding")
    if at < 0:
        return
    rest = declaration[at + len(b"encoding"):].lstrip(_BLANKS)
    name = rest[:40]
    if rest[:1] == b"=":
        rest = rest[1:].lstrip(_BLANKS)
        close = rest.find(rest[:1], 1) if rest[:1] in (b"'", b'"') else -1
        name = rest[1:close] if close > 0 else rest[:40]
        if name.lower() in _ENCODINGS:
            return
    from .errors import quote
    raise XMLError(f"{what} declares the encoding {quote(name, 40)}; only UTF-8 (or US-ASCII) is accepted")


def _check_root(root: Any, what: str, root_tag: str | None) -> Any:
    if root_tag is not None and root.tag != root_tag:
        from .errors import shown
        raise XMLError(f"{what} has root element <{shown(str(root.tag), 60)}>, not <{root_tag}>")
    return root


def read_xml(data: bytes | str, what: str = "domain XML", root_tag: str | None = "domain",
             max_bytes: int = MAX_XML_BYTES, digesting: Any = None, skipping: Any = None) -> Any:
    """Parse untrusted XML for reading only (a read-only tree, expattree.py), with expat:
    refuse any DTD, and with it every entity, external or not, and oversized input.

    Comments and processing instructions are kept in the tree, as lxml keeps them, so that
    the metadata reader sees mixed content the same way on both trees (metadata.py).
    Tags come out as lxml names them (``{namespace}local``), so the readers serve both.
    ``digesting``: elements read from the parser's events rather than kept as a tree
    (expattree.Digest; the hook's payload declarations); ``skipping``: elements left out
    (expattree.Skipping; other applications' metadata)."""
    from .expattree import parse
    return _check_root(parse(_check_size(data, what, max_bytes), what, digesting, skipping), what, root_tag)


def parse_xml(data: bytes | str, what: str = "domain XML", root_tag: str | None = "domain",
              max_bytes: int = MAX_XML_BYTES, huge_tree: bool = False,
              keep_cdata: bool = False) -> etree._Element:
    """Parse untrusted XML with lxml, to edit it; refuse DTDs, entities and oversized input.
    ``keep_cdata``: CDATA sections stay CDATA when written back (an OVF merge changes only
    its payload items)."""
    import re

    from lxml import etree

    data = _check_size(data, what, max_bytes)
    prolog = re.compile(_PROLOG, re.S).match(data, 3 if data.startswith(b"\xef\xbb\xbf") else 0)
    if prolog is not None and data.startswith(b"<!DOCTYPE", prolog.end()):
        raise XMLError(f"{what} has a DOCTYPE; DTDs and entities are not accepted")
    from .expattree import check_attributes
    check_attributes(data, what)    # linear, before libxml2, quadratic in one element's attributes
    try:
        root = etree.fromstring(data, _parser(huge_tree, keep_cdata))
    except etree.XMLSyntaxError as exc:
        # libxml2's message can quote the document (a tag, an entity name, content): give the
        # error's type and position only
        raise XMLError(f"{what} is not well-formed XML: {_lxml_reason(getattr(exc, 'code', 0))}, "
                       f"line {exc.position[0]}, column {exc.position[1]}") from None
    if root is None:
        raise XMLError(f"{what} is empty")
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype:
        raise XMLError(f"{what} has a DOCTYPE; DTDs and entities are not accepted")
    checked: etree._Element = _check_root(root, what, root_tag)
    return checked


def _lxml_reason(code: int) -> str:
    """libxml2's error type in words: ERR_TAG_NAME_MISMATCH -> 'tag name mismatch'."""
    from lxml import etree
    for key, value in vars(etree.ErrorTypes).items():
        if value == code and "ERR_" in key:
            return str(key).partition("ERR_")[2].replace("_", " ").lower()
    return f"error {code}"


def serialize(domain: etree._Element) -> bytes:
    """The document as UTF-8, with the comments and processing instructions around its root
    (one a line, as virsh and editors leave them): a round trip changes only what was edited."""
    from lxml import etree
    before = [etree.tostring(node, encoding="utf-8", with_tail=False) + b"\n"
              for node in reversed(list(domain.itersiblings(preceding=True)))]
    after = [b"\n" + etree.tostring(node, encoding="utf-8", with_tail=False) for node in domain.itersiblings()]
    return b"".join([*before, etree.tostring(domain, encoding="utf-8", with_tail=False), *after])
