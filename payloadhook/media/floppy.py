"""FAT12 1.44 MB floppy images from a Payload, via pyfatfs.

The boot sector is written here, not by pyfatfs's ``mkfs``, because a floppy
needs the geometry of a real 3.5" HD disk in its BIOS parameter block (2 heads,
18 sectors a track, media byte 0xF0): mtools and some guests refuse a block with
zero heads or sectors. pyfatfs then adds the files with VFAT long names.
"""

from __future__ import annotations

import copy
import io
import math
import struct
import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs 1.5 ms of every prepare
    from typing import BinaryIO

from ..errors import PayloadError
from ..model import Payload, utf16_units

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
LFN_UNITS_PER_ENTRY = 13


def blank_image(label: str, serial: int | None = None) -> bytearray:
    """An empty, clean FAT12 file system with a 1.44 MB floppy's geometry."""
    if serial is None:
        now = time.localtime()
        serial = ((now.tm_year - 1980) << 25 | now.tm_mon << 21 | now.tm_mday << 16
                  | now.tm_hour << 11 | now.tm_min << 5 | now.tm_sec // 2)
    label_field = label.encode("ascii").ljust(11)
    image = bytearray(IMAGE_SIZE)
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
    # The label also lives in the root directory, where Linux and Windows read it.
    root = ROOT_SECTOR * SECTOR
    image[root:root + 11] = label_field
    image[root + 11] = 0x08
    return image


def _entries_for(name: str) -> int:
    """Directory entries a name takes, at most: its long-name slots and its 8.3 entry."""
    return math.ceil(utf16_units(name) / LFN_UNITS_PER_ENTRY) + 1


def check_capacity(payload: Payload) -> None:
    """Refuse a payload that cannot fit, before anything is built."""
    directories: dict[tuple[str, ...], int] = {(): 1}    # root: the label entry
    data_clusters = 0
    seen_dirs: set[tuple[str, ...]] = {()}
    for item in payload.files:
        parts = tuple(item.name.split("/"))
        for depth in range(1, len(parts)):
            path = parts[:depth]
            if path not in seen_dirs:
                seen_dirs.add(path)
                directories[path] = 2   # '.' and '..'
                directories[parts[:depth - 1]] += _entries_for(parts[depth - 1])
        directories[parts[:-1]] += _entries_for(parts[-1])
        data_clusters += math.ceil(item.size / SECTOR)
    if directories[()] > ROOT_ENTRIES:
        raise PayloadError(
            f"floppy payload needs {directories[()]} root directory entries, over the {ROOT_ENTRIES} "
            "a floppy has (long names take several); move files into a directory")
    dir_clusters = sum(math.ceil(entries * ENTRY / SECTOR) for path, entries in directories.items() if path)
    needed = (data_clusters + dir_clusters) * SECTOR
    if data_clusters + dir_clusters > CLUSTERS:
        raise PayloadError(
            f"floppy payload needs {needed} bytes, over the {CLUSTERS * SECTOR} a 1.44 MB floppy holds; "
            "use a cdrom payload")


def _is_short_name(component: str) -> bool:
    stem, dot, ext = component.partition(".")
    return (component == component.upper() and component.isascii() and "." not in ext
            and 1 <= len(stem) <= 8 and len(ext) <= 3 and (ext or not dot)
            and all(ch.isalnum() or ch in "_~-!#$%&'()@^`{}" for ch in stem + ext))


class _KeepOpen(io.BytesIO):
    """pyfatfs closes its file object; keep the bytes readable after that."""

    def close(self) -> None:
        pass


def build_floppy(payload: Payload) -> bytes:
    """The payload's floppy image."""
    check_capacity(payload)
    # pyfatfs's low layer only: its PyFilesystem2 layer (PyFatFS) imports pkg_resources,
    # 35 ms of every prepare. What PyFatFS.makedir and .create do is done here.
    from pyfatfs.PyFat import PyFat
    from pyfatfs._exceptions import PyFATException

    buffer = _KeepOpen(blank_image(payload.label))
    fat = PyFat(encoding="ibm437")
    fat.set_fp(buffer)
    writer = _Writer(fat)
    # An 8.3 alias is chosen among the names already in the directory, but a plain 8.3
    # name is taken as given: written first, the plain names are there when aliases are made.
    ordered = sorted(payload.files, key=lambda f: (not all(map(_is_short_name, f.name.split("/"))), f.name))
    try:
        for item in ordered:
            *parents, leaf = item.name.split("/")
            writer.add_file(writer.directory(tuple(parents)), leaf, item.content)
        fat.flush_fat()
    except PyFATException as exc:
        raise PayloadError(f"floppy payload cannot be written: {exc}") from None
    finally:
        fat.close()
    image = buffer.getvalue()
    if len(image) != IMAGE_SIZE:
        raise PayloadError(f"floppy image came out {len(image)} bytes, not {IMAGE_SIZE}")
    return image


def write_floppy(payload: Payload, out: BinaryIO) -> int:
    """Write the payload's floppy image to ``out``; return the bytes written."""
    return out.write(build_floppy(payload))


class _Writer:
    """Directory entries with VFAT long names, and file data, through pyfatfs's PyFat."""

    def __init__(self, fat):
        from datetime import timezone
        from pyfatfs.EightDotThree import EightDotThree
        from pyfatfs.FATDirectoryEntry import FATDirectoryEntry, FATLongDirectoryEntry
        self.fat = fat
        self.utc = timezone.utc
        self.EightDotThree = EightDotThree
        self.Entry = FATDirectoryEntry
        self.LongEntry = FATLongDirectoryEntry
        self.dirs = {(): fat.root_dir}

    def _long_name(self, name: str, short):
        """The VFAT long-name slots of ``name``: 13 UTF-16 units a slot, last slot first on disk,
        NUL-terminated and 0xFFFF-padded (Microsoft's FAT specification, section 7).
        pyfatfs's make_lfn_entry does the same but stops at 127 characters; FAT allows 255."""
        encoded = name.encode("utf-16-le")
        if len(encoded) % 26:
            encoded += b"\0\0"
            encoded += b"\xff" * (-len(encoded) % 26)
        entry = self.LongEntry()
        checksum = short.checksum()
        count = len(encoded) // 26
        for index in range(count):
            chunk = encoded[index * 26:(index + 1) * 26]
            entry.add_lfn_entry(LDIR_Ord=(index + 1) | (0x40 if index == count - 1 else 0),
                                LDIR_Name1=chunk[0:10], LDIR_Attr=self.Entry.ATTR_LONG_NAME, LDIR_Type=0,
                                LDIR_Chksum=checksum, LDIR_Name2=chunk[10:22], LDIR_FstClusLO=0,
                                LDIR_Name3=chunk[22:26])
        return entry

    def _entry(self, parent, name: str, attr: int):
        short = self.EightDotThree(encoding=self.fat.encoding)
        short.set_str_name(short.make_8dot3_name(name, parent))
        entry = self.Entry.new(name=short, tz=self.utc, encoding=self.fat.encoding, attr=attr)
        if short.get_unpadded_filename() != name:   # keep the case too: a long name unless it is exact
            entry.set_lfn_entry(self._long_name(name, short))
        return entry

    def directory(self, path: tuple):
        """The entry of directory ``path``, made (with its parents) on first use."""
        if path in self.dirs:
            return self.dirs[path]
        parent = self.directory(path[:-1])
        entry = self._entry(parent, path[-1], self.Entry.ATTR_DIRECTORY)
        entry.set_cluster(self.fat.allocate_bytes(2 * self.Entry.FAT_DIRECTORY_HEADER_SIZE, erase=True)[0])
        for dot_name, target in ((b".          ", entry), (b"..         ", parent)):
            dot = copy.copy(target)
            dot.name = self.EightDotThree()
            dot.name.set_byte_name(dot_name)
            dot.lfn_entry = None
            dot._parent = None
            if target is parent and not path[:-1]:
                dot.set_cluster(0)   # '..' of a first-level directory points at the root as cluster 0
            entry.add_subdirectory(dot)
        self.fat.update_directory_entry(entry)
        parent.add_subdirectory(entry)
        self.fat.update_directory_entry(parent)
        self.dirs[path] = entry
        return entry

    def add_file(self, parent, name: str, content: bytes) -> None:
        entry = self._entry(parent, name, self.Entry.ATTR_ARCHIVE)
        if content:
            cluster = self.fat.allocate_bytes(len(content))[0]
            self.fat.write_data_to_cluster(content, cluster)
            entry.set_cluster(cluster)
            entry.filesize = len(content)
        parent.add_subdirectory(entry)
        self.fat.update_directory_entry(parent)
