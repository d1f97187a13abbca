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
    from collections.abc import Iterator
    from typing import Callable


class _Kind:
    """The tag of a comment or processing instruction: not a string, as ElementTree's."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


COMMENT = _Kind("comment")
PI = _Kind("processing instruction")


#: The attributes of every element that has none (nothing writes to a read-only tree).
_NO_ATTRIBUTES: dict[str, str] = {}


class Element:
    """An element (or comment, or processing instruction) of a document read by :func:`parse`.
    A leaf has no list of children, and an element without attributes shares one empty
    mapping: a domain XML of the hook's 8 MiB cap holds about 240,000 elements."""

    __slots__ = ("tag", "attrib", "text", "tail", "_children")

    def __init__(self, tag: str | _Kind, attrib: dict[str, str]) -> None:
        self.tag = tag
        self.attrib = attrib
        self.text: str | None = None
        self.tail: str | None = None
        self._children: list[Element] | None = None

    def __len__(self) -> int:
        return len(self._children) if self._children else 0

    def __iter__(self) -> Iterator[Element]:
        return iter(self._children or ())

    def __getitem__(self, index: int) -> Element:
        return (self._children or [])[index]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrib.get(key, default)

    def findall(self, path: str) -> list[Element]:
        """The elements at ``path`` (tag names joined by '/', each ``local`` or
        ``{namespace}local``, a namespace holding '/' of its own) below this one, in order."""
        if "/" not in path:
            return [child for child in self._children or () if child.tag == path]
        found = [self]
        for step in _steps(path):
            found = [child for parent in found for child in parent._children or () if child.tag == step]
        return found

    def find(self, path: str) -> Element | None:
        found = self.findall(path)
        return found[0] if found else None

    def findtext(self, path: str, default: str | None = None) -> str | None:
        """The text of the first element at ``path`` ("" when it has none), or ``default``."""
        element = self.find(path)
        return default if element is None else element.text or ""


def _steps(path: str) -> list[str]:
    """``path``'s tag names: split at each '/' outside a ``{namespace}``."""
    steps: list[str] = []
    start = depth = 0
    for index, char in enumerate(path):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            steps.append(path[start:index])
            start = index + 1
    steps.append(path[start:])
    return steps


class _DTDRefused(Exception):
    pass


class _TooManyAttributes(Exception):
    pass


class _BeyondLibxml2(Exception):
    """What libxml2 (lxml, without XML_PARSE_HUGE, as payloadhook's other readers and
    libvirt itself parse) refuses and expat reads: the hook must not read a document the
    command, the console and libvirt cannot."""


#: libxml2's limits without XML_PARSE_HUGE: an element may have at most this many open
#: ancestors (xmlParserMaxDepth), and a name (a tag's or attribute's local part, a prefix,
#: a processing instruction's target) at most this many bytes of UTF-8 (XML_MAX_NAME_LENGTH).
MAX_DEPTH = 256
MAX_NAME_LENGTH = 50000


#: The most attributes (namespace declarations included) one element may have: libvirt's
#: elements have a handful, and libxml2 takes time quadratic in their number (0.9 MB of
#: attributes on one element took it 25 s, at a migrate, with the domain locked).
MAX_ATTRIBUTES = 256


def _too_many(what: str) -> XMLError:
    return XMLError(f"{what} has an element with more than {MAX_ATTRIBUTES} attributes")


def check_attributes(data: bytes, what: str) -> None:
    """Refuse ``data`` where an element has more than :data:`MAX_ATTRIBUTES` attributes, or
    where expat finds it ill-formed: a linear pass before libxml2 parses it (xmlsafe.parse_xml).
    No namespace processing, so declarations count as the attributes they are to libxml2."""
    parser = pyexpat.ParserCreate(None)
    parser.ordered_attributes = True

    def start(_tag: str, attributes: list[str]) -> None:
        if len(attributes) > 2 * MAX_ATTRIBUTES:     # names and values, in turn
            raise _TooManyAttributes
    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_reference
    _run(parser, data, what)


def _ignore(*_args: object) -> None:
    pass


def _refuse(*_args: object) -> None:
    raise _DTDRefused


def _refuse_reference(*_args: object) -> int:
    raise _DTDRefused


