"""The hook's XML reader: expat, hardened, building a small read-only tree.

The hook's ``prepare`` reads a domain's XML and edits nothing, at every start of every
domain. ElementTree and defusedxml over the same expat cost it 2.5 ms to import and bring
``re`` (2.7 ms) with them; this module drives ``pyexpat`` (C, in the interpreter) itself
and imports nothing else. :func:`xmlsafe.read_xml` is its one caller, which bounds the
document's size and encoding first.

Hardening, as defusedxml gave it: a DOCTYPE is refused where expat meets it, and with it
every entity declaration (internal or external) and every external reference, so no
entity is ever expanded: a reference to an undeclared entity is expat's own error. Errors
give expat's reason and a position, never document text.

The tree reads as ElementTree's did (tests/test_domain.py and test_hostile_xml.py feed it
and lxml the same documents): tags and attribute names as ``{namespace}local``; ``text``
the character data before an element's first child (None when there is none), ``tail``
the data after it; comments and processing instructions kept as children whose ``tag``
is not a string (:data:`COMMENT`, :data:`PI`), so the metadata reader sees mixed content
as it does on lxml's tree. ``find``, ``findall`` and ``findtext`` take child paths of
tag names only (``devices/disk``), which is all the readers use.
"""

from __future__ import annotations

import pyexpat

from .errors import XMLError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator


class _Kind:
    """The tag of a comment or processing instruction: not a string, as ElementTree's."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


COMMENT = _Kind("comment")
PI = _Kind("processing instruction")


class Element:
    """An element (or comment, or processing instruction) of a document read by :func:`parse`."""

    __slots__ = ("tag", "attrib", "text", "tail", "_children")

    def __init__(self, tag: str | _Kind, attrib: dict[str, str]) -> None:
        self.tag = tag
        self.attrib = attrib
        self.text: str | None = None
        self.tail: str | None = None
        self._children: list[Element] = []

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Element]:
        return iter(self._children)

    def __getitem__(self, index: int) -> Element:
        return self._children[index]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrib.get(key, default)

    def findall(self, path: str) -> list[Element]:
        """The elements at ``path`` (tag names joined by '/') below this one, in order."""
        found = [self]
        for step in path.split("/"):
            found = [child for parent in found for child in parent._children if child.tag == step]
        return found

    def find(self, path: str) -> Element | None:
        found = self.findall(path)
        return found[0] if found else None

    def findtext(self, path: str, default: str | None = None) -> str | None:
        """The text of the first element at ``path`` ("" when it has none), or ``default``."""
        element = self.find(path)
        return default if element is None else element.text or ""


class _DTDRefused(Exception):
    pass


def _refuse(*_args: object) -> None:
    raise _DTDRefused


def _refuse_reference(*_args: object) -> int:
    raise _DTDRefused


class _Builder:
    """expat's handlers, building the tree; character data is gathered in pieces and
    joined once, when the element (or the text before a child) ends."""

    def __init__(self) -> None:
        self.root: Element | None = None
        self.stack: list[Element] = []
        self.pieces: list[str] = []
        self.last: Element | None = None    # the element whose text or tail the pieces are

    def _flush(self) -> None:
        if self.pieces and self.last is not None:
            text = self.pieces[0] if len(self.pieces) == 1 else "".join(self.pieces)
            if self.stack and self.last is self.stack[-1] and not self.last._children:
                self.last.text = text
            else:
                self.last.tail = text
        self.pieces = []

    def data(self, text: str) -> None:
        self.pieces.append(text)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self._append(Element(_name(tag), {_name(key): value for key, value in attrib.items()}
                             if attrib else attrib))
        assert self.last is not None
        self.stack.append(self.last)

    def end(self, _tag: str) -> None:
        self._flush()
        self.last = self.stack.pop()

    def comment(self, text: str) -> None:
        if self.stack:    # outside the root, as ElementTree: not kept
            element = Element(COMMENT, {})
            element.text = text
            self._append(element)

    def pi(self, target: str, text: str) -> None:
        if self.stack:
            element = Element(PI, {})
            element.text = f"{target} {text}" if text else target
            self._append(element)

    def _append(self, element: Element) -> None:
        self._flush()
        if self.stack:
            self.stack[-1]._children.append(element)
        elif self.root is None:
            self.root = element
        self.last = element


def _name(expat_name: str) -> str:
    """expat's ``namespace}local`` (the separator is '}') as ``{namespace}local``."""
    return "{" + expat_name if "}" in expat_name else expat_name


def parse(data: bytes, what: str) -> Element:
    """The root element of ``data`` (bounded by the caller); XMLError for a DOCTYPE, an
    entity or anything expat finds ill-formed."""
    parser = pyexpat.ParserCreate(None, "}")
    builder = _Builder()
    parser.buffer_text = True
    parser.buffer_size = 1 << 16
    parser.ordered_attributes = False
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.CommentHandler = builder.comment
    parser.ProcessingInstructionHandler = builder.pi
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_reference
    try:
        parser.Parse(data, True)
    except _DTDRefused:
        raise XMLError(f"{what} has a DOCTYPE; DTDs and entities are not accepted") from None
    except pyexpat.ExpatError as exc:
        # expat's own words and a position; never the document's text
        reason = pyexpat.ErrorString(exc.code)
        raise XMLError(f"{what} is not well-formed XML: {reason}, line {exc.lineno}, column {exc.offset}") from None
    if builder.root is None:    # pragma: no cover - expat refuses a document without element
        raise XMLError(f"{what} is empty")
    return builder.root
