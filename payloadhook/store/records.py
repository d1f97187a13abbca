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
    found = []
    for entry in sorted(entries):
        if entry.startswith("."):
            continue
        try:
            fd = posix.open(index + "/" + entry, posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_NONBLOCK | posix.O_CLOEXEC)
        except OSError:
            continue
        try:
            text = posix.read(fd, _INDEX_READ)
        except OSError:
            continue
        finally:
            posix.close(fd)
        path = fsdecode(text)
        if path.startswith("/") and normpath(path) == path and "\n" not in path:
            found.append(path)
    return found


def has_record(image_dir: str, domain: str, index: str | None = None) -> bool:
    """A cheap look (following no link at the end) before the store is imported: a record,
    or one a killed prepare left half-written, in image_dir or any indexed directory."""
    name = record_name(domain)
    dirs = [image_dir] + (indexed_dirs(index) if index else [])
    for directory in dirs:
        if (lexists(f"{directory}/{RECORDS}/{name}")
                or lexists(f"{directory}/{RECORDS}/{tmp_name(name)}")):
            return True
    return False