def _name(expat_name: str) -> str:
    """expat's ``namespace}local`` (the separator is '}') as ``{namespace}local``."""
    return "{" + expat_name if "}" in expat_name else expat_name


class Digest:
    """What reads one element's subtree from expat's events instead of a tree of it: the
    hook's payload declarations (domain/metadata.py), 80,000 files in the largest domain
    the limits allow, which as a tree of three elements a file would cost the hook more
    than all the rest of its work. :func:`parse` makes one for the element with its tag
    and attributes (named as in the tree) and ``done``, then has the parser call, for what
    lies inside, ``start`` (each element's attributes already counted, tags as expat gives
    them: ``namespace}local``, which :func:`tree_name` turns into the tree's
    ``{namespace}local``), ``end``, ``data`` and ``other`` (a comment or processing
    instruction) directly, for speed; at the end of the element itself, ``end`` calls
    ``done`` with what takes the element's place in the tree."""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        raise NotImplementedError

    def end(self, tag: str) -> None:
        raise NotImplementedError

    def data(self, text: str) -> None:
        raise NotImplementedError

    def other(self, *_args: str) -> None:
        raise NotImplementedError

    #: The digest's open elements, the digested element first: their number is how deep
    #: below it the parser is (expattree holds documents to libxml2's MAX_DEPTH).
    roles: list[int]


#: Where :func:`parse` digests elements: their path of tags below the root (each the tree's
#: ``{namespace}local``), and what makes a Digest of one from its tag, attributes and ``done``.
Digesting = tuple[tuple[str, ...], "Callable[[str, dict[str, str], Callable[[Element], None]], Digest]"]
#: Where :func:`parse` leaves elements out of the tree: the path of tags below the root of
#: their parent, and the ``{namespace}`` prefix of the children kept. The others are read
#: (well-formed, within the limits) and left out, with what they hold and the text after
#: them: a domain's ``<metadata>`` may hold any other application's XML, which the hook never
#: reads.
Skipping = tuple[tuple[str, ...], str]


def _too_long(expat_name: str) -> bool:
    """Whether the local part of expat's ``namespace}local`` is longer than libxml2 reads
    (which counts its UTF-8 bytes; only a name of over a quarter of them can be)."""
    return _longer_than_libxml2(expat_name.rpartition("}")[2])


def _longer_than_libxml2(name: str) -> bool:
    return len(name) > MAX_NAME_LENGTH or len(name) > MAX_NAME_LENGTH // 4 and len(name.encode()) > MAX_NAME_LENGTH


def _check_target(target: str, _text: str = "") -> None:
    """A processing instruction's target is a name too."""
    if len(target) > MAX_NAME_LENGTH // 4 and _longer_than_libxml2(target):
        raise _BeyondLibxml2


def tree_name(expat_name: str) -> str:
    """expat's ``namespace}local`` as the tree's ``{namespace}local``."""
    return _name(expat_name)


