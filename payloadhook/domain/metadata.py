"""Payload metadata in a domain's <metadata> (docs/format.md): reading and writing it.

No I/O here. The element names of the contract appear in this module only, with the
namespace as one constant. Reading is in two steps, so that limits can be checked before
any content is decoded: :func:`read_declared` reads the structure as written (names,
encodings, the content's text), :func:`decode` turns one declaration into a validated
:class:`~payloadhook.model.Payload`.

The readers take lxml trees and the standard library's (built with comments and processing
instructions kept, see xmlsafe.read_xml) alike: they use only ``find``, ``findall``,
``get``, ``text``, ``len`` and iteration over children. A ``<pl:name>``, ``<pl:content>`` or
``<pl:volume_id>`` must hold text only: a comment, processing instruction or element inside
one is refused, because parsers disagree on what text surrounds it (expat joins the two
pieces, lxml's ``.text`` stops at the first), and the guest would get what ``show`` does
not list.
"""

from __future__ import annotations

from .. import NAMESPACE
from ..errors import PayloadError, quote, shown
from ..expattree import Digest, tree_name
from ..expattree import Element as ExpatElement
from ..frozen import Frozen, assign
from ..model import SEAL_OVERHEAD, Payload, PayloadFile, Sealed, check_key_id, decode_content

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Callable

    from lxml import etree

    Element = Any    # an lxml element, or a standard-library one (read-only paths)

PREFIX = "pl"
PL = "{" + NAMESPACE + "}"
PAYLOADS = PL + "payloads"
PAYLOAD = PL + "payload"
VOLUME_ID = PL + "volume_id"
FILES = PL + "files"
FILE = PL + "file"
NAME = PL + "name"
CONTENT = PL + "content"
#: What attach added to the definition for a network payload besides its metadata
#: (domain/deviceless.py): ``serial="yes" smbios="yes" filters="MAC MAC"``; detach removes that.
ATTACHED = PL + "attached"
#: What ``inject`` wrote into the domain's own disk (payloadhook/inject/record.py reads it);
#: kept as it is by every edit of the payloads.
INJECTED = PL + "injected"

#: Where the payload metadata sits in a domain.
PAYLOADS_PATH = f"metadata/{PAYLOADS}"

_BLANKS = " \t\n\r"
#: The ASCII characters str.split() drops.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


class DeclaredFile(Frozen):
    """One ``<pl:file>`` as written: its name, and its content not yet decoded (sealed
    content names its key: docs/format.md, "Sealed content")."""

    # Four fields, not five (its size is worked out when asked, in time linear in the text):
    # 64 bytes, not 72, the size of the names the hook reads with them, so that the space
    # they leave once decoded goes to what is built next, not only to more names.
    __slots__ = ("name", "encoding", "text", "key")
    _unshown = ("text",)
    name: str
    encoding: str | None
    text: str
    key: str | None

    def __init__(self, name: str, encoding: str | None, text: str, key: str | None = None) -> None:
        assign(self, "name", name)
        assign(self, "encoding", encoding)
        assign(self, "text", text)
        assign(self, "key", key)

    @property
    def size(self) -> int:
        """The decoded size, worked out without decoding (for limits checked before work);
        of sealed content, what it opens to."""
        return _decoded_size(self.text, self.encoding)

    @property
    def sealed(self) -> bool:
        return self.encoding == "sealed"


