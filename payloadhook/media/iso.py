"""ISO 9660 images, with Rock Ridge and Joliet, mastered from a Payload.

payloadhook writes these images itself rather than through pycdlib: the hook builds
one at every start of a payload domain, and importing pycdlib cost 21 ms of a
prepare that a plain hook forking genisoimage finishes in 28 ms; its per-file work
made a 1,000-file image 3.5 times slower than genisoimage (README, "Speed"). The
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
"""

from __future__ import annotations

import os
import struct
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs 1.5 ms of every prepare
    from typing import BinaryIO

from ..errors import PayloadError
from .isonames import JOLIET_MAX_UNITS, Namer, cut_units, iso9660_name, joliet_names
from ..model import Payload, PayloadFile

__all__ = ["JOLIET_MAX_UNITS", "build_iso", "joliet_names", "write_iso"]

SECTOR = 2048
#: QEMU refuses images whose size is not a multiple of 4 KiB on some storage.
ALIGNMENT = 4096
#: A path table numbers directories with 16 bits.
MAX_DIRECTORIES = 65535
#: Buffers per writev call (Linux's IOV_MAX).
_IOV_MAX = 1024
#: The largest file one directory record can describe (a 32-bit size; level 1: one extent).
MAX_FILE_SIZE = 2**32 - 1

_FILE_MODE = 0o100444
_DIR_MODE = 0o040555

# Rock Ridge 1.09 ("RRIP_1991A"), as genisoimage and Linux know it.
_RR_ID = b"RRIP_1991A"
_RR_DESCRIPTOR = b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
_RR_SOURCE = (b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN "
              b"PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.")
_RR_PX, _RR_NM, _RR_TF = 0x01, 0x08, 0x80
_CE_SIZE = 28
#: A directory record is at most 255 bytes; 33 fixed, an ISO name of at most 14, padding.
_RECORD_MAX = 255


# -- the tree ------------------------------------------------------------------

class _Dir:
    """A directory of the image, in both trees."""

    __slots__ = ("parent", "entries", "records", "joliet_records", "iso_id", "joliet_id", "extent", "size",
                 "joliet_extent", "joliet_size", "number", "joliet_number", "subdirs")

    def __init__(self, parent: _Dir | None):
        self.parent = parent or self
        self.entries: dict[str, _Dir | PayloadFile] = {}   # by name as given
        self.records: list[_Entry] = []          # in ISO 9660 order
        self.joliet_records: list[_Entry] = []   # in Joliet order
        self.iso_id = self.joliet_id = b"\0"
        self.extent = self.size = self.joliet_extent = self.joliet_size = 0
        self.number = self.joliet_number = 1
        self.subdirs = 0


class _Entry:
    """One named entry of a directory: its records' identifiers and Rock Ridge name; its
    system use bytes (``susp``), and those moved to a continuation area (``moved``), placed
    at ``ce`` (block, offset, length)."""

    __slots__ = ("item", "iso_id", "joliet_id", "rr_name", "extent", "susp", "moved", "ce")

    def __init__(self, item, iso_id: bytes, joliet_id: bytes, rr_name: bytes):
        self.item = item
        self.iso_id = iso_id
        self.joliet_id = joliet_id
        self.rr_name = rr_name
        self.extent = 0
        self.susp = b""
        self.moved: bytes | None = None
        self.ce = (0, 0, 0)


def _tree(payload: Payload) -> _Dir:
    root = _Dir(None)
    for item in payload.files:
        if item.size > MAX_FILE_SIZE:
            raise PayloadError(f"file {item.name!r} is {item.size} bytes, over ISO 9660's 4 GiB")
        node = root
        *dirs, leaf = item.name.split("/")
        for part in dirs:
            child = node.entries.get(part)
            if child is None:
                child = node.entries[part] = _Dir(node)
                node.subdirs += 1
            node = child
        node.entries[leaf] = item
    return root


# -- encoders ------------------------------------------------------------------

_LE16, _BE16, _LE32, _BE32 = (struct.Struct(f).pack for f in ("<H", ">H", "<I", ">I"))


def _both16(value: int) -> bytes:
    return _LE16(value) + _BE16(value)


