"""The names a file has in a FAT directory: one 8.3 entry, and VFAT long-name entries
when the 8.3 entry cannot hold the name exactly.

- A name that is an 8.3 name takes one entry and no long name, as mkfs.fat with mcopy
  and Windows write it. All-lower-case base or extension is kept with the case bits
  of byte 12 (0x08 base, 0x10 extension) that Windows NT and Linux's vfat read and
  write; mixed case needs a long name.
- Every other name gets a long name and an 8.3 alias built as Microsoft's FAT
  specification (section 7.2, "basis-name generation") says, with one difference: the
  alias is pure ASCII, every other character becoming '_'. A character of an OEM code
  page in an 8.3 entry reads as another character under another code page (CP437's
  '¥' is CP850's 'Ø', mtools' default), so no reader's code page may matter.
- Aliases are unique in their directory: ``~N`` numeric tails, the next free number
  kept per prefix, so a directory of n names costs O(n) whatever they share.
"""

from __future__ import annotations

import math

from ..model import utf16_units
from .uniquenames import UniqueNames

#: ASCII characters an 8.3 name may hold (letters upper-cased), besides letters and digits.
_SHORT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$%'-_@~`!(){}^#&")
#: Byte 12 of a directory entry (Windows NT, Linux vfat): base, extension in lower case.
LOWER_BASE = 0x08
LOWER_EXT = 0x10
LFN_UNITS_PER_ENTRY = 13
#: The longest numeric tail: '~' and six digits leave a one-character prefix.
_MAX_TAIL_DIGITS = 6


#: The same, and the one '.' an 8.3 name may hold (exact_short_name checks there is one at most).
_SHORT_CHARS_DOT = _SHORT_CHARS | {"."}
#: ASCII (upper case given) to 8.3 characters: whatever is not one becomes '_'.
_TO_SHORT = {code: "_" for code in range(128) if chr(code) not in _SHORT_CHARS}


def exact_short_name(name: str) -> tuple[bytes, int] | None:
    """The 11-byte name field and case bits of ``name`` when one 8.3 entry holds it exactly."""
    if len(name) > 12 or not name.isascii():
        return None
    stem, dot, ext = name.partition(".")
    if not 1 <= len(stem) <= 8 or len(ext) > 3 or (dot and not ext) or "." in ext:
        return None
    upper = name.upper()
    if not _SHORT_CHARS_DOT.issuperset(upper):
        return None
    case = 0
    if name != upper:    # all-lower-case base or extension: the case bits; mixed case: a long name
        for part, bit in ((stem, LOWER_BASE), (ext, LOWER_EXT)):
            if part != part.upper():
                if part != part.lower():
                    return None
                case |= bit
    return (upper[:len(stem)].ljust(8) + upper[len(stem) + 1:].ljust(3)).encode("ascii"), case


def entries_for(name: str) -> int:
    """The directory entries ``name`` takes: one, or its long-name entries and one."""
    if exact_short_name(name) is not None:
        return 1
    return math.ceil(utf16_units(name) / LFN_UNITS_PER_ENTRY) + 1


def _short_chars(text: str) -> tuple[str, bool]:
    """``text`` upper-cased in 8.3 characters, '_' for any other; and whether that lost anything."""
    if text.isascii():
        upper = text.upper()
        out = upper.translate(_TO_SHORT)
        return out, out != upper
    out = "".join(ch if ch in _SHORT_CHARS else "_" for ch in (c.upper() if c.isascii() else "_" for c in text))
    return out, out != text.upper()


def basis_name(name: str) -> tuple[str, str, bool]:
    """The alias's stem (up to 8) and extension (up to 3), and whether a numeric tail is
    needed because the name lost characters or did not fit (FAT specification 7.2:
    spaces and leading periods go, the extension follows the last period)."""
    squeezed = name.replace(" ", "").lstrip(".")
    dot = squeezed.rfind(".")
    stem, ext = (squeezed[:dot], squeezed[dot + 1:]) if dot >= 0 else (squeezed, "")
    lossy = squeezed != name or "." in stem or len(stem) > 8 or len(ext) > 3
    stem, stem_lost = _short_chars(stem.replace(".", ""))
    ext, ext_lost = _short_chars(ext)
    return stem[:8] or "_", ext[:3], lossy or stem_lost or ext_lost


def _field(name: str) -> bytes:
    """'STEM.EXT' as the 11 bytes of a directory entry's name."""
    stem, _, ext = name.partition(".")
    return (stem.ljust(8) + ext.ljust(3)).encode("ascii")


class ShortNames:
    """The 8.3 names of one directory's entries, unique. Names that are 8.3 names
    already keep theirs: register them all (``exact``) before asking for aliases."""

    def __init__(self) -> None:
        self._names = UniqueNames()

    def exact(self, field: bytes) -> None:
        stem, ext = field[:8].decode("ascii").rstrip(), field[8:].decode("ascii").rstrip()
        self._names.take(f"{stem}.{ext}" if ext else stem)

    def alias(self, name: str) -> bytes:
        """An 8.3 name field for ``name`` that no other entry of this directory has."""
        stem, ext, lossy = basis_name(name)
        suffix = f".{ext}" if ext else ""
        if not lossy and self._names.take(stem + suffix):
            return _field(stem + suffix)
        # '~' and up to six digits; the prefix keeps at least one character
        return _field(self._names.numbered(lambda digits: stem[:7 - digits], "~", suffix, _MAX_TAIL_DIGITS))


def checksum(field: bytes) -> int:
    """The 8.3 name's checksum that each of its long-name entries carries."""
    total = 0
    for byte in field:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total