def _handlers(parser: pyexpat.XMLParserType | None = None, digesting: Digesting | None = None,
              skipping: Skipping | None = None) -> tuple[list[Element], dict[str, Callable[..., None]]]:
    """expat's handlers building the tree (closures over its state, for speed: they run for
    every element), and the list the root element is put in. Character data is gathered in
    pieces and given, joined once, to the text of the element just started or the tail of
    the one just ended (or of the comment or processing instruction just met).

    With ``digesting``, an element at its path is read by a Digest: the parser's handlers
    are swapped for ones that feed the digest until the element ends, then swapped back.
    With ``skipping``, an element in its place stands in the tree empty: the handlers are
    swapped for ones that only check what it holds until it ends."""
    root: list[Element] = []
    stack: list[Element] = []
    pieces: list[str] = []
    last: Element | None = None
    last_open = False    # pieces are last's text (it was just started), else its tail
    names: dict[str, str] = {}
    declared = [0]       # namespace declarations of the element about to start

    def flush() -> None:
        text = pieces[0] if len(pieces) == 1 else "".join(pieces)
        pieces.clear()
        if last is None:
            return
        if last_open:
            last.text = text
        else:
            last.tail = text

    def append(element: Element) -> None:
        nonlocal last, last_open
        if pieces:
            flush()
        if stack:
            parent = stack[-1]
            if parent._children is None:
                parent._children = [element]
            else:
                parent._children.append(element)
        elif not root:
            root.append(element)
        last = element
        last_open = False

    def declare(prefix: str | None, _uri: str) -> None:
        declared[0] += 1
        if prefix is not None and len(prefix) > MAX_NAME_LENGTH // 4 and _longer_than_libxml2(prefix):
            raise _BeyondLibxml2    # every prefix in use is declared: the one place to look at it

    digest_path, make_digest = digesting if digesting is not None else ((), None)
    digest_depth = len(digest_path) if make_digest is not None else -1
    handlers: dict[str, Callable[..., None]] = {}

    def digest(name: str, attrib: dict[str, str]) -> None:
        """Hand the element just met, and everything up to its end, to a Digest."""
        assert parser is not None and make_digest is not None
        if pieces:
            flush()

        def done(element: Element) -> None:
            nonlocal last, last_open
            for handler, function in handlers.items():    # the element ended: back to the tree
                setattr(parser, handler, function)
            parent = stack[-1]
            if parent._children is None:
                parent._children = [element]
            else:
                parent._children.append(element)
            last = element
            last_open = False

        into = make_digest(name, attrib, done)
        into_start = into.start
        open_roles = into.roles
        above = len(stack)

        def digest_start(tag: str, attrib: dict[str, str]) -> None:
            if attrib or declared[0]:
                attrib = _checked(tag, attrib)
            if above + len(open_roles) > MAX_DEPTH or len(tag) > MAX_NAME_LENGTH // 4 and _too_long(tag):
                raise _BeyondLibxml2
            into_start(tag, attrib or _NO_ATTRIBUTES)

        parser.StartElementHandler = digest_start
        parser.EndElementHandler = into.end
        parser.CharacterDataHandler = into.data
        into_other = into.other

        def digest_pi(target: str, text: str) -> None:
            _check_target(target)
            into_other(target, text)

        parser.CommentHandler = into_other
        parser.ProcessingInstructionHandler = digest_pi

    skip_path, keep = skipping if skipping is not None else ((), "")
    skip_depth = len(skip_path) + 1 if skipping is not None else -1
    keep_expat = keep[1:-1] + "}"    # the namespace kept, as expat's tags begin with it

    def skip() -> None:
        """Leave the element just met out of the tree: it and what it holds are checked, not
        kept (nor the text after it, its tail)."""
        assert parser is not None
        open_elements = [1]
        above = len(stack)

        def skip_start(tag: str, attrib: dict[str, str]) -> None:
            if attrib or declared[0]:
                _checked(tag, attrib)
            if above + open_elements[0] > MAX_DEPTH or len(tag) > MAX_NAME_LENGTH // 4 and _too_long(tag):
                raise _BeyondLibxml2
            open_elements[0] += 1

        def skip_end(_tag: str) -> None:
            nonlocal last, last_open
            open_elements[0] -= 1
            if not open_elements[0]:    # the element ended: back to the tree; its tail is dropped
                for handler, function in handlers.items():
                    setattr(parser, handler, function)
                last = None
                last_open = False

        parser.StartElementHandler = skip_start
        parser.EndElementHandler = skip_end
        parser.CharacterDataHandler = _ignore
        parser.CommentHandler = _ignore
        parser.ProcessingInstructionHandler = _check_target

    def _checked(tag: str, attrib: dict[str, str]) -> dict[str, str]:
        """``attrib`` counted against the cap (with the namespaces the element declares) and
        named as the tree names attributes."""
        if declared[0]:
            if len(attrib) + declared[0] > MAX_ATTRIBUTES:
                raise _TooManyAttributes
            declared[0] = 0
        elif len(attrib) > MAX_ATTRIBUTES:
            raise _TooManyAttributes
        if attrib:
            for key in attrib:
                if len(key) > MAX_NAME_LENGTH // 4 and _too_long(key):
                    raise _BeyondLibxml2
            for key in attrib:
                if "}" in key:
                    return {_name(key): value for key, value in attrib.items()}
        return attrib or _NO_ATTRIBUTES

    def start(tag: str, attrib: dict[str, str]) -> None:
        nonlocal last, last_open
        if attrib or declared[0]:
            attrib = _checked(tag, attrib)
        if len(stack) == skip_depth and not tag.startswith(keep_expat) and in_skipping():
            if len(tag) > MAX_NAME_LENGTH // 4 and _too_long(tag):    # not named, not kept: checked
                raise _BeyondLibxml2
            if pieces:
                flush()
            skip()
            return
        name = names.get(tag)
        if name is None:    # one string per tag name, as expat gives one: not one per element
            if len(tag) > MAX_NAME_LENGTH // 4 and _too_long(tag):
                raise _BeyondLibxml2
            name = names[tag] = _name(tag)
        if len(stack) > MAX_DEPTH:
            raise _BeyondLibxml2
        if len(stack) == digest_depth and name == digest_path[-1] and \
                all(element.tag == step for element, step in zip(stack[1:], digest_path)):
            digest(name, attrib or _NO_ATTRIBUTES)
            return
        if pieces:
            flush()
        element = Element(name, attrib or _NO_ATTRIBUTES)
        if stack:    # append(element), inline: this runs for every element
            parent = stack[-1]
            if parent._children is None:
                parent._children = [element]
            else:
                parent._children.append(element)
        elif not root:
            root.append(element)
        stack.append(element)
        last = element
        last_open = True

    def end(_tag: str) -> None:
        nonlocal last, last_open
        if pieces:
            flush()
        last = stack.pop()
        last_open = False

    def in_skipping() -> bool:
        """Whether the element open now is where ``skipping`` leaves elements out (it leaves
        out comments and processing instructions there too)."""
        return len(stack) == skip_depth and all(above.tag == step for above, step in zip(stack[1:], skip_path))

    def comment(text: str) -> None:
        if stack and not in_skipping():    # outside the root, as ElementTree: not kept
            element = Element(COMMENT, _NO_ATTRIBUTES)
            element.text = text
            append(element)

    def pi(target: str, text: str) -> None:
        _check_target(target)
        if stack and not in_skipping():
            element = Element(PI, _NO_ATTRIBUTES)
            element.text = f"{target} {text}" if text else target
            append(element)

    handlers.update({"StartElementHandler": start, "EndElementHandler": end, "CharacterDataHandler": pieces.append,
                     "CommentHandler": comment, "ProcessingInstructionHandler": pi,
                     "StartNamespaceDeclHandler": declare})
    return root, handlers


