"""ISO 9660 images (with Joliet and Rock Ridge) from a Payload, via pycdlib.

Three directory trees name the same files:
- ISO 9660 level 1 names (8.3, upper case), made unique per directory, for the
  oldest readers; nobody is expected to use them;
- Rock Ridge (1.09) carries every name exactly, as UTF-8, up to 255 bytes a
  component: what Linux mounts by default;
- Joliet carries names as UCS-2/UTF-16. The specification allows 64 characters a
  component; pycdlib allows 64 bytes of the name's UTF-8, which is the same for
  ASCII and fewer characters otherwise (21 for Japanese). A longer component is
  shortened as xorrisofs does: its extension is kept, the stem cut (never inside
  a character), and a ``~N`` added where two shortened names would collide. Characters Joliet forbids
  (``* / : ; ? \\``) become ``_`` there; Rock Ridge keeps them.
"""

from __future__ import annotations

import io
import re
TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs 1.5 ms of every prepare
    from typing import BinaryIO

from .model import Payload

#: pycdlib's cap on a Joliet name: 64 bytes of UTF-8 (ISO's Joliet allows 64 UCS-2 characters).
JOLIET_MAX_BYTES = 64
#: QEMU refuses images whose size is not a multiple of 4 KiB on some storage.
ALIGNMENT = 4096
_D_CHARS = re.compile(r"[^A-Z0-9_]")
_JOLIET_FORBIDDEN = re.compile(r"[*/:;?\\]")


def _joliet_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _split_ext(name: str, max_ext_size: int = 16) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0 or _joliet_size(name[dot:]) > max_ext_size:
        return name, ""
    return name[:dot], name[dot:]


def _cut(text: str, max_size: int) -> str:
    """The longest prefix of ``text`` whose Joliet size is within ``max_size`` (whole characters)."""
    out = []
    used = 0
    for ch in text:
        width = _joliet_size(ch)
        if used + width > max_size:
            break
        out.append(ch)
        used += width
    return "".join(out)


class _Namer:
    """Unique short names within one directory, for one naming scheme."""

    def __init__(self, shorten, fold=str.upper):
        self._shorten = shorten
        self._fold = fold
        self._taken: set[str] = set()

    def name(self, original: str, is_dir: bool) -> str:
        for attempt in range(0, 100000):
            candidate = self._shorten(original, is_dir, attempt)
            if self._fold(candidate) not in self._taken:
                self._taken.add(self._fold(candidate))
                return candidate
        raise AssertionError("no unique name found")  # a directory holds far fewer entries


def _iso9660_name(original: str, is_dir: bool, attempt: int) -> str:
    stem, ext = _split_ext(original) if not is_dir else (original, "")
    stem = _D_CHARS.sub("_", stem.upper()) or "_"
    ext = _D_CHARS.sub("_", ext[1:].upper())[:3]
    if attempt:
        tail = str(attempt)  # '~' is not a d-character
        stem = stem[: 8 - len(tail)] + tail
    else:
        stem = stem[:8]
    return stem if is_dir else f"{stem}.{ext};1"


def _joliet_name(original: str, is_dir: bool, attempt: int) -> str:
    clean = _JOLIET_FORBIDDEN.sub("_", original)
    if _joliet_size(clean) <= JOLIET_MAX_BYTES and not attempt:
        return clean
    stem, ext = _split_ext(clean) if not is_dir else (clean, "")
    tail = f"~{attempt}" if attempt else ""
    return _cut(stem, JOLIET_MAX_BYTES - _joliet_size(ext) - len(tail)) + tail + ext


def joliet_names(names: list[str]) -> dict[str, str]:
    """The Joliet name of each of a directory's entries (names as given)."""
    # Case-sensitive, as xorrisofs and genisoimage are: names that differ only in case stay as given.
    namer = _Namer(_joliet_name, fold=str)
    # Names that fit keep them; shortened ones are chosen after, so they yield.
    ordered = sorted(names, key=lambda n: _joliet_size(_JOLIET_FORBIDDEN.sub("_", n)) > JOLIET_MAX_BYTES)
    return {n: namer.name(n, False) for n in ordered}


def write_iso(payload: Payload, out: BinaryIO) -> int:
    """Write the payload's ISO image to ``out``; return the bytes written."""
    import pycdlib  # heavy: imported only when an image is built

    tree: dict = {}
    for item in payload.files:
        node = tree
        *dirs, leaf = item.name.split("/")
        for part in dirs:
            node = node.setdefault(part, {})
        node[leaf] = item

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3, rock_ridge="1.09", vol_ident=payload.label,
            sys_ident="LINUX", app_ident_str="PAYLOADHOOK")
    _add_tree(iso, tree, "", "", "")
    start = out.tell()
    iso.write_fp(out)
    iso.close()
    written = out.tell() - start
    padding = -written % ALIGNMENT
    out.write(b"\0" * padding)
    return written + padding


def _add_tree(iso, node: dict, iso_dir: str, joliet_dir: str, rr_dir: str) -> None:
    iso_namer = _Namer(_iso9660_name)
    joliet = joliet_names(list(node))
    for original in sorted(node):
        entry = node[original]
        is_dir = isinstance(entry, dict)
        iso_path = f"{iso_dir}/{iso_namer.name(original, is_dir)}"
        joliet_path = f"{joliet_dir}/{joliet[original]}"
        if is_dir:
            iso.add_directory(iso_path, rr_name=original, joliet_path=joliet_path)
            _add_tree(iso, entry, iso_path, joliet_path, f"{rr_dir}/{original}")
        else:
            iso.add_fp(io.BytesIO(entry.content), entry.size, iso_path,
                       rr_name=original, joliet_path=joliet_path)


def build_iso(payload: Payload) -> bytes:
    out = io.BytesIO()
    write_iso(payload, out)
    return out.getvalue()
