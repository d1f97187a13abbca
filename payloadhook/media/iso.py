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

How: ``_name_tree`` gives every entry its three names and makes each of its records but
the extent and size (their lengths give each directory's size); ``_layout`` places
everything and returns a frozen ``_Plan`` (one ``_TreePlan`` for each tree); ``_write``
turns the plan into bytes, every directory in one pass. Nothing of it is in a reference
cycle: the hook runs without the collector, and all of it is freed once the image is
written. The bytes of records and of every Rock Ridge entry: isorecords.py.
"""

from __future__ import annotations

import struct
import time
from codecs import utf_16_be_encode  # codecs: loaded with the interpreter

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported on the hook's path
    from typing import BinaryIO, Callable

    from .pieces import Piece

from ..errors import PayloadError, quote
from ..model import Payload, PayloadFile
from .isonames import JOLIET_MAX_UNITS, cut_units, iso9660_names, joliet_names
from .isorecords import (
    BYTES,
    RECORD_FIXED,
    RECORD_LEADS,
    RECORD_NUMBERS,
    RECORD_START,
    SECTOR,
    RockRidge,
    both16,
    both32,
    laid_out,
    place,
    record,
    record_date,
    record_middle,
    record_tail,
    volume_date,
)
from .pieces import Zeros, padding, write_pieces

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
#
# Every reference points down the tree (a directory to its entries, an entry to what it
# names), and each tree's numbering is a map beside it: nothing the layout makes is in a
# reference cycle, so it is all freed as the image is written, without the collector.

class _Dir:
    """A directory of the image: its entries by name as given, then its records in ISO
    9660 order (``named``), and how many subdirectories it has."""

    __slots__ = ("entries", "named", "subdirs")

    def __init__(self) -> None:
        self.entries: dict[str, _Dir | PayloadFile] = {}
        self.named: list[_Entry] = []
        self.subdirs = 0


class _Entry:
    """One named entry of a directory, in both trees: what it names, its ISO 9660 and
    Joliet identifiers, and each tree's record from its date on (``iso_rest``: the date,
    flags and volume sequence number, the identifier and the Rock Ridge entries;
    ``joliet_rest``) with the record's length; the NM entries moved to a continuation
    area (``moved``); a file's extent and size as a record holds them (``numbers``, the
    same in both trees). Set while laying out, read while writing."""

    __slots__ = ("item", "iso_id", "joliet_id", "iso_rest", "iso_length", "joliet_rest", "joliet_length", "moved",
                 "numbers")

    def __init__(self, item: _Dir | PayloadFile, iso_id: bytes, joliet_id: bytes, middle: bytes, iso_tail: bytes,
                 moved: bytes | None):
        self.item = item
        self.iso_id = iso_id
        self.joliet_id = joliet_id
        self.iso_rest = middle + iso_tail
        self.iso_length = RECORD_FIXED + len(iso_tail)
        # record_tail(joliet_id), inline: a UTF-16 identifier has an even length, so one
        # byte of padding follows it and none the record
        self.joliet_rest = middle + BYTES[len(joliet_id)] + joliet_id + b"\0"
        self.joliet_length = RECORD_FIXED + 2 + len(joliet_id)
        self.moved = moved
        self.numbers = _NO_EXTENT


#: The extent and size of an empty file (and of a directory until placed).
_NO_EXTENT = RECORD_NUMBERS.pack(0, bytes(4), 0, bytes(4))


def _numbers(extent: int, size: int) -> bytes:
    return RECORD_NUMBERS.pack(extent, extent.to_bytes(4, "big"), size, size.to_bytes(4, "big"))


def _tree(payload: Payload) -> _Dir:
    root = _Dir()
    nodes = {"": root}    # by path: a file finds its directory in one look-up, most often
    for item in payload.files:
        if item.size > MAX_FILE_SIZE:
            raise PayloadError(f"file {quote(item.name)} is {item.size} bytes, over ISO 9660's 4 GiB")
        path, _, leaf = item.name.rpartition("/")
        node = nodes.get(path)
        if node is None:    # a directory not met yet: made, with those above it not made yet
            node = root
            for part in path.split("/"):
                child = node.entries.get(part)
                if not isinstance(child, _Dir):   # the model guarantees no file is also a directory
                    child = node.entries[part] = _Dir()
                    node.subdirs += 1
                node = child
            nodes[path] = node
        node.entries[leaf] = item
    return root


def _utf16(text: str) -> bytes:
    # the codec's function itself: str.encode looks a UTF-16 codec up by name at every call
    # (a fast path is kept for UTF-8, Latin-1 and ASCII only), four times the encoding's cost
    return utf_16_be_encode(text, "surrogatepass")[0]


def _name_tree(root: _Dir, rock_ridge: RockRidge, date: bytes) -> tuple[_Walk, list[_Entry], list[_Entry]]:
    """Name every entry (isonames.py) and make its records' tails; return the ISO 9660
    tree's walk (breadth first, each directory's subdirectories by name), the entries
    whose names are moved to the continuation area and the files, in that order."""
    queue = [root]
    parents = [0]
    identifiers = [b"\0"]
    moved: list[_Entry] = []
    files: list[_Entry] = []
    record = rock_ridge.record_tail
    as_dir, as_file = record_middle(date, True), record_middle(date, False)
    for index, directory in enumerate(queue):
        entries = directory.entries
        originals = sorted(entries)
        iso = iso9660_names([(name, isinstance(entries[name], _Dir)) for name in originals])
        joliet = joliet_names(list(entries))
        named = directory.named
        for at in sorted(range(len(iso)), key=iso.__getitem__):    # in ISO 9660 order
            original = originals[at]
            item = entries[original]
            iso_id = iso[at].encode("ascii")
            if isinstance(item, _Dir):
                queue.append(item)
                parents.append(index)
                identifiers.append(iso_id)
                tail, names = record(iso_id, original.encode("utf-8"), 2 + item.subdirs)
                middle = as_dir
            else:
                tail, names = record(iso_id, original.encode("utf-8"), None)
                middle = as_file
            entry = _Entry(item, iso_id, utf_16_be_encode(joliet[original], "surrogatepass")[0], middle, tail, names)
            if names is not None:
                moved.append(entry)
            if middle is as_file:
                files.append(entry)
            named.append(entry)
    if len(queue) > MAX_DIRECTORIES:
        raise PayloadError(f"cdrom payload has {len(queue)} directories, over the {MAX_DIRECTORIES} "
                           "a path table can number")
    return _Walk(queue, parents, identifiers, [directory.named for directory in queue]), moved, files


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


class _Walk:
    """A tree's breadth-first walk: its directories in path table order, each one's parent's
    place in it, identifier (the root's first) and records in the tree's order."""

    __slots__ = ("dirs", "parents", "identifiers", "records")

    def __init__(self, dirs: list[_Dir], parents: list[int], identifiers: list[bytes],
                 records: list[list[_Entry]]) -> None:
        self.dirs = dirs
        self.parents = parents
        self.identifiers = identifiers
        self.records = records


class _TreePlan(_Frozen):
    """One directory tree of the image, ISO 9660 with Rock Ridge or Joliet: its directories
    in path table order and, for each in that order, its records in the tree's order, its
    identifier, its parent's place, its extent and the bytes of its sectors."""

    __slots__ = ("joliet", "dirs", "index", "records", "identifiers", "parents", "extents", "sizes",
                 "path_table_size", "l_table", "m_table")
    joliet: bool
    dirs: list[_Dir]                      # path table order
    index: dict[_Dir, int]                # a directory's place in it
    records: list[list[_Entry]]
    identifiers: list[bytes]
    parents: list[int]
    extents: list[int]
    sizes: list[int]
    path_table_size: int
    l_table: int                          # first sector of the little-endian path table
    m_table: int                          # and of the big-endian one


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
    moved: list[_Entry]                   # entries with names in the continuation area
    ce_bytes: int
    files: list[_Entry]                   # in the order of their data
    data_end: int
    total: int


def _joliet_order(root: _Dir) -> _Walk:
    """The same breadth-first walk as the ISO 9660 tree's, by Joliet name."""
    queue = [root]
    parents = [0]
    identifiers = [b"\0"]
    records = []
    for index, directory in enumerate(queue):
        named = directory.named
        ids = [entry.joliet_id for entry in named]
        ordered = sorted(ids)    # unique in a directory: each sorts to one place
        if ids != ordered:       # (often the ISO 9660 order already)
            ordered_at = sorted(range(len(ids)), key=ids.__getitem__)
            named = [named[at] for at in ordered_at]
        records.append(named)
        for entry in named:
            if isinstance(entry.item, _Dir):
                queue.append(entry.item)
                parents.append(index)
                identifiers.append(entry.joliet_id)
    return _Walk(queue, parents, identifiers, records)


def _sectors(lengths: list[int]) -> int:
    """Bytes of whole sectors records of these lengths take, in this order (where a sector
    ends depends on it): one sector when they all fit in one, which is most directories."""
    if sum(lengths) <= SECTOR:
        return SECTOR
    return place(lengths)[1]


def _plan_tree(joliet: bool, walk: _Walk, sizes: list[int], first: int, tables: tuple[int, int, int]) -> _TreePlan:
    """A tree's directories placed one after another from sector ``first``."""
    extents = []
    for size in sizes:
        extents.append(first)
        first += size // SECTOR
    return _TreePlan(joliet=joliet, dirs=walk.dirs, index={directory: i for i, directory in enumerate(walk.dirs)},
                     records=walk.records, identifiers=walk.identifiers, parents=walk.parents, extents=extents,
                     sizes=sizes,
                     path_table_size=tables[0], l_table=tables[1], m_table=tables[2])


def _path_table_size(identifiers: list[bytes]) -> int:
    return sum(8 + len(i) + len(i) % 2 for i in identifiers)


def _layout(payload: Payload, when: float) -> _Plan:
    """Name and place everything: the volume descriptors, both trees' path tables and
    directories, the continuation areas and the files' data, in that order."""
    stamp = time.gmtime(when)
    date = record_date(stamp)
    rock_ridge = RockRidge(date)
    root = _tree(payload)
    iso, moved, files = _name_tree(root, rock_ridge, date)
    joliet = _joliet_order(root)
    # '.' and '..' take the same room in every directory of a tree but the root's '.' (SP and a CE)
    dot = RECORD_FIXED + len(record_tail(b"\0", rock_ridge.dot(2)))
    root_dot = RECORD_FIXED + len(record_tail(b"\0", rock_ridge.dot(2, True)))
    iso_sizes = [_sectors([dot, dot] + [entry.iso_length for entry in here]) for here in iso.records]
    iso_sizes[0] = _sectors([root_dot, dot] + [entry.iso_length for entry in iso.records[0]])
    joliet_sizes = [_sectors([34, 34] + [entry.joliet_length for entry in here]) for here in joliet.records]
    sector = _FIRST_FREE_SECTOR
    tables = []
    for walk in (iso, joliet):   # the L and M path tables of each tree
        size = _path_table_size(walk.identifiers)
        table_sectors = -(-size // SECTOR)
        tables.append((size, sector, sector + table_sectors))
        sector += 2 * table_sectors
    iso_plan = _plan_tree(False, iso, iso_sizes, sector, tables[0])
    sector += sum(iso_sizes) // SECTOR
    joliet_plan = _plan_tree(True, joliet, joliet_sizes, sector, tables[1])
    sector += sum(joliet_sizes) // SECTOR
    # Continuation areas: the root's ER first, then long names; each record moving one
    # ends in the CE that finds them.
    offsets, ce_bytes = place([len(RockRidge.ER)] + [len(entry.moved or b"") for entry in moved])
    places = [(sector + offset // SECTOR, offset % SECTOR) for offset in offsets]
    er_ce = (*places[0], len(RockRidge.ER))
    for entry, (block, offset) in zip(moved, places[1:]):
        item = entry.item
        links = 2 + item.subdirs if isinstance(item, _Dir) else None
        tail = rock_ridge.moved_record_tail(entry.iso_id, links, (block, offset, len(entry.moved or b"")))
        entry.iso_rest = record_middle(date, links is not None) + tail
    sector += ce_bytes // SECTOR
    for entry in files:
        item = entry.item
        assert not isinstance(item, _Dir)
        size = item.size
        if size:
            entry.numbers = _numbers(sector, size)
            sector += -(-size // SECTOR)
    data_end = sector * SECTOR
    return _Plan(label=payload.label, stamp=stamp, date=date, rock_ridge=rock_ridge, iso=iso_plan, joliet=joliet_plan,
                 er_ce=er_ce, moved=moved, ce_bytes=ce_bytes, files=files, data_end=data_end,
                 total=-(-data_end // ALIGNMENT) * ALIGNMENT)


# -- writing -------------------------------------------------------------------

def _directories(plan: _Plan, tree: _TreePlan, out: bytearray) -> None:
    """Every directory of a tree, in order, at the end of ``out`` (which ends at a sector's
    end): '.', '..', then its records, none crossing a sector, each directory padded to the
    size laid out for it."""
    rock_ridge = None if tree.joliet else plan.rock_ridge
    as_dir = record_middle(plan.date, True)
    sizes, index, parents = tree.sizes, tree.index, tree.parents
    numbers = [_numbers(extent, size) for extent, size in zip(tree.extents, sizes)]
    dots = [as_dir + record_tail(b"\0"), as_dir + record_tail(b"\1")]
    for number, (here, records) in enumerate(zip(tree.dirs, tree.records)):
        start = len(out)
        end = start + sizes[number]
        parent = parents[number]
        if rock_ridge is not None:
            dots = [as_dir + record_tail(b"\0", rock_ridge.dot(2 + here.subdirs, number == 0, plan.er_ce)),
                    as_dir + record_tail(b"\1", rock_ridge.dot(2 + tree.dirs[parent].subdirs))]
        for rest, at in zip(dots, (number, parent)):
            length = RECORD_START.size + len(rest)
            if len(out) % SECTOR + length > SECTOR:
                out += bytes(SECTOR - len(out) % SECTOR)
            out += RECORD_LEADS[length]
            out += numbers[at]
            out += rest
        crossing = sizes[number] > SECTOR    # in one sector (most directories), no record crosses one
        for entry in records:
            if rock_ridge is None:
                rest, length = entry.joliet_rest, entry.joliet_length
            else:
                rest, length = entry.iso_rest, entry.iso_length
            if crossing and len(out) % SECTOR + length > SECTOR:
                out += bytes(SECTOR - len(out) % SECTOR)
            out += RECORD_LEADS[length]
            item = entry.item
            out += numbers[index[item]] if isinstance(item, _Dir) else entry.numbers
            out += rest
        if len(out) > end:   # the layout and the writer disagree: never write a shifted image
            raise AssertionError("records outgrew the extent laid out for them")
        out += bytes(end - len(out))


def _path_table(tree: _TreePlan, big_endian: bool) -> bytes:
    fmt = struct.Struct(">BBIH" if big_endian else "<BBIH")
    out = bytearray()
    for identifier, extent, parent in zip(tree.identifiers, tree.extents, tree.parents):
        out += fmt.pack(len(identifier), 0, extent, parent + 1) + identifier
        if len(identifier) % 2:
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
    created = volume_date(plan.stamp)
    descriptor = b"".join((
        bytes((2 if tree.joliet else 1,)), b"CD001\x01\x00", text("LINUX", 32), text(plan.label, 32), b"\0" * 8,
        both32(plan.total // SECTOR), b"%/E".ljust(32, b"\0") if tree.joliet else b"\0" * 32,
        both16(1), both16(1), both16(SECTOR),
        both32(tree.path_table_size), struct.pack("<I", tree.l_table), b"\0" * 4,
        struct.pack(">I", tree.m_table), b"\0" * 4,
        record(tree.extents[0], tree.sizes[0], plan.date, True, b"\0"),
        text("", 128), text("", 128), text("", 128), text("PAYLOADHOOK", 128),
        text("", 37), text("", 37), text("", 37),
        created, created, volume_date(None), created, b"\x01\x00",
    ))
    return descriptor.ljust(SECTOR, b"\0")


def _write(plan: _Plan, out: BinaryIO) -> int:
    head = bytearray()    # from sector 16 on: the system area before it is zeros
    head += _volume_descriptor(plan, plan.iso)
    head += _volume_descriptor(plan, plan.joliet)
    head += b"\xffCD001\x01".ljust(SECTOR, b"\0")
    for tree in (plan.iso, plan.joliet):
        head += _path_table(tree, False)
        head += _path_table(tree, True)
    for tree in (plan.iso, plan.joliet):
        _directories(plan, tree, head)
    head += laid_out([RockRidge.ER] + [entry.moved or b"" for entry in plan.moved], plan.ce_bytes)
    pieces: list[Piece] = [Zeros(16 * SECTOR), head]
    for entry in plan.files:
        item = entry.item
        assert isinstance(item, PayloadFile)
        data = item.data    # bytes, or the source they are streamed from (which checks itself even when empty)
        if data != b"":     # empty bytes: no piece to pass the kernel
            pieces.append(data)
            pad = padding(item.size, SECTOR)
            if pad is not None:
                pieces.append(pad)
    if plan.total > plan.data_end:
        pieces.append(Zeros(plan.total - plan.data_end))
    return write_pieces(out, pieces, plan.total)


def write_iso(payload: Payload, out: BinaryIO, when: float | None = None) -> int:
    """Write the payload's ISO image to ``out``; return the bytes written.

    ``when`` dates the volume and every record (default: now)."""
    return _write(_layout(payload, time.time() if when is None else when), out)


def build_iso(payload: Payload, when: float | None = None) -> bytes:
    import io
    out = io.BytesIO()
    write_iso(payload, out, when)
    return out.getvalue()
