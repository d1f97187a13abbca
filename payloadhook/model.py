"""The payload model: Payload and PayloadFile, valid by construction.

Every rule of CONTRACT.md section 1 about names and content lives here; the XML
reader, the image builders and the command all rely on a Payload being valid.
Messages name files by their path (a name is metadata, not content) and never
quote content.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from .errors import PayloadError, quote

CDROM = "cdrom"
FLOPPY = "floppy"
TYPES = (CDROM, FLOPPY)

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

ENCODINGS = ("base64", "text", "sealed")

#: What sealing adds to a file's content (seal/blob.py): a 96-bit nonce and a 128-bit tag.
SEAL_OVERHEAD = 12 + 16
#: A key id (CONTRACT.md section 6): what ``key new`` makes, and what ``key=`` may name.
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
    if not isinstance(name, str) or name == "":
        raise PayloadError("file name is empty")
    if not name.isprintable():   # rare: then find out whether a refused character is why
        _refuse_unprintable(name, "file name")
    if name.startswith("/"):
        raise PayloadError(f"file name {quote(name)} is absolute; names are relative paths")
    parts = tuple(name.split("/"))
    for part in parts:
        if part == "":
            raise PayloadError(f"file name {quote(name)} has an empty component ('//' or a trailing '/')")
        if part in (".", ".."):
            raise PayloadError(f"file name {quote(name)} has a '{part}' component")
    if payload_type == CDROM:
        if len(parts) > ISO_MAX_DEPTH:
            raise PayloadError(f"file name {quote(name)} is nested deeper than {ISO_MAX_DEPTH} directory levels, as ISO 9660 allows")
        for part in parts:
            if len(part.encode("utf-8")) > RR_NAME_MAX_BYTES:
                raise PayloadError(f"file name {quote(name)} has a component over {RR_NAME_MAX_BYTES} bytes of UTF-8")
    elif payload_type == FLOPPY:
        for part in parts:
            bad = sorted(set(part) & FAT_FORBIDDEN)
            if bad:
                raise PayloadError(f"file name {quote(name)} contains {quote(bad[0])}, which a FAT long name cannot hold")
            if part.endswith((".", " ")):
                raise PayloadError(f"file name {quote(name)} has a component ending in '.' or ' ', which FAT drops")
            if utf16_units(part) > LFN_MAX_UNITS:
                raise PayloadError(f"file name {quote(name)} has a component over {LFN_MAX_UNITS} characters, as a FAT long name allows")
        if utf16_units(name) + 1 > FAT_PATH_MAX_UNITS:
            raise PayloadError(f"file name {quote(name)} is longer than a FAT path may be ({FAT_PATH_MAX_UNITS} characters)")
    else:
        raise PayloadError(f"payload type {quote(payload_type, 20)} is unknown; use cdrom or floppy")
    return parts


def check_label(label: str, payload_type: str) -> str:
    """Check a volume label; return it as it will be written (FAT: upper-cased)."""
    if label == "":
        raise PayloadError("volume_id is empty; omit it for the default label")
    if not label.isprintable():
        _refuse_unprintable(label, "volume_id")
    if payload_type == CDROM:
        if len(label) > ISO_LABEL_MAX:
            raise PayloadError(f"volume_id {quote(label)} is longer than {ISO_LABEL_MAX} characters, as ISO 9660 allows")
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
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise PayloadError(f"file {quote(name)}: content is not valid base64") from None


@dataclass(frozen=True)
class Sealed:
    """Content sealed under the host key ``key_id`` (CONTRACT.md section 6): nonce, ciphertext
    and tag, opened only by the hook at prepare (seal/opening.py)."""

    key_id: str
    blob: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_key_id(self.key_id)

    @property
    def size(self) -> int:
        """The sealed size, as show and dumpxml give it."""
        return len(self.blob)


@dataclass(frozen=True)
class PayloadFile:
    """One file of a payload: ``content`` is its bytes, or b"" while ``sealed`` holds them."""

    name: str
    content: bytes = field(repr=False)
    sealed: Sealed | None = None

    @property
    def size(self) -> int:
        """The content's size (of a sealed file: what it opens to, its sealed size less the
        nonce and tag)."""
        if self.sealed is not None:
            return max(0, self.sealed.size - SEAL_OVERHEAD)
        return len(self.content)

    @property
    def sha256(self) -> str | None:
        """The content's SHA-256; None for a sealed file, whose plaintext nothing may hash
        (a hash of a short secret gives it away)."""
        if self.sealed is not None:
            return None
        import hashlib  # not on the hook's path: 1.7 ms
        return hashlib.sha256(self.content).hexdigest()


class _Seen:
    """A path component met while checking a tree: as first written, the first path that
    named it, and what lies under it (None: it is a file)."""

    __slots__ = ("part", "path", "children")

    def __init__(self, part: str, path: str, children: dict[str, _Seen] | None):
        self.part = part
        self.path = path
        self.children = children


@dataclass(frozen=True)
class Payload:
    """A set of files for one disk; constructing one checks every rule."""

    type: str
    files: tuple[PayloadFile, ...]
    target: str | None = None
    volume_id: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise PayloadError(f"payload type {quote(self.type, 20)} is unknown; use cdrom or floppy")
        object.__setattr__(self, "files", tuple(self.files))
        if self.volume_id is not None:
            check_label(self.volume_id, self.type)
        if self.target is not None and (self.target == "" or not self.target.isprintable() or "/" in self.target):
            raise PayloadError(f"payload target {quote(self.target)} is not a disk target name")
        self._check_tree()

    @property
    def label(self) -> str:
        """The label written on the medium."""
        return check_label(self.volume_id or DEFAULT_LABEL, self.type)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def _check_tree(self) -> None:
        """Every path names one thing: no duplicate, no file that is also a directory, and on
        a floppy no two components of one directory that differ only in case, directories
        included (FAT looks names up without case). One walk down a tree of the names seen:
        linear in the total length of the names."""
        folded = self.type == FLOPPY
        root: dict[str, _Seen] = {}
        for item in self.files:
            parts = check_name(item.name, self.type)
            level = root
            for depth, part in enumerate(parts, 1):
                is_file = depth == len(parts)
                seen = level.get(part.casefold() if folded else part)
                if seen is None:
                    seen = _Seen(part, item.name, None if is_file else {})
                    level[part.casefold() if folded else part] = seen
                elif is_file and seen.children is None:
                    how = "duplicates" if seen.path == item.name else "differs only in case from"
                    raise PayloadError(f"file name {quote(item.name)} {how} {quote(seen.path)}")
                elif is_file:
                    raise PayloadError(f"file name {quote(item.name)} is also a directory of {quote(seen.path)}")
                elif seen.children is None:
                    raise PayloadError(f"file name {quote(seen.path)} is also a directory of {quote(item.name)}")
                elif seen.part != part:
                    raise PayloadError(
                        f"file name {quote(item.name)} has a directory {quote(part)} that differs only in "
                        f"case from {quote(seen.part)} of {quote(seen.path)}, which FAT cannot hold apart")
                if seen.children is not None:
                    level = seen.children

    def check_limits(self, max_file_size: int, max_payload_size: int) -> None:
        for item in self.files:
            if item.size > max_file_size:
                raise PayloadError(
                    f"file {quote(item.name)} is {item.size} bytes, over max_file_size ({max_file_size})")
        if self.size > max_payload_size:
            raise PayloadError(
                f"{self.type} payload is {self.size} bytes, over max_payload_size ({max_payload_size})")

    def describe(self) -> str:
        """'cdrom payload on hdc' — for messages."""
        return f"{self.type} payload" + (f" on {self.target}" if self.target else "")
