"""ISO 9660 images, with Rock Ridge and Joliet, mastered from a Payload.

payloadhook writes these images itself rather than through pycdlib: the hook builds
one at every start of a payload domain, and pycdlib's import and per-file work cost
more than the whole of a prepare that forks genisoimage (docs/speed.md). The
format subset needed here is small and fixed, and every image is read back in the
tests by xorriso, isoinfo, blkid, pycdlib and a Linux guest.

What an image holds (ECMA-119 with SUSP/RRIP 1.09 and Joliet level 3):

- sectors 0-15 empty; 16 the primary volume descriptor; 17 the Joliet supplementary
  one; 18 the terminator; then the four path tables (L and M, for each tree), the
  ISO 9660 directories, the Joliet directories, the Rock Ridge continuation areas
  and the files' data, each file from a sector of its own, shared by both trees;
- three names for each file (isonames.py): an ISO 9660 level 1 name for the oldest
  readers; the exact name as UTF-8 in a Rock Ridge NM entry (up to 255 bytes a
  component, in a continuation area when the record has no room): what Linux mounts
  by default; and a Joliet name in UTF-16, up to 64 units a component, as Windows
  reads it;
- files read-only (0444) and directories 0555, owned by root, all dated at the build;
- an image padded to a multiple of 4 KiB, which QEMU wants on some storage.

How: ``_name_tree`` gives every entry its three names; ``_layout`` places everything
and returns a frozen ``_Plan`` (one ``_TreePlan`` for each tree); ``_write`` turns the
plan into bytes. The bytes of records and of every Rock Ridge entry: isorecords.py.
"""

from __future__ import annotations

import struct
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported on the hook's path
    from typing import BinaryIO, Callable

    from .pieces import Piece

from ..errors import PayloadError, quote
from ..model import Payload, PayloadFile
from .isonames import JOLIET_MAX_UNITS, cut_units, iso9660_names, joliet_names
from .isorecords import (
    SECTOR,
    RockRidge,
    both16,
    both32,
    laid_out,
    place,
    record,
    record_date,
    record_length,
    volume_date,
)
from .pieces import write_pieces

__all__ = ["JOLIET_MAX_UNITS", "build_iso", "joliet_names", "write_iso"]

#: QEMU refuses images whose size is not a multiple of 4 KiB on some storage.
ALIGNMENT = 4096
#: A path table numbers directories with 16 bits.
MAX_DIRECTORIES = 65535
#: The largest file one directory record can describe (a 32-bit size; level 1: one extent).
MAX_FILE_SIZE = 2**32 - 1
#: The volume descriptors and the terminator take sectors 16-18.
_FIRST_FREE_SECTOR = 19


# -- the tree ------------------------------------------------------------------

class _Dir:
    """A directory of the image: its entries by name as given (children first, then named)."""

    __slots__ = ("parent", "entries", "named", "subdirs", "entry")

    def __init__(self, parent: _Dir | None):
        self.parent = parent or self
        self.entries: dict[str, _Dir | PayloadFile] = {}
        self.named: list[_Entry] = []           # in ISO 9660 order
        self.subdirs = 0
        self.entry: _Entry | None = None        # the entry naming it in its parent (root: None)


class _Entry:
    """One named entry of a directory, in both trees: its ISO 9660, Joliet and Rock Ridge
    names; its Rock Ridge bytes in the ISO 9660 record (``susp``) and those moved to a
    continuation area (``moved``) placed at ``ce`` (block, offset, length); a file's
    ``extent``. Set while laying out, read while writing."""

    __slots__ = ("item", "iso_id", "joliet_id", "rr_name", "susp", "moved", "ce", "extent")

    def __init__(self, item: _Dir | PayloadFile, iso_id: bytes, joliet_id: bytes, rr_name: bytes):
        self.item = item
        self.iso_id = iso_id
        self.joliet_id = joliet_id
        self.rr_name = rr_name
        self.susp = b""
        self.moved: bytes | None = None
        self.ce = (0, 0, 0)
        self.extent = 0


