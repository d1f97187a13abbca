"""FAT12 1.44 MB floppy images from a Payload, via pyfatfs.

The boot sector is written here, not by pyfatfs's ``mkfs``, because a floppy
needs the geometry of a real 3.5" HD disk in its BIOS parameter block (2 heads,
18 sectors a track, media byte 0xF0): mtools and some guests refuse a block with
zero heads or sectors. pyfatfs then adds the files with VFAT long names.
"""

from __future__ import annotations

import io
import math
import struct
import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs 1.5 ms of every prepare
    from typing import BinaryIO

from .errors import PayloadError
from .model import Payload

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
    units = len(name.encode("utf-16-le")) // 2
    return math.ceil(units / LFN_UNITS_PER_ENTRY) + 1


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


def write_floppy(payload: Payload, out: BinaryIO) -> int:
    """Write the payload's floppy image to ``out``; return the bytes written."""
    check_capacity(payload)
    from pyfatfs.PyFatFS import PyFatBytesIOFS  # heavy: imported only when an image is built
    from pyfatfs._exceptions import PyFATException

    buffer = _KeepOpen(blank_image(payload.label))
    fat = PyFatBytesIOFS(buffer, encoding="ibm437", preserve_case=True, utc=True)
    # pyfatfs finds an entry by its 8.3 alias as well as its long name: a plain
    # 8.3 name written after a long name aliased to it would overwrite that file.
    # Written first, the 8.3 names are taken and the aliases avoid them.
    ordered = sorted(payload.files, key=lambda f: (not all(map(_is_short_name, f.name.split("/"))), f.name))
    try:
        for item in ordered:
            parent = item.name.rpartition("/")[0]
            if parent:
                fat.makedirs("/" + parent, recreate=True)
            fat.writebytes("/" + item.name, item.content)
    except PyFATException as exc:
        raise PayloadError(f"floppy payload cannot be written: {exc}") from None
    finally:
        fat.close()
    image = buffer.getvalue()
    if len(image) != IMAGE_SIZE:
        raise PayloadError(f"floppy image came out {len(image)} bytes, not {IMAGE_SIZE}")
    out.write(image)
    return len(image)


def build_floppy(payload: Payload) -> bytes:
    out = io.BytesIO()
    write_floppy(payload, out)
    return out.getvalue()
