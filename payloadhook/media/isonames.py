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

#: Joliet's cap on a name component, in UTF-16 units (ECMA-119 Joliet specification, 64).
JOLIET_MAX_UNITS = 64
_D_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
#: ASCII to d-characters (upper case given): whatever is not one becomes '_'.
_TO_D_CHARS = {code: "_" for code in range(128) if chr(code) not in _D_CHARS}
_JOLIET_FORBIDDEN = "*/:;?\\"
_TO_JOLIET = str.maketrans(_JOLIET_FORBIDDEN, "_" * len(_JOLIET_FORBIDDEN))


def _split_ext(name: str, max_ext_units: int = 16) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0 or utf16_units(name[dot:]) > max_ext_units:
        return name, ""
    return name[:dot], name[dot:]


def cut_units(text: str, max_units: int) -> str:
    """The longest prefix of ``text`` within ``max_units`` UTF-16 units, whole characters only."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > max_units:
            return text[:index]
    return text


class Namer:
    """Unique names within one directory, for one naming scheme."""

    def __init__(self, shorten, fold=str.upper):
        self._shorten = shorten
        self._fold = fold
        self._taken: set[str] = set()

    def name(self, original: str, is_dir: bool) -> str:
        candidate = self._shorten(original, is_dir, 0)
        folded = self._fold(candidate)
        if folded not in self._taken:    # the usual case, made short
            self._taken.add(folded)
            return candidate
        for attempt in range(1, 100000):
            candidate = self._shorten(original, is_dir, attempt)
            if self._fold(candidate) not in self._taken:
                self._taken.add(self._fold(candidate))
                return candidate
        raise AssertionError("no unique name found")  # a directory holds far fewer entries


def _d_chars(text: str) -> str:
    if text.isascii():
        return text.translate(_TO_D_CHARS)
    return "".join(ch if ch in _D_CHARS else "_" for ch in text)


def iso9660_name(original: str, is_dir: bool, attempt: int) -> str:
    stem, ext = _split_ext(original) if not is_dir else (original, "")
    stem = _d_chars(stem.upper()) or "_"
    ext = _d_chars(ext[1:].upper())[:3]
    if attempt:
        tail = str(attempt)  # '~' is not a d-character
        stem = stem[: 8 - len(tail)] + tail
    else:
        stem = stem[:8]
    return stem if is_dir else f"{stem}.{ext};1"


def _joliet_clean(name: str) -> str:
    return name.translate(_TO_JOLIET)


def _joliet_name(original: str, is_dir: bool, attempt: int) -> str:
    clean = _joliet_clean(original)
    if not attempt and utf16_units(clean) <= JOLIET_MAX_UNITS:
        return clean
    stem, ext = _split_ext(clean) if not is_dir else (clean, "")
    tail = f"~{attempt}" if attempt else ""
    return cut_units(stem, JOLIET_MAX_UNITS - utf16_units(ext) - len(tail)) + tail + ext


def joliet_names(names: list[str]) -> dict[str, str]:
    """The Joliet name of each of a directory's entries (names as given)."""
    clean = {n: _joliet_clean(n) for n in names}
    if len(set(clean.values())) == len(clean) and all(utf16_units(c) <= JOLIET_MAX_UNITS for c in clean.values()):
        return clean    # the usual directory: every name fits as it is
    # Case-sensitive, as xorrisofs and genisoimage are: names that differ only in case stay as given.
    namer = Namer(_joliet_name, fold=str)
    # Names that fit keep them; shortened ones are chosen after, so they yield.
    ordered = sorted(names, key=lambda n: utf16_units(_joliet_clean(n)) > JOLIET_MAX_UNITS)
    return {n: namer.name(n, False) for n in ordered}