def _tree(payload: Payload) -> _Dir:
    root = _Dir(None)
    for item in payload.files:
        if item.size > MAX_FILE_SIZE:
            raise PayloadError(f"file {quote(item.name)} is {item.size} bytes, over ISO 9660's 4 GiB")
        node = root
        *dirs, leaf = item.name.split("/")
        for part in dirs:
            child = node.entries.get(part)
            if not isinstance(child, _Dir):   # the model guarantees no file is also a directory
                child = node.entries[part] = _Dir(node)
                node.subdirs += 1
            node = child
        node.entries[leaf] = item
    return root


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def _name_tree(root: _Dir) -> list[_Dir]:
    """Name every entry (isonames.py); return the directories in ISO 9660 path table order
    (breadth first, each directory's subdirectories by name)."""
    queue = [root]
    for directory in queue:
        originals = sorted(directory.entries)
        iso = iso9660_names([(name, isinstance(directory.entries[name], _Dir)) for name in originals])
        joliet = joliet_names(list(directory.entries))
        entries = []
        for original, iso_name in zip(originals, iso):
            item = directory.entries[original]
            entry = _Entry(item, iso_name.encode("ascii"), _utf16(joliet[original]), original.encode("utf-8"))
            if isinstance(item, _Dir):
                item.entry = entry
            entries.append(entry)
        entries.sort(key=lambda e: e.iso_id)
        directory.named = entries
        queue.extend(e.item for e in entries if isinstance(e.item, _Dir))
    if len(queue) > MAX_DIRECTORIES:
        raise PayloadError(f"cdrom payload has {len(queue)} directories, over the {MAX_DIRECTORIES} "
                           "a path table can number")
    return queue


# -- layout --------------------------------------------------------------------

class _Frozen:
    """What the layout decided: fields given once, by keyword, then read-only; the writer
    only reads them. (A plain class: prepare does not import dataclasses for it; docs/speed.md.)"""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **fields: object):
        if set(fields) != set(self.__slots__):
            raise TypeError(f"{type(self).__name__} needs {', '.join(self.__slots__)}")
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")


class _PlacedDir(_Frozen):
    """A directory as one tree has it: its identifier, path table numbers, records in that
    tree's order, and its extent."""

    __slots__ = ("node", "identifier", "number", "parent_number", "records", "extent", "size")
    node: _Dir
    identifier: bytes
    number: int
    parent_number: int
    records: tuple[_Entry, ...]
    extent: int
    size: int


class _TreePlan(_Frozen):
    """One directory tree of the image: ISO 9660 with Rock Ridge, or Joliet."""

    __slots__ = ("joliet", "dirs", "placed", "path_table_size", "l_table", "m_table")
    joliet: bool
    dirs: tuple[_PlacedDir, ...]          # path table order
    placed: dict[_Dir, _PlacedDir]
    path_table_size: int
    l_table: int                          # first sector of the little-endian path table
    m_table: int                          # and of the big-endian one

    def identifier(self, entry: _Entry) -> bytes:
        return entry.joliet_id if self.joliet else entry.iso_id


class _Plan(_Frozen):
    """Where everything of an image goes; what ``_write`` needs, and nothing to decide."""

    __slots__ = ("label", "stamp", "date", "rock_ridge", "iso", "joliet", "er_ce", "moved", "ce_bytes", "files",
                 "data_end", "total")
    label: str
    stamp: time.struct_time
    date: bytes
    rock_ridge: RockRidge
    iso: _TreePlan
    joliet: _TreePlan
    er_ce: tuple[int, int, int]           # where the root's CE finds the ER
    moved: tuple[_Entry, ...]             # entries with names in the continuation area
    ce_bytes: int
    files: tuple[_Entry, ...]             # in the order of their data
    data_end: int
    total: int


def _tree_order(root: _Dir, joliet: bool, iso_order: list[_Dir]) -> list[tuple[_Dir, list[_Entry]]]:
    """Directories in the tree's path table order, each with its records in the tree's order."""
    if not joliet:
        return [(directory, directory.named) for directory in iso_order]
    out = []
    queue = [root]
    for directory in queue:    # the same breadth-first walk, by Joliet name
        records = sorted(directory.named, key=lambda e: e.joliet_id)
        out.append((directory, records))
        queue.extend(e.item for e in records if isinstance(e.item, _Dir))
    return out


def _directory_size(directory: _Dir, records: list[_Entry], joliet: bool, rock_ridge: RockRidge) -> int:
    """Bytes of whole sectors the directory's records take in one tree, in the order written:
    where a sector ends depends on it."""
    if joliet:
        lengths = [34, 34] + [record_length(len(e.joliet_id)) for e in records]
    else:
        lengths = [record_length(1, len(rock_ridge.dot(2 + directory.subdirs, directory.parent is directory))),
                   record_length(1, len(rock_ridge.dot(2 + directory.parent.subdirs)))]
        lengths += [record_length(len(e.iso_id), len(e.susp)) for e in records]
    return place(lengths)[1]


