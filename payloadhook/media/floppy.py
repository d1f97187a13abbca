"""FAT12 1.44 MB floppy images from a Payload, written here (Microsoft's FAT specification).

What an image holds:

- a boot sector whose BIOS parameter block has a real 3.5" HD disk's geometry (2 heads,
  18 sectors a track, media byte 0xF0): mtools and some guests refuse a block with zero
  heads or sectors; two FATs of 9 sectors; a root directory of 224 entries; then
  one-sector clusters: the directories (breadth first), then the files, each
  contiguous;
- names as fatnames.py gives them: one entry for an 8.3 name, VFAT long-name entries
  and a pure-ASCII alias for any other;
- the label in the boot sector and in the root directory, where Linux, Windows and
  fsck.fat look for it: it takes one of the root's 224 entries. A payload without a
  volume_id whose files need all 224 gets no label ("NO NAME", as mkfs.fat writes
  without -n), so that a root holds 224 files with 8.3 names;
- every entry dated at the build, in UTC.

Not written through pyfatfs: its directory layer looks for an alias by scanning the
directory and rewrites the whole directory for each entry it adds (quadratic in the
entries), and keeps OEM code page characters in 8.3 names.
"""

from __future__ import annotations

import math
import struct
import time
from codecs import utf_16_le_encode  # codecs: loaded with the interpreter

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported on the hook's path
    from typing import BinaryIO

    from .pieces import Piece

from ..errors import PayloadError
from ..model import Payload, PayloadFile
from .fatnames import LFN_UNITS_PER_ENTRY, ShortNames, checksum, entries_for, exact_short_name
from .pieces import Zeros, padding, write_pieces

SECTOR = 512
TOTAL_SECTORS = 2880            # 80 cylinders x 2 heads x 18 sectors
IMAGE_SIZE = TOTAL_SECTORS * SECTOR
SECTORS_PER_FAT = 9
ROOT_ENTRIES = 224
RESERVED = 1
FATS = 2
MEDIA = 0xF0
ROOT_SECTOR = RESERVED + FATS * SECTORS_PER_FAT
FIRST_DATA_SECTOR = ROOT_SECTOR + ROOT_ENTRIES * 32 // SECTOR
CLUSTERS = TOTAL_SECTORS - FIRST_DATA_SECTOR   # one sector a cluster
ENTRY = 32

_ATTR_VOLUME_ID, _ATTR_DIRECTORY, _ATTR_ARCHIVE, _ATTR_LONG_NAME = 0x08, 0x10, 0x20, 0x0F
_END_OF_CHAIN = 0xFFF
#: A directory entry (FAT specification 6): name, attributes, case bits, creation tenths,
#: creation time and date, access date, cluster high, write time and date, cluster, size.
_DIR_ENTRY = struct.Struct("<11sBBBHHHHHHHI")
#: A long-name entry (section 7): order, 5 units, attributes, type, checksum, 6 units, 0, 2 units.
_LONG_ENTRY = struct.Struct("<B10sBBB12sH4s")