def _decoded_size(text: str, encoding: str | None) -> int:
    """What ``text`` decodes to, in bytes, without decoding it or copying it (its blanks are
    counted, not removed: an 8 MiB document's content is not held twice for this)."""
    if not text:
        return 0
    if encoding == "text":
        return len(text.encode("utf-8", "surrogatepass"))
    if not text.isascii():
        compact = "".join(text.split())
        length, tail = len(compact), compact[len(compact.rstrip("=")):]
    elif any(ch in text for ch in _BLANKS):    # then every blank str.split() drops goes
        length = len(text) - sum(text.count(ch) for ch in _ASCII_WHITESPACE)
        tail = text[len(text.rstrip(_ASCII_WHITESPACE + "=")):]
    else:
        length, tail = len(text), text[len(text.rstrip("=")):]
    decoded = max(0, length * 3 // 4 - min(tail.count("="), 2))
    return max(0, decoded - SEAL_OVERHEAD) if encoding == "sealed" else decoded


class Declared(Frozen):
    """One ``<pl:payload>`` as written, structure checked, content not decoded."""

    __slots__ = ("index", "type", "target", "volume_id", "files")
    index: int
    type: str
    target: str | None
    volume_id: str | None
    files: tuple[DeclaredFile, ...]

    def __init__(self, index: int, type: str, target: str | None, volume_id: str | None,
                 files: tuple[DeclaredFile, ...]) -> None:
        assign(self, "index", index)
        assign(self, "type", type)
        assign(self, "target", target)
        assign(self, "volume_id", volume_id)
        assign(self, "files", files)

    @property
    def where(self) -> str:
        return f"payload {self.index}"

    @property
    def size(self) -> int:
        return sum(item.size for item in self.files)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


# The refusals of a declaration's structure, each written once: the tree's reader and the
# hook's digest of expat's events (PayloadDigest) give the same words, in the same order.

def _not_only_text(tag: str) -> str:
    return f": <{PREFIX}:{_local(tag)}> holds a comment, processing instruction or element; only text is accepted there"


def _more_than_one(tag: str) -> str:
    return f": more than one <{PREFIX}:{_local(tag)}>"


def _unexpected(tag: str) -> str:
    return f": unexpected element <{shown(_local(tag), 40)}>"


def _no_type() -> str:
    return " has no type attribute; use cdrom, floppy, network or fwcfg"


_NO_NAME = ": a <pl:file> has no <pl:name>"


def _not_one_content(name: str) -> str:
    return f": file {quote(name)} needs exactly one <pl:content>"


def _text_of(element: Element, where: str) -> str:
    """An element's text, which must be all it holds."""
    if len(element):
        raise PayloadError(where + _not_only_text(element.tag))
    return element.text or ""


def _only_child(element: Element, tag: str, where: str) -> Element | None:
    found = element.findall(tag)
    if len(found) > 1:
        raise PayloadError(where + _more_than_one(tag))
    return found[0] if found else None


def _check_children(element: Element, allowed: tuple[str, ...], where: str) -> None:
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions between elements are harmless
        if child.tag not in allowed:
            raise PayloadError(where + _unexpected(child.tag))


def payloads_root(domain: Element) -> Element | None:
    """The domain's ``<pl:payloads>`` element, if any (more than one is refused)."""
    roots = domain.findall(PAYLOADS_PATH)
    if len(roots) > 1:
        raise PayloadError("domain metadata has more than one <pl:payloads> element")
    return roots[0] if roots else None


def read_declared(domain: Element) -> tuple[Declared, ...]:
    """The payloads declared in the domain's metadata, structure checked, nothing decoded."""
    root = payloads_root(domain)
    if root is None:
        return ()
    _check_children(root, (PAYLOAD, ATTACHED, INJECTED), f"<{PREFIX}:payloads>")
    return tuple(_read_declared(element, index) for index, element in enumerate(root.findall(PAYLOAD), 1))


def _read_declared(element: Element, index: int) -> Declared:
    if isinstance(element, DigestedPayload):
        return element.declared(index)
    where = f"payload {index}"
    payload_type = element.get("type")
    if payload_type is None:
        raise PayloadError(where + _no_type())
    _check_children(element, (VOLUME_ID, FILES), where)
    volume = _only_child(element, VOLUME_ID, where)
    files_element = _only_child(element, FILES, where)
    files: list[DeclaredFile] = []
    if files_element is not None:
        _check_children(files_element, (FILE,), where)
        for file_element in files_element.findall(FILE):
            _check_children(file_element, (NAME, CONTENT), where)
            name_element = _only_child(file_element, NAME, where)
            if name_element is None:
                raise PayloadError(where + _NO_NAME)
            name = _text_of(name_element, where)
            contents = file_element.findall(CONTENT)
            if len(contents) != 1:
                raise PayloadError(where + _not_one_content(name))
            text = _text_of(contents[0], f"{where}: file {quote(name)}")
            files.append(DeclaredFile(name=name, encoding=contents[0].get("encoding"), text=text,
                                      key=contents[0].get("key")))
    return Declared(index=index, type=payload_type, target=element.get("target"),
                    volume_id=_text_of(volume, where) if volume is not None else None, files=tuple(files))


# -- the hook's reading: declarations from expat's events ------------------------------

#: What an element inside a declaration is to the digest: its role.
_OTHER, _PAYLOAD, _VOLUME, _FILES, _FILE, _NAME, _CONTENT = range(7)
#: The elements whose text is read, which must hold nothing else.
_TEXTS = (_VOLUME, _NAME, _CONTENT)
#: The attributes of a file's content that has none (nothing writes to them).
_NO_ATTRIBUTES: dict[str, str] = {}
#: The contract's elements as expat names them (expattree.Digest).
_EXPAT = {tag: NAMESPACE + "}" + _local(tag) for tag in (VOLUME_ID, FILES, FILE, NAME, CONTENT)}


class PayloadDigest(Digest):
    """One ``<pl:payload>`` read from expat's events as the tree's reader reads its element
    (``_read_declared``): the same declaration, or the same first refusal, found in the
    same order, without a tree of three elements a file. What the tree's reader checks
    over all of an element's children before it looks into any (an unexpected element,
    one too many) is kept apart from what it finds in them, so that the first refusal is
    the tree reader's whatever order the document holds them in."""

    __slots__ = ("attrib", "done", "roles", "pieces", "unexpected", "volumes", "volume", "volume_mixed", "lists",
                 "files_unexpected", "files", "file_error", "file_unexpected", "names", "name", "name_mixed",
                 "contents", "content", "content_attrib", "content_mixed")

    def __init__(self, _tag: str, attrib: dict[str, str], done: Callable[[ExpatElement], None]) -> None:
        self.attrib = attrib
        self.done: Callable[[ExpatElement], None] | None = done
        self.roles = [_PAYLOAD]
        self.pieces: list[str] = []               # the text of the element read (roles in _TEXTS)
        self.unexpected: str | None = None        # the payload's first unexpected child
        self.volumes = 0
        self.volume: str | None = None
        self.volume_mixed = False
        self.lists = 0                            # <pl:files> elements
        self.files_unexpected: str | None = None  # the first <pl:files>' first unexpected child
        self.files: list[DeclaredFile] = []
        self.file_error: str | None = None        # the first file's refusal, less its "payload N"
        self._new_file()

    def _new_file(self) -> None:
        self.file_unexpected: str | None = None
        self.names = self.contents = 0
        self.name = self.content = ""
        self.name_mixed = self.content_mixed = False
        self.content_attrib: dict[str, str] = _NO_ATTRIBUTES

    def start(self, tag: str, attrib: dict[str, str], _name: str = _EXPAT[NAME], _content: str = _EXPAT[CONTENT],
              _file: str = _EXPAT[FILE], _files: str = _EXPAT[FILES], _volume: str = _EXPAT[VOLUME_ID]) -> None:
        roles = self.roles
        parent = roles[-1]
        if parent == _FILE:
            if tag == _name:
                self.names += 1
                if self.names == 1:
                    self.pieces = []
                    roles.append(_NAME)
                    return
            elif tag == _content:
                self.contents += 1
                if self.contents == 1:
                    self.content_attrib = attrib
                    self.pieces = []
                    roles.append(_CONTENT)
                    return
            elif self.file_unexpected is None:
                self.file_unexpected = tag
        elif parent == _FILES:
            if tag == _file:
                self.file_unexpected = None    # _new_file(), inline: this runs for every file
                self.names = self.contents = 0
                self.name = self.content = ""
                self.name_mixed = self.content_mixed = False
                self.content_attrib = _NO_ATTRIBUTES
                roles.append(_FILE)
                return
            if self.files_unexpected is None:
                self.files_unexpected = tag
        elif parent == _PAYLOAD:
            if tag == _files:
                self.lists += 1
                if self.lists == 1:
                    roles.append(_FILES)
                    return
            elif tag == _volume:
                self.volumes += 1
                if self.volumes == 1:
                    self.pieces = []
                    roles.append(_VOLUME)
                    return
            elif self.unexpected is None:
                self.unexpected = tag
        elif parent in _TEXTS:
            self._mixed(parent)
        roles.append(_OTHER)

    def _mixed(self, role: int) -> None:
        if role == _NAME:
            self.name_mixed = True
        elif role == _CONTENT:
            self.content_mixed = True
        else:
            self.volume_mixed = True

    def data(self, text: str) -> None:
        if self.roles[-1] in _TEXTS:
            self.pieces.append(text)

    def other(self, *_args: str) -> None:
        if self.roles[-1] in _TEXTS:
            self._mixed(self.roles[-1])

    def end(self, _tag: str) -> None:
        role = self.roles.pop()
        if role == _NAME:
            pieces = self.pieces
            self.name = pieces[0] if len(pieces) == 1 else "".join(pieces)
        elif role == _CONTENT:
            pieces = self.pieces
            self.content = pieces[0] if len(pieces) == 1 else "".join(pieces)
        elif role == _FILE:
            if self.file_error is not None:
                return      # the first refusal is kept; no more declarations are made
            if (self.names == 1 and self.contents == 1 and self.file_unexpected is None
                    and not self.name_mixed and not self.content_mixed):    # _file_error() is None
                attrib = self.content_attrib
                self.files.append(DeclaredFile(self.name, attrib.get("encoding"), self.content, attrib.get("key")))
            else:
                self.file_error = self._file_error()
        elif role == _VOLUME:
            pieces = self.pieces
            self.volume = pieces[0] if len(pieces) == 1 else "".join(pieces)
        elif role == _PAYLOAD:
            done, self.done = self.done, None    # the parser's state: not held by the tree (no cycle)
            assert done is not None
            done(DigestedPayload(self))

    def _file_error(self) -> str | None:
        """The refusal of the file just ended, as ``_read_declared`` words it, or None."""
        if self.file_unexpected is not None:
            return _unexpected(tree_name(self.file_unexpected))
        if self.names > 1:
            return _more_than_one(NAME)
        if not self.names:
            return _NO_NAME
        if self.name_mixed:
            return _not_only_text(NAME)
        if self.contents != 1:
            return _not_one_content(self.name)
        if self.content_mixed:
            return f": file {quote(self.name)}" + _not_only_text(CONTENT)
        return None

    def declared(self, index: int) -> Declared:
        where = f"payload {index}"
        payload_type = self.attrib.get("type")
        first = (_no_type() if payload_type is None
                 else _unexpected(tree_name(self.unexpected)) if self.unexpected is not None
                 else _more_than_one(VOLUME_ID) if self.volumes > 1
                 else _more_than_one(FILES) if self.lists > 1
                 else _unexpected(tree_name(self.files_unexpected)) if self.files_unexpected is not None
                 else self.file_error if self.file_error is not None
                 else _not_only_text(VOLUME_ID) if self.volume_mixed
                 else None)
        if first is not None:
            raise PayloadError(where + first)
        assert payload_type is not None
        return Declared(index=index, type=payload_type, target=self.attrib.get("target"),
                        volume_id=self.volume, files=tuple(self.files))


class DigestedPayload(ExpatElement):
    """What stands for a ``<pl:payload>`` in the hook's tree: its attributes, no children,
    and its declaration read (:class:`PayloadDigest`)."""

    __slots__ = ("_digest",)

    def __init__(self, digest: PayloadDigest) -> None:
        super().__init__(PAYLOAD, digest.attrib)
        self._digest = digest

    def declared(self, index: int) -> Declared:
        return self._digest.declared(index)


#: Where the hook's reader digests payload declarations (xmlsafe.read_xml): below the root.
DIGESTING = ((PAYLOADS_PATH.partition("/")[0], PAYLOADS, PAYLOAD), PayloadDigest)
#: What the hook's reader leaves out of its tree: every other application's element in <metadata>
#: (8 MiB of them cost the hook 213 MiB as a tree), which it never reads.
SKIPPING = ((PAYLOADS_PATH.partition("/")[0],), "{" + NAMESPACE + "}")


def decode(declared: Declared) -> Payload:
    """The validated payload a declaration describes (content decoded)."""
    try:
        files = tuple(_decode_file(item) for item in declared.files)
        return Payload(type=declared.type, files=files, target=declared.target, volume_id=declared.volume_id)
    except PayloadError as exc:
        raise PayloadError(f"{declared.where}: {exc}") from None


def _decode_file(item: DeclaredFile) -> PayloadFile:
    encoding = item.encoding
    if not item.text and (encoding is None or encoding == "base64"):
        return PayloadFile(item.name, b"")    # what decode_content gives: most files of a large payload
    content = decode_content(item.text, encoding, item.name)
    if encoding != "sealed":
        return PayloadFile(item.name, content)
    if item.key is None:
        raise PayloadError(f"file {quote(item.name)}: sealed content needs key=\"KEYID\"")
    return PayloadFile(name=item.name, content=b"", sealed=Sealed(check_key_id(item.key), content))


def read_payloads(domain: Element) -> list[Payload]:
    """The payloads declared in the domain's metadata, validated."""
    return [decode(declared) for declared in read_declared(domain)]


def payloads_element(payloads: Iterable[Payload]) -> etree._Element:
    """The ``<pl:payloads>`` element declaring ``payloads`` (content as base64; sealed content
    as ``encoding="sealed" key="KEYID"``)."""
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
            if item.sealed is not None:
                content = etree.SubElement(file_element, CONTENT, encoding="sealed", key=item.sealed.key_id)
                content.text = base64.b64encode(item.sealed.blob).decode("ascii")
            else:
                content = etree.SubElement(file_element, CONTENT, encoding="base64")
                content.text = base64.b64encode(item.content).decode("ascii")
    return root


def set_payloads(domain: etree._Element, payloads: Iterable[Payload]) -> None:
    """Replace the domain's payload metadata with ``payloads`` (none: remove it), in the place
    and layout of the old one; other metadata, and its prefixes, stay as they are."""
    from lxml import etree

    from . import layout
    payloads = list(payloads)
    metadata = domain.find("metadata")
    old = metadata.findall(PAYLOADS) if metadata is not None else []
    for extra in old[1:]:
        layout.remove(extra)
    injected = old[0].findall(INJECTED) if old else []
    if not payloads and injected:      # the record of an injection outlives the media
        for element in old[0].findall(PAYLOAD):
            layout.remove(element)
        return
    if not payloads:
        if old:
            layout.remove(old[0])
        if metadata is not None and len(metadata) == 0 and not (metadata.text or "").strip():
            layout.remove(metadata)
        return
    element = payloads_element(payloads)
    for record in injected:
        element.append(record)
    if old:
        for attached in old[0].findall(ATTACHED):
            element.append(attached)
        layout.replace(old[0], element)
        return
    if metadata is None:
        metadata = etree.Element("metadata")
        anchor = domain.find("uuid")
        if anchor is None:
            anchor = domain.find("name")
        layout.insert(domain, domain.index(anchor) + 1 if anchor is not None else 0, metadata)
    layout.insert(metadata, len(metadata), element)


class Added(Frozen):
    """What attach added to a definition for a network payload besides its metadata
    (domain/deviceless.py), as ``<pl:attached>`` records it."""

    __slots__ = ("serial", "smbios", "filters")
    serial: bool
    smbios: bool
    filters: tuple[str, ...]     # MAC addresses of the interfaces given clean-traffic

    def __init__(self, serial: bool = False, smbios: bool = False, filters: tuple[str, ...] = ()) -> None:
        assign(self, "serial", bool(serial))
        assign(self, "smbios", bool(smbios))
        assign(self, "filters", tuple(filters))

    def merged(self, other: Added) -> Added:
        return Added(self.serial or other.serial, self.smbios or other.smbios,
                     tuple(dict.fromkeys(self.filters + other.filters)))


def read_added(domain: Element) -> Added:
    """What attach recorded it added for a network payload (``<pl:attached>``)."""
    root = payloads_root(domain)
    element = root.find(ATTACHED) if root is not None else None
    if element is None:
        return Added()
    return Added(serial=element.get("serial") == "yes", smbios=element.get("smbios") == "yes",
                 filters=tuple((element.get("filters") or "").split()))


def write_added(domain: etree._Element, added: Added) -> None:
    """Record ``added`` in ``<pl:attached>`` (none: remove it)."""
    from lxml import etree
    root = payloads_root(domain)
    if root is None:
        return
    for old in root.findall(ATTACHED):
        root.remove(old)
    if added.serial or added.smbios or added.filters:
        element = etree.SubElement(root, ATTACHED)
        if added.serial:
            element.set("serial", "yes")
        if added.smbios:
            element.set("smbios", "yes")
        if added.filters:
            element.set("filters", " ".join(added.filters))
