"""The bytes of ECMA-119 structures and of SUSP/Rock Ridge entries, for iso.py: directory
records and dates, pieces placed without crossing a sector, and every Rock Ridge entry
(RRIP 1.09). Bytes only: what goes where is iso.py's layout.
"""

from __future__ import annotations

import struct
import time

SECTOR = 2048
FILE_MODE = 0o100444
DIR_MODE = 0o040555
#: A directory record is at most 255 bytes; 33 fixed, an ISO name of at most 14, padding.
RECORD_MAX = 255

_LE16, _BE16, _LE32, _BE32 = (struct.Struct(f).pack for f in ("<H", ">H", "<I", ">I"))


def both16(value: int) -> bytes:
    return _LE16(value) + _BE16(value)


def both32(value: int) -> bytes:
    return _LE32(value) + _BE32(value)


def record_date(when: time.struct_time) -> bytes:
    return bytes((when.tm_year - 1900, when.tm_mon, when.tm_mday, when.tm_hour, when.tm_min, when.tm_sec, 0))


def volume_date(when: time.struct_time | None) -> bytes:
    if when is None:
        return b"0" * 16 + b"\0"
    return time.strftime("%Y%m%d%H%M%S00", when).encode("ascii") + b"\0"


def record_length(identifier_size: int, system_use_size: int = 0) -> int:
    length = 33 + identifier_size + (1 - identifier_size % 2) + system_use_size
    return length + length % 2


#: A directory record's first numbers (ECMA-119 9.1): its length, 0, and the extent and size
#: both-endian (little-endian ints, big-endian bytes); the date to the identifier's length follow.
RECORD_START = struct.Struct("<BBI4sI4s")
#: Bytes of a record before its identifier's length byte: RECORD_START's and record_middle's.
RECORD_FIXED = RECORD_START.size + 14
#: A record's length and extended attribute length (0), for each length: written, not packed.
RECORD_LEADS = tuple(bytes((length, 0)) for length in range(RECORD_MAX + 1))
#: Each byte value as a bytes object of one byte: looked up, not made, for every record.
BYTES = tuple(bytes((value,)) for value in range(256))
#: Name bytes in one NM entry (its length is one byte, 5 of them its header).
_NM_NAME_MAX = 250
#: A whole NM entry's header (its signature, length, version and no flags), for each name length.
_NM_HEADS = tuple(b"NM" + bytes((5 + length, 1, 0)) for length in range(_NM_NAME_MAX + 1))
#: A record's extent and size, both-endian (little-endian ints, big-endian bytes).
RECORD_NUMBERS = struct.Struct("<I4sI4s")
_VOLUME_SEQUENCE_1 = b"\x01\x00\x00\x01"


def record_middle(date: bytes, is_dir: bool) -> bytes:
    """A record's date, flags, interleaving and volume sequence number: the same for every
    file (or every directory) of an image."""
    return date + (b"\x02\x00\x00" if is_dir else b"\x00\x00\x00") + _VOLUME_SEQUENCE_1


def record_tail(identifier: bytes, system_use: bytes = b"") -> bytes:
    """A record from its identifier's length on: padded after an even identifier, and to an
    even length (record_length's rule); the record is RECORD_FIXED bytes more."""
    odd = len(identifier) % 2
    return b"".join((BYTES[len(identifier)], identifier, b"" if odd else b"\0", system_use,
                     b"\0" if (len(identifier) + len(system_use) + odd) % 2 else b""))


def record(extent: int, size: int, date: bytes, is_dir: bool, identifier: bytes, system_use: bytes = b"") -> bytes:
    """One directory record (ECMA-119 9.1). iso.py's writer puts the same three parts
    together itself, each tail and middle made once an image."""
    tail = record_tail(identifier, system_use)
    return b"".join((RECORD_START.pack(RECORD_FIXED + len(tail), 0, extent, extent.to_bytes(4, "big"), size,
                                       size.to_bytes(4, "big")), record_middle(date, is_dir), tail))


def place(lengths: list[int]) -> tuple[list[int], int]:
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


def laid_out(pieces: list[bytes], size: int) -> bytes:
    """``pieces`` placed by :func:`place` in ``size`` bytes."""
    offsets, needed = place([len(piece) for piece in pieces])
    if needed > size:   # the layout and the writer disagree: never write a shifted image
        raise AssertionError("pieces outgrew the extent laid out for them")
    out = bytearray(size)
    for offset, piece in zip(offsets, pieces):
        out[offset:offset + len(piece)] = piece
    return bytes(out)


# -- SUSP and Rock Ridge ---------------------------------------------------------

