"""The payload model: Payload and PayloadFile, valid by construction.

Every rule of the payload format (docs/format.md) about names and content lives here; the XML
reader, the image builders and the command all rely on a Payload being valid.
Messages name files by their path (a name is metadata, not content) and never
quote content.
"""

from __future__ import annotations

import binascii

from .errors import PayloadError, quote, shown
from .frozen import Frozen, assign
from .frozen import replace as replace  # callers copy a model with it, as with a dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

CDROM = "cdrom"
FLOPPY = "floppy"
#: Served over HTTP by the seed service (payloadhook serve), to the domain only: no device.
NETWORK = "network"
#: QEMU firmware configuration entries, one per file: no device.
FWCFG = "fwcfg"
TYPES = (CDROM, FLOPPY, NETWORK, FWCFG)
#: Types built into an image on a disk; the others bind to no disk.
MEDIA = (CDROM, FLOPPY)
DEVICELESS = (NETWORK, FWCFG)
#: The suffix of a payload image's file name, by payload type (attach names images with it).
IMAGE_SUFFIX = {CDROM: ".iso", FLOPPY: ".img"}

DEFAULT_LABEL = "PAYLOAD"
ISO_LABEL_MAX = 32
FAT_LABEL_MAX = 11

#: ISO 9660 allows eight directory levels; a file may sit in the eighth.
ISO_MAX_DEPTH = 8
#: Rock Ridge NM entries carry up to 255 bytes for one name component.
RR_NAME_MAX_BYTES = 255
#: A VFAT long name holds up to 255 UTF-16 code units.
LFN_MAX_UNITS = 255
#: Linux and Windows cap a whole path on FAT at 260 UTF-16 units, separators included.
FAT_PATH_MAX_UNITS = 260
#: Characters a VFAT long name cannot hold (besides controls and '/').
FAT_FORBIDDEN = set('"*:<>?\\|')
#: QEMU's fw_cfg file names: 56 bytes with the terminating NUL (FW_CFG_MAX_FILE_PATH), and
#: names outside "opt/" are QEMU's own.
FWCFG_NAME_MAX = 55
FWCFG_PREFIX = "opt/"
#: Characters a network seed name cannot hold: a URL's query, fragment and escapes would never
#: reach the name, and a backslash is a separator to some clients.
URL_FORBIDDEN = set("?#%\\")

ENCODINGS = ("base64", "text", "sealed")

#: What sealing adds to a file's content (seal/blob.py): a 96-bit nonce and a 128-bit tag.
SEAL_OVERHEAD = 12 + 16
#: A key id (README, "Sealed content"): what ``key new`` makes, and what ``key=`` may name.
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
KEY_ID_MAX = 64


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units, as FAT long names and Joliet count (two a character
    outside the BMP)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def _refuse_unprintable(name: str, what: str) -> None:
    """Refuse a control character, or a byte that is not UTF-8 (or a lone surrogate), in
    ``name``, saying which."""
    import unicodedata  # only for the rare unprintable name
    for ch in name:
        category = unicodedata.category(ch)
        if "\udc80" <= ch <= "\udcff":   # a byte that did not decode, kept by surrogateescape
            raise PayloadError(f"{what} {quote(name)} is refused: names are UTF-8")
        if category == "Cs":
            raise PayloadError(f"{what} {quote(name)} contains a lone surrogate, which is not a character")
        if category == "Cc" or ch in "\u2028\u2029":
            raise PayloadError(f"{what} {quote(name)} contains a control character")


def check_name(name: str, payload_type: str) -> tuple[str, ...]:
    """Check one file name against the contract; return its components."""
    _check_name(name, payload_type)
    return tuple(name.split("/"))


