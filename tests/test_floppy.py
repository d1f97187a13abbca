"""FAT12 floppy images, read back by mtools, fsck.fat and blkid (never by pyfatfs)."""

import os
import struct
import subprocess

import pytest

from payloadhook.errors import PayloadError
from payloadhook.media.floppy import IMAGE_SIZE, build_floppy
from payloadhook.model import Payload, PayloadFile
from tests.harness import readback

CASES = {
    "unattend": [("Unattend.xml", b'<?xml version="1.0"?>\n<unattend/>\n')],
    # (mtools shows characters outside the BMP as '_': the guest test checks those)
    "unicode": [("Ünïcödé/日本語のファイル名.txt", "こんにちは".encode()), ("файл.txt", b"\x00\xff")],
    "nested": [("$OEM$/$1/setup/install script.cmd", b"echo hi\r\n"), ("a/b/c/d/e/f/g/h/i/j.txt", b"deep")],
    "long-names": [("a-rather-long-file-name-for-a-floppy-" + "x" * 214 + ".txt", b"long"),
                   ("d" * 200 + "/" + "Ü" * 40 + ".txt", b"deep")],
    # pyfatfs looks entries up by their 8.3 alias too: the plain 8.3 name must not overwrite the alias's file
    "short-name-aliases": [("Long name one.txt", b"one"), ("Long name two.txt", b"two"), ("LONGNA~1.TXT", b"alias"),
                           ("LONGNA~2.TXT", b"alias2")],
    "many-in-root": [(f"file number {i:03}.txt", str(i).encode()) for i in range(60)],
    "many-in-dir": [(f"dir/file number {i:03}.txt", os.urandom(100)) for i in range(300)],
    "big": [("big.bin", os.urandom(1_300_000))],
    "empty": [("empty", b"")],
    "no-files": [],
}


def image_of(tmp_path, files, label=None):
    payload = Payload(type="floppy", files=tuple(PayloadFile(n, c) for n, c in files), volume_id=label)
    path = tmp_path / "payload.img"
    path.write_bytes(build_floppy(payload))
    return str(path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_mtools_reads_every_file_byte_for_byte(tmp_path, case):
    image = image_of(tmp_path, CASES[case])
    assert readback.fat_files(image) == dict(CASES[case])


@pytest.mark.parametrize("case", sorted(CASES))
def test_fsck_finds_nothing_to_fix(tmp_path, case):
    result = readback.fsck_fat(image_of(tmp_path, CASES[case]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_geometry_is_a_real_144mb_floppy(tmp_path):
    image = image_of(tmp_path, CASES["unattend"])
    assert os.path.getsize(image) == IMAGE_SIZE == 1474560
    with open(image, "rb") as stream:
        sector = stream.read(512)
    bytes_per_sector, total, media, per_track, heads = struct.unpack_from("<H", sector, 11) + \
        struct.unpack_from("<HB", sector, 19) + struct.unpack_from("<HH", sector, 24)
    assert (bytes_per_sector, total, media, per_track, heads) == (512, 2880, 0xF0, 18, 2)
    # mdir refuses a parameter block with zero heads or sectors a track
    listing = subprocess.run(["mdir", "-i", image, "::"], capture_output=True, text=True, env=readback.ENV)
    assert listing.returncode == 0, listing.stderr
    assert "UNATTEND XML" in listing.stdout


@pytest.mark.parametrize("label,seen", [(None, "PAYLOAD"), ("unattend", "UNATTEND"), ("OEMDRV", "OEMDRV")])
def test_label_and_type_seen_by_blkid(tmp_path, label, seen):
    info = readback.blkid(image_of(tmp_path, CASES["unattend"], label))
    assert (info["TYPE"], info["VERSION"], info["LABEL"]) == ("vfat", "FAT12", seen)


@pytest.mark.parametrize("files,fragment", [
    ([("big.bin", b"x" * 1_500_000)], "over the 1457664 a 1.44 MB floppy holds"),
    ([(f"f{i}.bin", b"x" * 100_000) for i in range(15)], "1.44 MB floppy"),
    ([(f"a long name that takes slots {i:03}.txt", b"") for i in range(60)], "root directory entries"),
])
def test_over_capacity_is_refused_not_enlarged(files, fragment):
    payload = Payload(type="floppy", files=tuple(PayloadFile(n, c) for n, c in files))
    with pytest.raises(PayloadError, match=fragment):
        build_floppy(payload)


def test_nearly_full_floppy_still_fits(tmp_path):
    files = [("fill.bin", os.urandom(1_450_000))]
    assert readback.fat_files(image_of(tmp_path, files)) == dict(files)