class RockRidge:
    """Every SUSP and Rock Ridge (RRIP 1.09, "RRIP_1991A", as genisoimage and Linux know it)
    entry of an image: RR, PX, TF and NM in each record, SP and a CE leading to the ER in
    the root's '.' record, NM entries moved to a continuation area behind a CE when a
    record has no room for them."""

    ID = b"RRIP_1991A"
    DESCRIPTOR = b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
    SOURCE = (b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN "
              b"PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.")
    ER = (b"ER" + bytes((8 + len(ID) + len(DESCRIPTOR) + len(SOURCE), 1, len(ID), len(DESCRIPTOR), len(SOURCE), 1))
          + ID + DESCRIPTOR + SOURCE)
    CE_SIZE = 28
    _PX, _NM, _TF = 0x01, 0x08, 0x80
    _NM_MAX = _NM_NAME_MAX

    def __init__(self, date: bytes):
        self._tf = b"TF\x1a\x01\x0e" + date * 3   # modify, access, attributes
        self._file_head = self._head(self._PX | self._NM | self._TF, FILE_MODE, 1)
        self._dir_heads: dict[int, bytes] = {}   # by links: directories have few counts between them

    def _head(self, flags: int, mode: int, links: int) -> bytes:
        px = b"PX\x24\x01" + both32(mode) + both32(links) + both32(0) + both32(0)
        return b"RR\x05\x01" + bytes((flags,)) + px + self._tf

    @classmethod
    def _nm(cls, name: bytes) -> bytes:
        """NM entries for a name: one, or several chained by the CONTINUE flag."""
        if len(name) <= cls._NM_MAX:
            return _NM_HEADS[len(name)] + name
        pieces = [name[i:i + cls._NM_MAX] for i in range(0, len(name), cls._NM_MAX)]
        return b"".join(b"NM" + bytes((5 + len(piece), 1, 1 if index < len(pieces) - 1 else 0)) + piece
                        for index, piece in enumerate(pieces))

    @staticmethod
    def ce(place: tuple[int, int, int]) -> bytes:
        """A CE entry pointing at (block, offset, length)."""
        return b"CE\x1c\x01" + both32(place[0]) + both32(place[1]) + both32(place[2])

    def record_tail(self, identifier: bytes, name: bytes, links: int | None) -> tuple[bytes, bytes | None]:
        """The tail (record_tail) of the record whose ISO 9660 identifier is ``identifier``,
        with the Rock Ridge entries for ``name``, of a file (``links`` None) or of a
        directory of ``links`` links; and the NM entries moved to a continuation area when
        the record has no room for them: then the record ends in a CE's room, which
        :meth:`moved_record_tail` fills in once the area is placed."""
        head = self._file_head if links is None else self._dir_head(links)
        size = len(identifier)
        if len(name) <= self._NM_MAX:   # one NM entry: the usual record, made in one join
            # record_tail(identifier, head + NM entry), inline: this runs for every entry of an image
            length = 34 - size % 2 + size + len(head) + 5 + len(name)
            if length + length % 2 <= RECORD_MAX:
                return b"".join((BYTES[size], identifier, b"" if size % 2 else b"\0", head, _NM_HEADS[len(name)],
                                 name, b"\0" if length % 2 else b"")), None
        names = self._nm(name)
        if record_length(size, len(head) + len(names)) <= RECORD_MAX:
            return record_tail(identifier, head + names), None
        return record_tail(identifier, head + b"\0" * self.CE_SIZE), names

    def moved_record_tail(self, identifier: bytes, links: int | None, place: tuple[int, int, int]) -> bytes:
        """The tail of a record whose NM entries are moved to ``place`` (block, offset, length)."""
        head = self._file_head if links is None else self._dir_head(links)
        return record_tail(identifier, head + self.ce(place))

    def _dir_head(self, links: int) -> bytes:
        head = self._dir_heads.get(links)
        if head is None:
            head = self._dir_heads[links] = self._head(self._PX | self._NM | self._TF, DIR_MODE, links)
        return head

    def dot(self, links: int, root: bool = False, er_ce: tuple[int, int, int] | None = None) -> bytes:
        """A '.' or '..' record's entries, for a directory of ``links`` links; the root's '.'
        also carries SP and the CE to the ER (``er_ce`` None: its room only, for laying out)."""
        susp = self._head(self._PX | self._TF, DIR_MODE, links)
        if root:
            susp = b"SP\x07\x01\xbe\xef\x00" + susp + (b"\0" * self.CE_SIZE if er_ce is None else self.ce(er_ce))
        return susp