def _check_name(name: str, payload_type: str) -> None:
    """check_name, without the components: split only where a rule walks them (a payload
    may hold 10,000 names, and what is made for each is what the collector counts)."""
    if not isinstance(name, str) or name == "":
        raise PayloadError("file name is empty")
    if not name.isprintable():   # rare: then find out whether a refused character is why
        _refuse_unprintable(name, "file name")
    if name.startswith("/"):
        raise PayloadError(f"file name {quote(name)} is absolute; names are relative paths")
    # Each rule below is checked component by component, to name the first refused; the
    # usual name passes a test of the whole name first (a payload may hold 10,000 names).
    if "//" in name or name.endswith("/") or "/." in name or name.startswith("."):
        for part in name.split("/"):
            if part == "":
                raise PayloadError(f"file name {quote(name)} has an empty component ('//' or a trailing '/')")
            if part in (".", ".."):
                raise PayloadError(f"file name {quote(name)} has a '{part}' component")
    short = len(name) * 4 <= RR_NAME_MAX_BYTES or (len(name) <= RR_NAME_MAX_BYTES and name.isascii())
    if payload_type == CDROM:
        if name.count("/") >= ISO_MAX_DEPTH:    # more than ISO_MAX_DEPTH components
            raise PayloadError(f"file name {quote(name)} is nested deeper than {ISO_MAX_DEPTH} directory levels, "
                               "as ISO 9660 allows")
        for part in () if short else name.split("/"):
            if len(part.encode("utf-8")) > RR_NAME_MAX_BYTES:
                raise PayloadError(f"file name {quote(name)} has a component over {RR_NAME_MAX_BYTES} bytes of UTF-8")
    elif payload_type == FLOPPY:
        units = utf16_units(name)
        plain = (units <= LFN_MAX_UNITS and FAT_FORBIDDEN.isdisjoint(name) and not name.endswith((".", " "))
                 and "./" not in name and " /" not in name)
        for part in () if plain else name.split("/"):
            bad = sorted(set(part) & FAT_FORBIDDEN)
            if bad:
                raise PayloadError(f"file name {quote(name)} contains {quote(bad[0])}, "
                                   "which a FAT long name cannot hold")
            if part.endswith((".", " ")):
                raise PayloadError(f"file name {quote(name)} has a component ending in '.' or ' ', which FAT drops")
            if utf16_units(part) > LFN_MAX_UNITS:
                raise PayloadError(f"file name {quote(name)} has a component over {LFN_MAX_UNITS} characters, "
                                   "as a FAT long name allows")
        if units + 1 > FAT_PATH_MAX_UNITS:
            raise PayloadError(f"file name {quote(name)} is longer than a FAT path may be "
                               f"({FAT_PATH_MAX_UNITS} characters)")
    elif payload_type == NETWORK:
        for part in () if short and URL_FORBIDDEN.isdisjoint(name) else name.split("/"):
            bad = sorted(set(part) & URL_FORBIDDEN)
            if bad:
                raise PayloadError(f"file name {quote(name)} contains {quote(bad[0])}, which a URL's path cannot carry")
            if len(part.encode("utf-8")) > RR_NAME_MAX_BYTES:
                raise PayloadError(f"file name {quote(name)} has a component over {RR_NAME_MAX_BYTES} bytes of UTF-8")
    elif payload_type == FWCFG:
        check_fwcfg_name(name)
    else:
        raise PayloadError(f"payload type {quote(payload_type, 20)} is unknown; use cdrom, floppy, network or fwcfg")


def check_fwcfg_name(name: str) -> None:
    """An fw_cfg entry's name as QEMU takes it: under opt/, at most 55 bytes, printable
    ASCII without blanks or ',' (QEMU's option syntax)."""
    if not name.startswith(FWCFG_PREFIX):
        raise PayloadError(f"fw_cfg name {quote(name)} does not start with {quote(FWCFG_PREFIX)}; "
                           "QEMU keeps other names for itself")
    if not name.isascii() or any(ch in name for ch in " ,") or not name.isprintable():
        raise PayloadError(f"fw_cfg name {quote(name)} holds a character other than printable ASCII "
                           "(without blanks and ',')")
    if len(name) > FWCFG_NAME_MAX:
        raise PayloadError(f"fw_cfg name {quote(name)} is {len(name)} bytes, over the {FWCFG_NAME_MAX} QEMU allows")


def check_label(label: str, payload_type: str) -> str:
    """Check a volume label; return it as it will be written (FAT: upper-cased)."""
    if label == "":
        raise PayloadError("volume_id is empty; omit it for the default label")
    if not label.isprintable():
        _refuse_unprintable(label, "volume_id")
    if payload_type == CDROM:
        if len(label) > ISO_LABEL_MAX:
            raise PayloadError(f"volume_id {quote(label)} is longer than {ISO_LABEL_MAX} characters, "
                               "as ISO 9660 allows")
        return label
    upper = label.upper()
    try:
        encoded = upper.encode("ascii")
    except UnicodeEncodeError:
        raise PayloadError(f"volume_id {quote(label)} is not ASCII, as a FAT label must be") from None
    if len(encoded) > FAT_LABEL_MAX:
        raise PayloadError(f"volume_id {quote(label)} is longer than {FAT_LABEL_MAX} characters, as FAT allows")
    bad = sorted(set(upper) & (FAT_FORBIDDEN | set("+,./;=[]")))
    if bad:
        raise PayloadError(f"volume_id {quote(label)} contains {quote(bad[0])}, which a FAT label cannot hold")
    return upper