def _both32(value: int) -> bytes:
    return _LE32(value) + _BE32(value)


def _record_date(when: time.struct_time) -> bytes:
    return bytes((when.tm_year - 1900, when.tm_mon, when.tm_mday, when.tm_hour, when.tm_min, when.tm_sec, 0))


def _volume_date(when: time.struct_time | None) -> bytes:
    if when is None:
        return b"0" * 16 + b"\0"
    return time.strftime("%Y%m%d%H%M%S00", when).encode("ascii") + b"\0"


def _record_length(identifier: bytes, system_use: bytes = b"") -> int:
    return _record_size(len(identifier), len(system_use))


def _record_size(identifier_size: int, system_use_size: int) -> int:
    length = 33 + identifier_size + (1 - identifier_size % 2) + system_use_size
    return length + length % 2


#: A directory record's fixed part: both-endian numbers as little-endian ints and big-endian bytes.
_RECORD_HEAD = struct.Struct("<BBI4sI4s7sBBB4sB")
_VOLUME_SEQUENCE_1 = b"\x01\x00\x00\x01"


def _record(extent: int, size: int, date: bytes, is_dir: bool, identifier: bytes, system_use: bytes = b"") -> bytes:
    """One directory record (ECMA-119 9.1): padded after an even identifier, and to an even length."""
    length = _record_length(identifier, system_use)
    head = _RECORD_HEAD.pack(length, 0, extent, extent.to_bytes(4, "big"), size, size.to_bytes(4, "big"), date,
                             2 if is_dir else 0, 0, 0, _VOLUME_SEQUENCE_1, len(identifier))
    record = head + identifier + (b"" if len(identifier) % 2 else b"\0") + system_use
    return record if len(record) == length else record + b"\0"


def _px(mode: int, links: int) -> bytes:
    return b"PX\x24\x01" + _both32(mode) + _both32(links) + _both32(0) + _both32(0)


def _nm(name: bytes) -> list[bytes]:
    """NM entries for a name: one, or several chained by the CONTINUE flag."""
    if len(name) <= 250:
        return [b"NM" + bytes((5 + len(name), 1, 0)) + name]
    pieces = [name[i:i + 250] for i in range(0, len(name), 250)] or [b""]
    return [b"NM" + bytes((5 + len(piece), 1, 1 if index < len(pieces) - 1 else 0)) + piece
            for index, piece in enumerate(pieces)]


def _ce(block: int, offset: int, length: int) -> bytes:
    return b"CE\x1c\x01" + _both32(block) + _both32(offset) + _both32(length)


_ER = (b"ER" + bytes((8 + len(_RR_ID) + len(_RR_DESCRIPTOR) + len(_RR_SOURCE), 1, len(_RR_ID),
                      len(_RR_DESCRIPTOR), len(_RR_SOURCE), 1)) + _RR_ID + _RR_DESCRIPTOR + _RR_SOURCE)


