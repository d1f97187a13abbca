"""The names a file has in an ISO image's three trees, one directory at a time.

- ISO 9660 level 1: 8.3, upper case, d-characters only, made unique per directory
  with a number in the stem ('~' is not a d-character);
- Joliet: the name as given, with ``* / : ; ? \\`` as ``_``, up to 64 UTF-16 units; a
  longer one keeps its extension and loses the end of its stem (never half a
  character), with ``~N`` where two shortened names would collide, as xorrisofs does;
- Rock Ridge: the name as given, in UTF-8 (nothing to decide: iso.py writes it).
"""

from __future__ import annotations

from ..model import utf16_units
from .uniquenames import UniqueNames

#: Joliet's cap on a name component, in UTF-16 units (ECMA-119 Joliet specification, 64).
JOLIET_MAX_UNITS = 64
_D_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
#: ASCII to d-characters (upper case given), as a bytes table: whatever is not one becomes
#: '_'. (str.translate with a mapping looks up every character, three times as slow.)
_TO_D_CHARS = bytes(code if chr(code) in _D_CHARS else ord("_") for code in range(256))
#: The same, upper-casing first (ASCII's upper case is a byte a byte).
_UPPER_TO_D_CHARS = bytes(_TO_D_CHARS[ord(chr(code).upper())] if code < 128 else ord("_") for code in range(256))
_JOLIET_FORBIDDEN = "*/:;?\\"
_TO_JOLIET = str.maketrans(_JOLIET_FORBIDDEN, "_" * len(_JOLIET_FORBIDDEN))
#: The same for an ASCII name, as a bytes table (as _TO_D_CHARS, for speed).
_TO_JOLIET_ASCII = bytes(ord("_") if chr(code) in _JOLIET_FORBIDDEN else code for code in range(256))


#: The longest extension, dot included, that a name keeps as one (in UTF-16 units).
_MAX_EXT_UNITS = 16


def _split_ext(name: str, max_ext_units: int = _MAX_EXT_UNITS) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    ext = name[dot:]
    # a UTF-16 unit a character, two outside the BMP: only a short non-ASCII one needs counting
    if len(ext) > max_ext_units or (not ext.isascii() and utf16_units(ext) > max_ext_units):
        return name, ""
    return name[:dot], ext


def cut_units(text: str, max_units: int) -> str:
    """The longest prefix of ``text`` within ``max_units`` UTF-16 units, whole characters only."""
    if len(text) <= max_units // 2 or text.isascii() or max(text) <= "\uffff":
        return text[:max_units]    # a unit a character (every name the BMP holds): no walk
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > max_units:
            return text[:index]
    return text


def _d_chars(text: str) -> str:
    if text.isascii():
        return text.encode("ascii").translate(_TO_D_CHARS).decode("ascii")
    return "".join(ch if ch in _D_CHARS else "_" for ch in text)


def _iso9660_basis(original: str, is_dir: bool) -> tuple[str, str]:
    """The level 1 stem (not yet cut to 8) and the suffix ('.EXT;1' for a file) of a name:
    the rule. (iso9660_names applies it to an ASCII name in one translation.)"""
    stem, ext = _split_ext(original) if not is_dir else (original, "")
    return _d_chars(stem.upper()) or "_", "" if is_dir else f".{_d_chars(ext[1:].upper())[:3]};1"


def iso9660_names(entries: list[tuple[str, bool]]) -> list[str]:
    """The level 1 names of a directory's entries ((name as given, is a directory), in
    order): 8.3, unique; a name whose 8.3 form is taken gets a number in its stem ('~' is
    not a d-character), the next one its prefix has not given out."""
    names = UniqueNames()
    take = names.take
    out: list[str] = []
    append = out.append
    for original, is_dir in entries:
        if original.isascii():    # _iso9660_basis in one translation: a character a byte, the dot between
            cleaned = original.encode("ascii").translate(_UPPER_TO_D_CHARS).decode("ascii")
            dot = -1 if is_dir else original.rfind(".")
            if dot <= 0 or len(original) - dot > _MAX_EXT_UNITS:    # no extension (_split_ext)
                stem, suffix = cleaned, "" if is_dir else ".;1"
            else:
                stem, suffix = cleaned[:dot], "." + cleaned[dot + 1:dot + 4] + ";1"
        else:
            stem, suffix = _iso9660_basis(original, is_dir)
        first = stem[:8] + suffix
        if take(first):
            append(first)
        else:
            append(names.numbered(lambda digits: stem[:8 - digits], "", suffix, 8))
    return out


def joliet_names(names: list[str]) -> dict[str, str]:
    """The Joliet name of each of a directory's entries (names as given)."""
    # ``* / : ; ? \\`` as '_': an ASCII name by a bytes table, any other by str.translate
    clean = {n: n.encode("ascii").translate(_TO_JOLIET_ASCII).decode("ascii") if n.isascii() else
             n.translate(_TO_JOLIET) for n in names}
    # a name of up to 32 characters fits in 64 units whatever they are: only longer ones are counted
    if len(set(clean.values())) == len(clean) and all(
            len(c) <= JOLIET_MAX_UNITS // 2 or utf16_units(c) <= JOLIET_MAX_UNITS for c in clean.values()):
        return clean    # the usual directory: every name fits as it is
    # Case-sensitive, as xorrisofs and genisoimage are: names that differ only in case stay as given.
    # Names that fit keep them; shortened ones are chosen after, so they yield.
    units = {n: utf16_units(c) for n, c in clean.items()}
    ordered = sorted(names, key=lambda n: units[n] > JOLIET_MAX_UNITS)
    unique = UniqueNames()
    take = unique.take
    result = {}
    for name in ordered:
        cleaned = clean[name]
        fits = units[name] <= JOLIET_MAX_UNITS
        if fits and take(cleaned):
            result[name] = cleaned
            continue
        stem, ext = _split_ext(cleaned)
        room = JOLIET_MAX_UNITS - utf16_units(ext)
        if not fits:
            cut = cut_units(stem, room) + ext
            if take(cut):
                result[name] = cut
                continue
        result[name] = unique.numbered(lambda digits: cut_units(stem, room - 1 - digits), "~", ext, 6)
    return result