def _serial(stamp: time.struct_time) -> int:
    return ((stamp.tm_year - 1980) << 25 | stamp.tm_mon << 21 | stamp.tm_mday << 16
            | stamp.tm_hour << 11 | stamp.tm_min << 5 | stamp.tm_sec // 2)


def blank_image(label: str | None, serial: int | None = None, size: int = IMAGE_SIZE) -> bytearray:
    """An empty, clean FAT12 file system with a 1.44 MB floppy's geometry (label None: none);
    ``size``: its first bytes only (at least the boot sector, the FATs and the root)."""
    if serial is None:
        serial = _serial(time.localtime())
    label_field = (label or "NO NAME").encode("ascii").ljust(11)
    image = bytearray(size)
    image[0:3] = b"\xeb\x3c\x90"
    image[3:11] = b"MSWIN4.1"
    struct.pack_into("<HBHBHHBHHHII", image, 11,
                     SECTOR, 1, RESERVED, FATS, ROOT_ENTRIES, TOTAL_SECTORS, MEDIA,
                     SECTORS_PER_FAT, 18, 2, 0, 0)
    struct.pack_into("<BBBI11s8s", image, 36, 0, 0, 0x29, serial, label_field, b"FAT12   ")
    image[510:512] = b"\x55\xaa"
    for index in range(FATS):
        offset = (RESERVED + index * SECTORS_PER_FAT) * SECTOR
        image[offset:offset + 3] = bytes([MEDIA, 0xFF, 0xFF])
    if label is not None:
        root = ROOT_SECTOR * SECTOR
        image[root:root + 11] = label_field
        image[root + 11] = _ATTR_VOLUME_ID
    return image


# -- the plan: the tree, its entries counted, clusters given out --------------------

class _Dir:
    """A directory: its entries by name as given, then in order (``names``) with, in the
    same order, the 8.3 entry of each name that is an 8.3 name, None for another
    (``exact``); its parent's place in the plan's ``dirs`` (-1: the root; a place, not a
    reference, so that nothing the plan makes is in a reference cycle), its first cluster
    (0: the root) and size."""

    __slots__ = ("entries", "names", "exact", "parent", "cluster", "clusters", "slots")

    def __init__(self) -> None:
        self.entries: dict[str, _Dir | PayloadFile] = {}
        self.names: list[str] = []
        self.exact: list[tuple[bytes, int] | None] = []
        self.parent = -1
        self.cluster = 0
        self.clusters = 0
        self.slots = 0   # directory entries it needs


class _Plan:
    """Where everything goes; refuses a payload that cannot fit, before anything is written."""

    def __init__(self, payload: Payload):
        self.root = _Dir()
        nodes = {"": self.root}    # by path: a file finds its directory in one look-up, most often
        for item in payload.files:
            path, _, leaf = item.name.rpartition("/")
            node = nodes.get(path)
            if node is None:    # a directory not met yet: made, with those above it not made yet
                node = self.root
                for part in path.split("/"):   # the model guarantees a directory here, and one spelling of it
                    child = node.entries.get(part)
                    if not isinstance(child, _Dir):
                        child = node.entries[part] = _Dir()
                    node = child
                nodes[path] = node
            node.entries[leaf] = item
        self.dirs = [self.root]   # breadth first
        for index, directory in enumerate(self.dirs):
            for child in directory.entries.values():   # in the order given
                if isinstance(child, _Dir):
                    child.parent = index
                    self.dirs.append(child)
            directory.names = sorted(directory.entries)
            # each name's 8.3 entry, when it is one, looked for once: its slots, then its entry
            exact = directory.exact = [exact_short_name(name) for name in directory.names]
            slots = len(exact)
            if None in exact:
                slots += sum(entries_for(name) - 1 for name, found in zip(directory.names, exact) if found is None)
            directory.slots = slots + (2 if index else 0)
        #: the label, None when the default one finds no room in the root
        self.label: str | None = payload.label
        if payload.volume_id is None and self.root.slots >= ROOT_ENTRIES:
            self.label = None
        else:
            self.root.slots += 1
        if self.root.slots > ROOT_ENTRIES:
            raise PayloadError(
                f"floppy payload needs {self.root.slots} root directory entries, over the {ROOT_ENTRIES} "
                "a floppy has (long names take several, the label one); move files into a directory")
        self.files: list[tuple[PayloadFile, int]] = []   # each with its first cluster (0: empty)
        cluster = 2
        for directory in self.dirs[1:]:
            directory.cluster = cluster
            directory.clusters = math.ceil(directory.slots * ENTRY / SECTOR)
            cluster += directory.clusters
        for directory in self.dirs:
            for name in directory.names:
                entry = directory.entries[name]
                if isinstance(entry, PayloadFile):
                    self.files.append((entry, cluster if entry.size else 0))
                    cluster += math.ceil(entry.size / SECTOR)
        if cluster - 2 > CLUSTERS:
            raise PayloadError(
                f"floppy payload needs {(cluster - 2) * SECTOR} bytes, over the {CLUSTERS * SECTOR} "
                "a 1.44 MB floppy holds; use a cdrom payload")


def check_capacity(payload: Payload) -> None:
    """Refuse a payload that cannot fit, before anything is built."""
    _Plan(payload)


# -- writing ------------------------------------------------------------------

def _fat(runs: list[tuple[int, int]]) -> bytes:
    """One FAT12 table with a chain for each (first cluster, cluster count) run."""
    entries = [0] * (CLUSTERS + 2)
    entries[0], entries[1] = 0xF00 | MEDIA, _END_OF_CHAIN
    for first, count in runs:
        entries[first:first + count - 1] = range(first + 1, first + count)
        entries[first + count - 1] = _END_OF_CHAIN
    if len(entries) % 2:
        entries.append(0)
    table = bytearray()
    for low, high in zip(entries[0::2], entries[1::2]):   # two 12-bit entries in three bytes
        table += bytes((low & 0xFF, (low >> 8) | (high & 0x0F) << 4, high >> 4))
    return bytes(table)


def _long_entries(name: str, short: bytes) -> bytes:
    """The VFAT long-name entries of ``name``: 13 UTF-16 units each, NUL-terminated and
    0xFFFF-padded, the last one first on disk (FAT specification, section 7)."""
    encoded = utf_16_le_encode(name, "surrogatepass")[0]   # the codec itself: iso.py's _utf16 says why
    if len(encoded) % 26:
        encoded += b"\0\0"
        encoded += b"\xff" * (-len(encoded) % 26)
    count = len(encoded) // (2 * LFN_UNITS_PER_ENTRY)
    check = checksum(short)
    out = []
    for index in reversed(range(count)):
        chunk = encoded[index * 26:(index + 1) * 26]
        out.append(_LONG_ENTRY.pack((index + 1) | (0x40 if index == count - 1 else 0), chunk[0:10],
                                    _ATTR_LONG_NAME, 0, check, chunk[10:22], 0, chunk[22:26]))
    return b"".join(out)


class _Writer:
    """Directory entries dated ``stamp``, into an image laid out by a plan."""

    def __init__(self, plan: _Plan, stamp: time.struct_time):
        self.plan = plan
        self.date = (stamp.tm_year - 1980) << 9 | stamp.tm_mon << 5 | stamp.tm_mday
        self.time = stamp.tm_hour << 11 | stamp.tm_min << 5 | stamp.tm_sec // 2
        # the files' first clusters, in the order of plan.files: the order directories are written in
        self.first_clusters = iter([cluster for _, cluster in plan.files])

    def _entry(self, field: bytes, attr: int, case: int, cluster: int, size: int) -> bytes:
        return _DIR_ENTRY.pack(field, attr, case, 0, self.time, self.date, self.date, 0,
                               self.time, self.date, cluster, size)

    def directory(self, directory: _Dir) -> bytes:
        """The directory's entries: '.' and '..' (but in the root), then its names, in order."""
        out = []
        if directory.parent >= 0:
            out.append(self._entry(b".          ", _ATTR_DIRECTORY, 0, directory.cluster, 0))
            out.append(self._entry(b"..         ", _ATTR_DIRECTORY, 0, self.plan.dirs[directory.parent].cluster, 0))
        names = directory.names
        exact = directory.exact
        shorts = ShortNames()
        if None in exact:   # 8.3 names keep theirs: taken before any alias is chosen
            for found in exact:
                if found is not None:
                    shorts.exact(found[0])
        pack, when, day, first_clusters = _DIR_ENTRY.pack, self.time, self.date, self.first_clusters
        entries = directory.entries
        for name, found in zip(names, exact):
            item = entries[name]
            if found is not None:
                field, case = found
            else:
                field, case = shorts.alias(name), 0
                out.append(_long_entries(name, field))
            # self._entry(...), inline: this runs for every entry
            if isinstance(item, _Dir):
                out.append(pack(field, _ATTR_DIRECTORY, case, 0, when, day, day, 0, when, day, item.cluster, 0))
            else:
                out.append(pack(field, _ATTR_ARCHIVE, case, 0, when, day, day, 0, when, day, next(first_clusters),
                                item.size))
        return b"".join(out)


def _pieces(payload: Payload, when: float | None) -> list[Piece]:
    """The image as pieces in order (media/pieces.py): the boot sector, the FATs and the
    directories as one buffer, each file's content as held (bytes, or the source it is
    streamed from) and zeros to the end of its last sector, then zeros to the end of the disk.
    ``when`` dates every entry (default: now)."""
    plan = _Plan(payload)
    # FAT dates run from 1980 to 2107
    stamp = time.gmtime(min(max(time.time() if when is None else when, 315532800), 4354819199))
    first_file = 2 + sum(d.clusters for d in plan.dirs[1:])    # the cluster after the directories
    head_size = (FIRST_DATA_SECTOR + first_file - 2) * SECTOR
    head = blank_image(plan.label, _serial(stamp), head_size)
    writer = _Writer(plan, stamp)
    runs = [(d.cluster, d.clusters) for d in plan.dirs[1:]]
    runs += [(cluster, math.ceil(item.size / SECTOR)) for item, cluster in plan.files if cluster]
    table = _fat(runs)
    for index in range(FATS):
        offset = (RESERVED + index * SECTORS_PER_FAT) * SECTOR
        head[offset:offset + len(table)] = table
    for directory in plan.dirs:
        entries = writer.directory(directory)
        if len(entries) != directory.slots * ENTRY - (ENTRY if directory is plan.root and plan.label else 0):
            raise AssertionError("a directory's entries are not those its size was planned for")
        if directory is plan.root:
            offset = ROOT_SECTOR * SECTOR + (ENTRY if plan.label is not None else 0)
        else:
            offset = (FIRST_DATA_SECTOR + directory.cluster - 2) * SECTOR
        head[offset:offset + len(entries)] = entries
    if len(head) != head_size:   # a slice written past the end would have grown it
        raise AssertionError(f"floppy image's structures came out {len(head)} bytes, not {head_size}")
    pieces: list[Piece] = [head]
    end = head_size
    for item, cluster in plan.files:
        if not cluster:
            continue
        if (FIRST_DATA_SECTOR + cluster - 2) * SECTOR != end:
            raise AssertionError("a file's data is not where its clusters were planned")
        pieces.append(item.data)    # bytes, or the source they are streamed from
        pad = padding(item.size, SECTOR)
        if pad is not None:
            pieces.append(pad)
        end += math.ceil(item.size / SECTOR) * SECTOR
    if IMAGE_SIZE > end:
        pieces.append(Zeros(IMAGE_SIZE - end))    # the free clusters
    return pieces


def build_floppy(payload: Payload, when: float | None = None) -> bytes:
    """The payload's floppy image; ``when`` dates every entry (default: now)."""
    import io
    out = io.BytesIO()
    write_floppy(payload, out, when)
    image = out.getvalue()
    if len(image) != IMAGE_SIZE:
        raise AssertionError(f"floppy image came out {len(image)} bytes, not {IMAGE_SIZE}")
    return image


def write_floppy(payload: Payload, out: BinaryIO, when: float | None = None) -> int:
    """Write the payload's floppy image to ``out``; return the bytes written (``IMAGE_SIZE``)."""
    return write_pieces(out, _pieces(payload, when), IMAGE_SIZE)