def parse(data: bytes, what: str, digesting: Digesting | None = None, skipping: Skipping | None = None) -> Element:
    """The root element of ``data`` (bounded by the caller); XMLError for a DOCTYPE, an
    entity or anything expat finds ill-formed. ``digesting``: elements read by a Digest
    (the path of tags below the root where they stand, and what makes one); ``skipping``:
    elements kept empty (see :data:`Skipping`)."""
    parser = pyexpat.ParserCreate(None, "}", None)
    root, handlers = _handlers(parser, digesting, skipping)
    parser.buffer_text = True
    parser.buffer_size = 1 << 20
    parser.ordered_attributes = False
    for name, handler in handlers.items():
        setattr(parser, name, handler)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_reference
    try:
        _run(parser, data, what)
    finally:
        # The handlers refer to the parser and to each other (a digest swaps them): no cycle
        # may keep the parser, its buffer and the tree alive once read, as the hook reads with
        # its collector off (hook.prepare).
        for name in handlers:
            setattr(parser, name, None)
        handlers.clear()
    if not root:    # pragma: no cover - expat refuses a document without element
        raise XMLError(f"{what} is empty")
    return root[0]


def _run(parser: pyexpat.XMLParserType, data: bytes, what: str) -> None:
    try:
        parser.Parse(data, True)
    except _TooManyAttributes:
        raise _too_many(what) from None
    except _BeyondLibxml2:
        raise XMLError(f"{what} nests elements deeper than {MAX_DEPTH} or has a name longer than "
                       f"{MAX_NAME_LENGTH} bytes, which libvirt's XML parser refuses") from None
    except _DTDRefused:
        raise XMLError(f"{what} has a DOCTYPE; DTDs and entities are not accepted") from None
    except pyexpat.ExpatError as exc:
        # expat's own words and a position; never the document's text
        reason = pyexpat.ErrorString(exc.code)
        raise XMLError(f"{what} is not well-formed XML: {reason}, line {exc.lineno}, column {exc.offset}") from None
    except (ValueError, LookupError):
        # an encoding Python's codecs cannot give expat (xmlsafe refuses any but UTF-8 before)
        raise XMLError(f"{what} is in an encoding expat cannot read") from None