def _place(lengths: list[int]) -> tuple[list[int], int]:
    """Offsets for pieces laid end to end, none crossing a sector (ECMA-119 6.8.1.1 for
    directory records, and Linux refuses a continuation area that does), and the bytes
    of whole sectors they take."""
    offsets, used = [], 0
    for length in lengths:
        if used % SECTOR + length > SECTOR:
            used += SECTOR - used % SECTOR
        offsets.append(used)
        used += length
    return offsets, -(-used // SECTOR) * SECTOR


def _laid_out(pieces: list[bytes], size: int) -> bytes:
    """``pieces`` placed by :func:`_place` in ``size`` bytes."""
    offsets, needed = _place([len(piece) for piece in pieces])
    if needed > size:   # layout() and the writer disagree: never write a shifted image
        raise AssertionError("pieces outgrew the extent laid out for them")
    out = bytearray(size)
    for offset, piece in zip(offsets, pieces):
        out[offset:offset + len(piece)] = piece
    return bytes(out)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


# -- mastering -----------------------------------------------------------------

class _Master:
    """Lays out and writes one image; see the module's docstring for the layout."""

    def __init__(self, payload: Payload, when: float):
        stamp = time.gmtime(when)
        self.stamp = stamp
        self.date = _record_date(stamp)
        tf = b"TF\x1a\x01\x0e" + self.date * 3  # modify, access, attributes
        self.file_susp = b"RR\x05\x01" + bytes((_RR_PX | _RR_NM | _RR_TF,)) + _px(_FILE_MODE, 1) + tf
        self.tf = tf
        self.payload = payload
        self.root = _tree(payload)
        self.dirs: list[_Dir] = []           # ISO path table order (breadth first, sorted)
        self.joliet_dirs: list[_Dir] = []    # Joliet path table order
        self.moved: list[_Entry] = []        # entries with names in a continuation area
        self.er_ce = (0, 0, 0)               # where the root's CE finds the ER
        self.files: list[_Entry] = []

    # names and orders

    def _name_entries(self) -> None:
        queue = [self.root]
        for directory in queue:    # breadth first: the order the path tables need
            iso_namer = Namer(iso9660_name)
            joliet = joliet_names(list(directory.entries))
            entries = []
            for original in sorted(directory.entries):
                item = directory.entries[original]
                is_dir = isinstance(item, _Dir)
                entry = _Entry(item, iso_namer.name(original, is_dir).encode("ascii"),
                               _utf16(joliet[original]), original.encode("utf-8"))
                if is_dir:
                    item.iso_id, item.joliet_id = entry.iso_id, entry.joliet_id
                entries.append(entry)
            entries.sort(key=lambda e: e.iso_id)
            directory.records = entries
            # in the order they are written: where a sector ends depends on it
            directory.joliet_records = sorted(entries, key=lambda e: e.joliet_id)
            queue.extend(e.item for e in entries if isinstance(e.item, _Dir))
        if len(queue) > MAX_DIRECTORIES:
            raise PayloadError(f"cdrom payload has {len(queue)} directories, over the {MAX_DIRECTORIES} "
                               "a path table can number")
        self.dirs = queue
        for number, directory in enumerate(queue, 1):
            directory.number = number
        # Joliet: the same breadth-first walk, each directory's subdirectories by Joliet name.
        joliet = [self.root]
        for directory in joliet:
            joliet.extend(e.item for e in directory.joliet_records if isinstance(e.item, _Dir))
        self.joliet_dirs = joliet
        for number, directory in enumerate(joliet, 1):
            directory.joliet_number = number

    # system use

    def _system_use(self, entry: _Entry) -> tuple[bytes, bytes | None]:
        """The entry's SUSP bytes in its record, and those moved to a continuation area
        (its NM entries when the record has no room for them)."""
        if isinstance(entry.item, _Dir):
            head = (b"RR\x05\x01" + bytes((_RR_PX | _RR_NM | _RR_TF,)) +
                    _px(_DIR_MODE, 2 + entry.item.subdirs) + self.tf)
        else:
            head = self.file_susp
        name = entry.rr_name
        names = b"NM" + bytes((5 + len(name), 1, 0)) + name if len(name) <= 250 else b"".join(_nm(name))
        if _record_size(len(entry.iso_id), len(head) + len(names)) <= _RECORD_MAX:
            return head + names, None
        return head + b"\0" * _CE_SIZE, names  # the CE is filled in once the areas are placed

    def _dot_system_use(self, directory: _Dir, dotdot: bool) -> bytes:
        target = directory.parent if dotdot else directory
        susp = b"RR\x05\x01" + bytes((_RR_PX | _RR_TF,)) + _px(_DIR_MODE, 2 + target.subdirs) + self.tf
        if directory is self.root and not dotdot:
            susp = b"SP\x07\x01\xbe\xef\x00" + susp + b"\0" * _CE_SIZE  # the CE leads to the ER
        return susp

    # layout

    def layout(self) -> None:
        self._name_entries()
        for directory in self.dirs:
            lengths = [_record_length(b"\0", self._dot_system_use(directory, False)),
                       _record_length(b"\1", self._dot_system_use(directory, True))]
            for entry in directory.records:
                entry.susp, entry.moved = self._system_use(entry)
                lengths.append(_record_length(entry.iso_id, entry.susp))
                if entry.moved is not None:
                    self.moved.append(entry)
            directory.size = _place(lengths)[1]
        for directory in self.joliet_dirs:
            lengths = [34, 34] + [_record_length(e.joliet_id) for e in directory.joliet_records]
            directory.joliet_size = _place(lengths)[1]

        self.path_table_size = sum(8 + len(d.iso_id) + len(d.iso_id) % 2 for d in self.dirs)
        self.joliet_path_table_size = sum(8 + len(d.joliet_id) + len(d.joliet_id) % 2 for d in self.joliet_dirs)
        sector = 19
        table_sectors = -(-self.path_table_size // SECTOR)
        joliet_table_sectors = -(-self.joliet_path_table_size // SECTOR)
        self.l_table, self.m_table = sector, sector + table_sectors
        sector += 2 * table_sectors
        self.joliet_l_table, self.joliet_m_table = sector, sector + joliet_table_sectors
        sector += 2 * joliet_table_sectors
        for directory in self.dirs:
            directory.extent = sector
            sector += directory.size // SECTOR
        for directory in self.joliet_dirs:
            directory.joliet_extent = sector
            sector += directory.joliet_size // SECTOR
        # Continuation areas: the root's ER first, then long names.
        offsets, self.ce_bytes = _place([len(_ER)] + [len(entry.moved) for entry in self.moved])
        places = [(sector + offset // SECTOR, offset % SECTOR) for offset in offsets]
        self.er_ce = (*places[0], len(_ER))
        for entry, place in zip(self.moved, places[1:]):
            entry.ce = (*place, len(entry.moved))
        sector += self.ce_bytes // SECTOR
        self.files = [entry for directory in self.dirs for entry in directory.records
                      if not isinstance(entry.item, _Dir)]
        for entry in self.files:
            size = entry.item.size
            entry.extent = sector if size else 0
            sector += -(-size // SECTOR)
        self.data_end = sector * SECTOR
        self.total = -(-self.data_end // ALIGNMENT) * ALIGNMENT

    # writing

    @staticmethod
    def _fill_ce(susp: bytes, place: tuple[int, int, int]) -> bytes:
        return susp[:-_CE_SIZE] + _ce(*place)

    def _directory(self, directory: _Dir) -> bytes:
        dot = self._dot_system_use(directory, False)
        if directory is self.root:
            dot = self._fill_ce(dot, self.er_ce)
        records = [
            _record(directory.extent, directory.size, self.date, True, b"\0", dot),
            _record(directory.parent.extent, directory.parent.size, self.date, True, b"\1",
                    self._dot_system_use(directory, True)),
        ]
        for entry in directory.records:
            susp = entry.susp if entry.moved is None else self._fill_ce(entry.susp, entry.ce)
            item = entry.item
            if isinstance(item, _Dir):
                records.append(_record(item.extent, item.size, self.date, True, entry.iso_id, susp))
            else:
                records.append(_record(entry.extent, item.size, self.date, False, entry.iso_id, susp))
        return _laid_out(records, directory.size)

    def _joliet_directory(self, directory: _Dir) -> bytes:
        parent = directory.parent
        records = [
            _record(directory.joliet_extent, directory.joliet_size, self.date, True, b"\0"),
            _record(parent.joliet_extent, parent.joliet_size, self.date, True, b"\1"),
        ]
        for entry in directory.joliet_records:
            item = entry.item
            if isinstance(item, _Dir):
                records.append(_record(item.joliet_extent, item.joliet_size, self.date, True, entry.joliet_id))
            else:
                records.append(_record(entry.extent, item.size, self.date, False, entry.joliet_id))
        return _laid_out(records, directory.joliet_size)

    @staticmethod
    def _path_table(dirs: list[_Dir], joliet: bool, big_endian: bool, size: int) -> bytes:
        fmt = ">BBIH" if big_endian else "<BBIH"
        out = bytearray()
        for directory in dirs:
            identifier = directory.joliet_id if joliet else directory.iso_id
            extent = directory.joliet_extent if joliet else directory.extent
            parent = directory.parent.joliet_number if joliet else directory.parent.number
            out += struct.pack(fmt, len(identifier), 0, extent, parent) + identifier
            if len(identifier) % 2:
                out += b"\0"
        return bytes(out).ljust(-(-size // SECTOR) * SECTOR, b"\0")

    def _volume_descriptor(self, joliet: bool) -> bytes:
        label = self.payload.label
        if joliet:
            def text(value: str, size: int) -> bytes:
                encoded = _utf16(cut_units(value, size // 2))
                return encoded + (b"\0 " * size)[:size - len(encoded)]
            root = _record(self.root.joliet_extent, self.root.joliet_size, self.date, True, b"\0")
            tables = (self.joliet_path_table_size, self.joliet_l_table, self.joliet_m_table)
            escapes = b"%/E".ljust(32, b"\0")
        else:
            def text(value: str, size: int) -> bytes:
                encoded = value.encode("utf-8")[:size].decode("utf-8", "ignore").encode("utf-8")
                return encoded.ljust(size, b" ")
            root = _record(self.root.extent, self.root.size, self.date, True, b"\0")
            tables = (self.path_table_size, self.l_table, self.m_table)
            escapes = b"\0" * 32
        created = _volume_date(self.stamp)
        descriptor = b"".join((
            bytes((2 if joliet else 1,)), b"CD001\x01\x00", text("LINUX", 32), text(label, 32), b"\0" * 8,
            _both32(self.total // SECTOR), escapes, _both16(1), _both16(1), _both16(SECTOR),
            _both32(tables[0]), struct.pack("<I", tables[1]), b"\0" * 4, struct.pack(">I", tables[2]), b"\0" * 4,
            root, text("", 128), text("", 128), text("", 128), text("PAYLOADHOOK", 128),
            text("", 37), text("", 37), text("", 37),
            created, created, _volume_date(None), created, b"\x01\x00",
        ))
        return descriptor.ljust(SECTOR, b"\0")

    def write(self, out: BinaryIO) -> int:
        head = bytearray(16 * SECTOR)
        head += self._volume_descriptor(False)
        head += self._volume_descriptor(True)
        head += b"\xffCD001\x01".ljust(SECTOR, b"\0")
        head += self._path_table(self.dirs, False, False, self.path_table_size)
        head += self._path_table(self.dirs, False, True, self.path_table_size)
        head += self._path_table(self.joliet_dirs, True, False, self.joliet_path_table_size)
        head += self._path_table(self.joliet_dirs, True, True, self.joliet_path_table_size)
        for directory in self.dirs:
            head += self._directory(directory)
        for directory in self.joliet_dirs:
            head += self._joliet_directory(directory)
        head += _laid_out([_ER] + [entry.moved for entry in self.moved], self.ce_bytes)
        pieces = [head]
        zeros = memoryview(bytes(max(SECTOR, ALIGNMENT)))
        for entry in self.files:
            content = entry.item.content
            pieces.append(content)
            if len(content) % SECTOR:
                pieces.append(zeros[:SECTOR - len(content) % SECTOR])
        pieces.append(zeros[:self.total - self.data_end])
        _write_pieces(out, pieces)
        return self.total


def _write_pieces(out: BinaryIO, pieces: list) -> None:
    """Write ``pieces`` in order: to a file, a thousand at a time by writev (a 1,000-file
    image would otherwise cost two thousand system calls); to anything else, one by one."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:
        for piece in pieces:
            out.write(piece)
        return
    out.flush()
    for start in range(0, len(pieces), _IOV_MAX):
        batch = pieces[start:start + _IOV_MAX]
        written = os.writev(fd, batch)
        if written < sum(len(piece) for piece in batch):   # rare: a signal, a full disk
            rest = memoryview(b"".join(batch))[written:]
            while rest:
                rest = rest[os.write(fd, rest):]
    out.seek(os.lseek(fd, 0, os.SEEK_CUR))   # the file object knows where it stands again


def write_iso(payload: Payload, out: BinaryIO, when: float | None = None) -> int:
    """Write the payload's ISO image to ``out``; return the bytes written.

    ``when`` dates the volume and every record (default: now)."""
    master = _Master(payload, time.time() if when is None else when)
    master.layout()
    return master.write(out)


def build_iso(payload: Payload, when: float | None = None) -> bytes:
    import io
    out = io.BytesIO()
    write_iso(payload, out, when)
    return out.getvalue()