def check_key_id(key_id: str | None) -> str:
    """A key id from input, checked before it names a key file: lower-case letters, digits and '-'."""
    if (not key_id or len(key_id) > KEY_ID_MAX or not set(key_id) <= _KEY_ID_CHARS
            or key_id[0] == "-"):
        raise PayloadError(f"key id {quote(key_id)} is not a key id (lower-case letters, digits and '-')")
    return key_id


def decode_content(text: str, encoding: str | None, name: str) -> bytes:
    """Decode a ``<content>`` element's text; ``encoding`` None means base64. Sealed content
    decodes to its sealed bytes (nonce, ciphertext, tag), still sealed."""
    encoding = "base64" if encoding is None else encoding
    if encoding == "text":
        return text.encode("utf-8")
    if encoding not in ("base64", "sealed"):
        raise PayloadError(f"file {quote(name)}: content encoding {quote(encoding, 20)} is unknown; "
                           "use base64, text or sealed")
    try:
        return _b64decode(text)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise PayloadError(f"file {quote(name)}: content is not valid base64") from None


#: The ASCII characters str.split() drops, which base64 text may hold between its digits.
_ASCII_BLANKS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_ASCII_BLANK_BYTES = _ASCII_BLANKS.encode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict base64 (no character outside the alphabet, padding only at the end) of
    ``text`` less its blanks, decoded with as few copies as the text allows: none for text
    without blanks (what payloadhook and base64 tools write), one for ASCII text with line
    breaks; an 8 MiB document's content is then held once as text and once decoded."""
    if not text:
        return b""    # the empty file: the most common content of a large payload
    if not text.isascii():
        text = "".join(text.split())    # blanks outside ASCII: rare; refused below if anything else
        data: str | bytes = text.encode("ascii")
    elif any(blank in text for blank in _ASCII_BLANKS):
        data = text.encode("ascii").translate(None, _ASCII_BLANK_BYTES)
    else:
        data = text
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except TypeError:    # pragma: no cover - Python before 3.11 has no strict_mode
        import base64
        return base64.b64decode(data, validate=True)


class Sealed(Frozen):
    """Content sealed under the host key ``key_id`` (README, "Sealed content"): nonce, ciphertext
    and tag, opened only by the hook at prepare (seal/opening.py)."""

    __slots__ = ("key_id", "blob")
    _unshown = ("blob",)
    key_id: str
    blob: bytes

    def __init__(self, key_id: str, blob: bytes) -> None:
        assign(self, "key_id", check_key_id(key_id))
        assign(self, "blob", blob)

    @property
    def size(self) -> int:
        """The sealed size, as show and dumpxml give it."""
        return len(self.blob)


class Source:
    """Content held outside memory, whose size was checked when it was found: an input file
    the command streams into an image (local/sources.py). A subclass gives :attr:`size`,
    :meth:`write_to` (its bytes into a descriptor, at the descriptor's position or at an
    offset, without a copy through Python where the kernel can copy) and :meth:`read` (its bytes, for
    whatever needs them in memory). Both refuse, with a one-line PayloadError, content whose
    size is no longer the size checked."""

    __slots__ = ()

    @property
    def size(self) -> int:
        raise NotImplementedError

    def write_to(self, fd: int, offset: int | None = None) -> None:
        raise NotImplementedError

    def read(self) -> bytes:
        raise NotImplementedError


class PayloadFile(Frozen):
    """One file of a payload: ``content`` is its bytes, or b"" while ``sealed`` holds them.
    Constructed with a :class:`Source` in place of bytes, it holds the source (``data``)
    and its size, and ``content`` reads it: the image writers stream it instead."""

    __slots__ = ("name", "_data", "sealed", "_size")
    _uncompared = ("_size",)
    name: str
    _data: bytes | Source
    sealed: Sealed | None
    _size: int

    def __init__(self, name: str, content: bytes | Source, sealed: Sealed | None = None) -> None:
        assign(self, "name", name)
        assign(self, "_data", content)
        assign(self, "sealed", sealed)
        # read by every limit and both layouts, several times a file: worked out once
        if sealed is not None:
            assign(self, "_size", max(0, sealed.size - SEAL_OVERHEAD))
        else:
            assign(self, "_size", content.size if isinstance(content, Source) else len(content))

    @property
    def content(self) -> bytes:
        """The content's bytes (of a source: read from it, and checked against its size)."""
        data = self._data
        return data.read() if isinstance(data, Source) else data

    @property
    def data(self) -> bytes | Source:
        """The content as held: bytes, or the source the image writers stream from."""
        return self._data

    @property
    def size(self) -> int:
        """The content's size (of a sealed file: what it opens to, its sealed size less the
        nonce and tag)."""
        return self._size

    @property
    def sha256(self) -> str | None:
        """The content's SHA-256; None for a sealed file, whose plaintext nothing may hash
        (a hash of a short secret gives it away)."""
        if self.sealed is not None:
            return None
        import hashlib  # not on the hook's path (docs/speed.md)
        return hashlib.sha256(self.content).hexdigest()

    def _fields(self) -> dict[str, object]:
        return {"name": self.name, "content": self._data, "sealed": self.sealed}