def _plan_tree(ordered: list[tuple[_Dir, list[_Entry]]], sizes: list[int], joliet: bool, first: int,
               tables: tuple[int, int, int]) -> _TreePlan:
    """A tree's directories placed one after another from sector ``first``."""
    numbers: dict[_Dir, int] = {}
    dirs = []
    placed: dict[_Dir, _PlacedDir] = {}
    for (directory, records), size in zip(ordered, sizes):
        numbers[directory] = len(numbers) + 1
        entry = directory.entry
        identifier = b"\0" if entry is None else (entry.joliet_id if joliet else entry.iso_id)
        here = _PlacedDir(node=directory, identifier=identifier, number=numbers[directory],
                          parent_number=numbers[directory.parent], records=tuple(records), extent=first, size=size)
        dirs.append(here)
        placed[directory] = here
        first += size // SECTOR
    return _TreePlan(joliet=joliet, dirs=tuple(dirs), placed=placed, path_table_size=tables[0], l_table=tables[1],
                     m_table=tables[2])


def _path_table_size(identifiers: list[bytes]) -> int:
    return sum(8 + len(i) + len(i) % 2 for i in identifiers)


def _layout(payload: Payload, when: float) -> _Plan:
    """Name and place everything: the volume descriptors, both trees' path tables and
    directories, the continuation areas and the files' data, in that order."""
    stamp = time.gmtime(when)
    date = record_date(stamp)
    rock_ridge = RockRidge(date)
    root = _tree(payload)
    iso_order = _name_tree(root)
    moved = []
    for directory in iso_order:
        for entry in directory.named:
            item = entry.item
            links = 2 + item.subdirs if isinstance(item, _Dir) else None
            entry.susp, entry.moved = rock_ridge.entry(len(entry.iso_id), entry.rr_name, links)
            if entry.moved is not None:
                moved.append(entry)
    trees = [_tree_order(root, joliet, iso_order) for joliet in (False, True)]
    sizes = [[_directory_size(d, records, joliet, rock_ridge) for d, records in ordered]
             for joliet, ordered in zip((False, True), trees)]
    sector = _FIRST_FREE_SECTOR
    tables = []
    for joliet, ordered in zip((False, True), trees):   # the L and M path tables of each tree
        entries = [d.entry for d, _ in ordered]
        size = _path_table_size([b"\0" if e is None else (e.joliet_id if joliet else e.iso_id) for e in entries])
        table_sectors = -(-size // SECTOR)
        tables.append((size, sector, sector + table_sectors))
        sector += 2 * table_sectors
    plans = []
    for joliet, ordered, tree_sizes, table in zip((False, True), trees, sizes, tables):
        plans.append(_plan_tree(ordered, tree_sizes, joliet, sector, table))
        sector += sum(tree_sizes) // SECTOR
    # Continuation areas: the root's ER first, then long names.
    offsets, ce_bytes = place([len(RockRidge.ER)] + [len(entry.moved or b"") for entry in moved])
    places = [(sector + offset // SECTOR, offset % SECTOR) for offset in offsets]
    er_ce = (*places[0], len(RockRidge.ER))
    for entry, (block, offset) in zip(moved, places[1:]):
        entry.ce = (block, offset, len(entry.moved or b""))
    sector += ce_bytes // SECTOR
    files = []
    for directory in iso_order:
        for entry in directory.named:
            if isinstance(entry.item, PayloadFile):
                files.append(entry)
                entry.extent = sector if entry.item.size else 0
                sector += -(-entry.item.size // SECTOR)
    data_end = sector * SECTOR
    return _Plan(label=payload.label, stamp=stamp, date=date, rock_ridge=rock_ridge, iso=plans[0], joliet=plans[1],
                 er_ce=er_ce, moved=tuple(moved), ce_bytes=ce_bytes, files=tuple(files), data_end=data_end,
                 total=-(-data_end // ALIGNMENT) * ALIGNMENT)


# -- writing -------------------------------------------------------------------

def _directory(plan: _Plan, tree: _TreePlan, here: _PlacedDir) -> bytes:
    """A directory's sectors in one tree: '.', '..', then its records."""
    rock_ridge = None if tree.joliet else plan.rock_ridge
    parent = tree.placed[here.node.parent]
    dot = dotdot = b""
    if rock_ridge is not None:
        node = here.node
        dot = rock_ridge.dot(2 + node.subdirs, node.parent is node, plan.er_ce)
        dotdot = rock_ridge.dot(2 + node.parent.subdirs)
    records = [record(here.extent, here.size, plan.date, True, b"\0", dot),
               record(parent.extent, parent.size, plan.date, True, b"\1", dotdot)]
    for entry in here.records:
        susp = b""
        if rock_ridge is not None:
            susp = entry.susp if entry.moved is None else entry.susp[:-rock_ridge.CE_SIZE] + rock_ridge.ce(entry.ce)
        item = entry.item
        if isinstance(item, _Dir):
            sub = tree.placed[item]
            records.append(record(sub.extent, sub.size, plan.date, True, tree.identifier(entry), susp))
        else:
            records.append(record(entry.extent, item.size, plan.date, False, tree.identifier(entry), susp))
    return laid_out(records, here.size)


def _path_table(tree: _TreePlan, big_endian: bool) -> bytes:
    fmt = struct.Struct(">BBIH" if big_endian else "<BBIH")
    out = bytearray()
    for here in tree.dirs:
        out += fmt.pack(len(here.identifier), 0, here.extent, here.parent_number) + here.identifier
        if len(here.identifier) % 2:
            out += b"\0"
    return bytes(out).ljust(-(-tree.path_table_size // SECTOR) * SECTOR, b"\0")


def _joliet_text(value: str, size: int) -> bytes:
    encoded = _utf16(cut_units(value, size // 2))
    return encoded + (b"\0 " * size)[:size - len(encoded)]


def _iso_text(value: str, size: int) -> bytes:
    encoded = value.encode("utf-8")[:size].decode("utf-8", "ignore").encode("utf-8")
    return encoded.ljust(size, b" ")


def _volume_descriptor(plan: _Plan, tree: _TreePlan) -> bytes:
    """The primary volume descriptor (ISO 9660 tree) or the Joliet supplementary one."""
    text: Callable[[str, int], bytes] = _joliet_text if tree.joliet else _iso_text
    root = tree.dirs[0]
    created = volume_date(plan.stamp)
    descriptor = b"".join((
        bytes((2 if tree.joliet else 1,)), b"CD001\x01\x00", text("LINUX", 32), text(plan.label, 32), b"\0" * 8,
        both32(plan.total // SECTOR), b"%/E".ljust(32, b"\0") if tree.joliet else b"\0" * 32,
        both16(1), both16(1), both16(SECTOR),
        both32(tree.path_table_size), struct.pack("<I", tree.l_table), b"\0" * 4,
        struct.pack(">I", tree.m_table), b"\0" * 4,
        record(root.extent, root.size, plan.date, True, b"\0"),
        text("", 128), text("", 128), text("", 128), text("PAYLOADHOOK", 128),
        text("", 37), text("", 37), text("", 37),
        created, created, volume_date(None), created, b"\x01\x00",
    ))
    return descriptor.ljust(SECTOR, b"\0")


def _write(plan: _Plan, out: BinaryIO) -> int:
    head = bytearray(16 * SECTOR)
    head += _volume_descriptor(plan, plan.iso)
    head += _volume_descriptor(plan, plan.joliet)
    head += b"\xffCD001\x01".ljust(SECTOR, b"\0")
    for tree in (plan.iso, plan.joliet):
        head += _path_table(tree, False)
        head += _path_table(tree, True)
    for tree in (plan.iso, plan.joliet):
        for here in tree.dirs:
            head += _directory(plan, tree, here)
    head += laid_out([RockRidge.ER] + [entry.moved or b"" for entry in plan.moved], plan.ce_bytes)
    pieces: list[Piece] = [head]
    zeros = memoryview(bytes(max(SECTOR, ALIGNMENT)))
    for entry in plan.files:
        assert isinstance(entry.item, PayloadFile)
        size = entry.item.size
        pieces.append(entry.item.data)    # bytes, or the source they are streamed from
        if size % SECTOR:
            pieces.append(zeros[:SECTOR - size % SECTOR])
    pieces.append(zeros[:plan.total - plan.data_end])
    write_pieces(out, pieces)
    return plan.total


def write_iso(payload: Payload, out: BinaryIO, when: float | None = None) -> int:
    """Write the payload's ISO image to ``out``; return the bytes written.

    ``when`` dates the volume and every record (default: now)."""
    return _write(_layout(payload, time.time() if when is None else when), out)


def build_iso(payload: Payload, when: float | None = None) -> bytes:
    import io
    out = io.BytesIO()
    write_iso(payload, out, when)
    return out.getvalue()
