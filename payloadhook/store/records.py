"""Where the store keeps its records, and the names it gives files: importable at no cost.

The hook asks at every ``release`` whether a domain has a record at all; most have none,
and finding that out must not cost the imports of the store (json, dataclasses). What a
record holds, and how it is read and checked, is in :mod:`.book`.

Layout (``image_dir`` is the configuration's; the rest is the store's own):

- ``IMAGE_DIR/.payloadhook/`` (root, 0700): one record per domain that prepare built images
  for, ``dom-<name in hex>.json`` (``dom-sha256-<hex>.json`` for a name over 100 bytes).
- ``IMAGE_DIR/.<name>.payloadhook-tmp``: an image (or, in ``.payloadhook/``, a record) while
  it is written (:mod:`payloadhook.filenames`).
- ``INDEX_DIR`` (``/run/payloadhook.index``, root, 0700): one file per image directory that
  holds records, so that ``release`` and ``gc`` find images where they were built after
  ``image_dir`` changed. Each file, ``dir-<path in hex>`` (``dir-sha256-<hex>`` for a path
  over 100 bytes), holds that path.
"""

from __future__ import annotations

import posix

from ..posixenv import fsdecode, getenv, lexists, normpath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

from ..filenames import tmp_name

#: The record directory, inside image_dir.
RECORDS = ".payloadhook"
#: The index of image directories in use, at a fixed place whatever the configuration says.
INDEX_DIR = "/run/payloadhook.index"
#: Tests (and a host that wants it elsewhere) name another index with this variable.
INDEX_ENV = "PAYLOADHOOK_INDEX"
_HEX_LIMIT = 100   # longer domain names are hashed, to keep record names well under NAME_MAX (255)
_INDEX_READ = 8192


def record_name(domain: str) -> str:
    """The record file of a domain: its name in hex, or a SHA-256 of a long one."""
    raw = domain.encode("utf-8", "surrogateescape")
    if len(raw) <= _HEX_LIMIT:
        return "dom-" + raw.hex() + ".json"
    import hashlib
    return "dom-sha256-" + hashlib.sha256(raw).hexdigest() + ".json"


def index_dir(environ: Mapping[str, str] | None = None) -> str:
    return getenv(INDEX_ENV, environ) or INDEX_DIR


def indexed_dirs(index: str) -> list[str]:
    """The image directories the index names (unchecked: the store checks what it opens)."""
    try:
        entries = posix.listdir(index)
    except OSError:
        return []
    return [path for path in (_read_entry(index, entry) for entry in sorted(entries)) if path is not None]


def _read_entry(index: str, entry: str) -> str | None:
    """The path an index entry holds; None for a hidden (temporary) entry or one not a path."""
    if entry.startswith("."):
        return None
    try:
        fd = posix.open(index + "/" + entry, posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_NONBLOCK | posix.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = posix.read(fd, _INDEX_READ)
    except OSError:
        return None
    finally:
        posix.close(fd)
    return _a_path(fsdecode(text))


def _a_path(path: str) -> str | None:
    return path if path.startswith("/") and normpath(path) == path and "\n" not in path else None


def _named_dir(index: str, entry: str) -> str | None:
    """The path an index entry stands for, read from its name where that is the path in hex
    (``dir-<hex>``, store/dirs.py: no file to open), else from the file (a hashed long path)."""
    if entry.startswith("dir-") and not entry.startswith("dir-sha256-"):
        try:
            return _a_path(fsdecode(bytes.fromhex(entry[4:])))
        except ValueError:
            return None
    return _read_entry(index, entry)


def has_record(image_dir: str, domain: str, index: str | None = None) -> bool:
    """A cheap look (following no link at the end) before the store is imported: a record,
    or one a killed prepare left half-written, in image_dir or any indexed directory. The
    index is listed only when image_dir has none, and read only for entries whose name is
    not their path (store/dirs.py gives a directory that name; gc counts an entry only
    under it)."""
    name = record_name(domain)
    names = (f"/{RECORDS}/{name}", f"/{RECORDS}/{tmp_name(name)}")
    if lexists(image_dir + names[0]) or lexists(image_dir + names[1]):
        return True
    if not index:
        return False
    try:
        entries = posix.listdir(index)
    except OSError:
        return False
    for entry in entries:
        directory = _named_dir(index, entry)
        if directory is not None and directory != image_dir and (
                lexists(directory + names[0]) or lexists(directory + names[1])):
            return True
    return False