def _walk(entries: list[dict[str, str | int]], directories: list[tuple[str, str]], name: str,
          parts: list[str], folded: bool) -> int:
    """The number of the directory ``name`` lies in (``parts``, its path's components),
    each component met in turn (Payload._check_tree)."""
    level = 0
    for part in parts:
        here = entries[level]
        key = part.casefold() if folded else part
        seen = here.get(key)
        if seen is None:
            level = here[key] = len(entries)
            entries.append({})
            directories.append((part, name))
        elif isinstance(seen, str):
            raise PayloadError(f"file name {quote(seen)} is also a directory of {quote(name)}")
        elif directories[seen][0] != part:
            first, path = directories[seen]
            raise PayloadError(
                f"file name {quote(name)} has a directory {quote(part)} that differs only in "
                f"case from {quote(first)} of {quote(path)}, which FAT cannot hold apart")
        else:
            level = seen
    return level


class Payload(Frozen):
    """A set of files for one disk; constructing one checks every rule."""

    __slots__ = ("type", "files", "target", "volume_id")
    type: str
    files: tuple[PayloadFile, ...]
    target: str | None
    volume_id: str | None

    def __init__(self, type: str, files: Iterable[PayloadFile], target: str | None = None,
                 volume_id: str | None = None) -> None:
        assign(self, "type", type)
        assign(self, "files", tuple(files))
        assign(self, "target", target)
        assign(self, "volume_id", volume_id)
        if self.type not in TYPES:
            raise PayloadError(f"payload type {quote(self.type, 20)} is unknown; use cdrom, floppy, network or fwcfg")
        if self.type in DEVICELESS and self.target is not None:
            raise PayloadError(f"a {self.type} payload binds to no disk; it takes no target")
        if self.type in DEVICELESS and self.volume_id is not None:
            raise PayloadError(f"a {self.type} payload is no medium; it takes no volume_id")
        if self.volume_id is not None:
            check_label(self.volume_id, self.type)
        if self.target is not None and (self.target == "" or not self.target.isprintable() or "/" in self.target):
            raise PayloadError(f"payload target {quote(self.target)} is not a disk target name")
        self._check_tree()

    @property
    def label(self) -> str | None:
        """The label written on the medium; None for a payload that is no medium."""
        if self.type in DEVICELESS:
            return None
        return check_label(self.volume_id or DEFAULT_LABEL, self.type)

    @property
    def is_medium(self) -> bool:
        """Whether it becomes an image on a disk (cdrom, floppy), rather than no device."""
        return self.type in MEDIA

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def _check_tree(self) -> None:
        """Every path names one thing: no duplicate, no file that is also a directory, and on
        a floppy no two components of one directory that differ only in case, directories
        included (FAT looks names up without case). Linear in the total length of the names:
        each directory met has a number and a map of its entries, by component (case-folded
        on a floppy), to the path of a file or the number of a directory, and the component
        as first written and the first path that named it; a directory path walked once
        without refusal is not walked again, as it would be walked the same way. A file
        adds one entry to one map: the collector, counting what is made, is not kept busy."""
        folded = self.type == FLOPPY
        entries: list[dict[str, str | int]] = [{}]
        directories: list[tuple[str, str]] = [("", "")]
        walked: dict[str, int] = {"": 0}
        for item in self.files:
            name = item.name
            _check_name(name, self.type)
            directory, _, leaf = name.rpartition("/")
            level = walked.get(directory)
            if level is None:
                level = walked[directory] = _walk(entries, directories, name, directory.split("/"), folded)
            here = entries[level]
            key = leaf.casefold() if folded else leaf
            seen = here.get(key)
            if seen is None:
                here[key] = name
            elif isinstance(seen, str):
                how = "duplicates" if seen == name else "differs only in case from"
                raise PayloadError(f"file name {quote(name)} {how} {quote(seen)}")
            else:
                raise PayloadError(f"file name {quote(name)} is also a directory of {quote(directories[seen][1])}")

    def check_limits(self, max_file_size: int, max_payload_size: int) -> None:
        """The size limits (config.check_sizes, the one rule) on this payload's files."""
        from .config import check_sizes
        check_sizes(self, max_file_size, max_payload_size)

    def describe(self) -> str:
        """'cdrom payload on hdc' — for messages; the target escaped and bounded, as input."""
        return f"{self.type} payload" + (f" on {shown(self.target, 40)}" if self.target else "")
