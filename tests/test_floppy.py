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


# -- names: 8.3 names in one entry, long names with pure-ASCII aliases --

def root_files(image):
    """(8.3 field, case bits) of each file entry of the root, and the count of long-name entries."""
    entries = readback.fat_root_entries(image)
    long_entries = sum(1 for e in entries if e[11] == 0x0F)
    return [(e[:11], e[12]) for e in entries if e[11] not in (0x0F, 0x08)], long_entries


def test_a_root_holds_224_files_with_8_3_names(tmp_path):
    files = [(f"R{i:03}.TXT", str(i).encode()) for i in range(1, 225)]
    image = image_of(tmp_path, files)
    assert readback.fat_files(image) == dict(files)
    assert readback.fsck_fat(image).returncode == 0
    shorts, long_entries = root_files(image)
    assert long_entries == 0 and len(shorts) == 224


def test_a_225th_root_entry_is_refused_with_the_count():
    files = tuple(PayloadFile(f"R{i:03}.TXT", b"") for i in range(225))
    with pytest.raises(PayloadError, match="needs 225 root directory entries, over the 224"):
        build_floppy(Payload(type="floppy", files=files))


def test_a_label_takes_a_root_entry():
    files = tuple(PayloadFile(f"R{i:03}.TXT", b"") for i in range(224))
    with pytest.raises(PayloadError, match="needs 225 root directory entries"):
        build_floppy(Payload(type="floppy", files=files, volume_id="OEMDRV"))
    build_floppy(Payload(type="floppy", files=files[:223], volume_id="OEMDRV"))


def test_a_full_root_without_volume_id_has_no_label(tmp_path):
    image = image_of(tmp_path, [(f"R{i:03}.TXT", b"") for i in range(224)])
    assert "LABEL" not in readback.blkid(image)        # and fsck.fat finds the boot sector agreeing
    assert readback.fsck_fat(image).returncode == 0


@pytest.mark.parametrize("name,field,case", [
    ("R001.TXT", b"R001    TXT", 0x00),
    ("README", b"README     ", 0x00),
    ("$OEM$", b"$OEM$      ", 0x00),
    ("readme.txt", b"README  TXT", 0x18),    # Windows NT's case bits: lower base 0x08, lower extension 0x10
    ("readme.TXT", b"README  TXT", 0x08),
    ("README.txt", b"README  TXT", 0x10),
    ("r001", b"R001       ", 0x08),
    ("1234.567", b"1234    567", 0x00),
])
def test_an_8_3_name_takes_one_entry(tmp_path, name, field, case):
    image = image_of(tmp_path, [(name, b"x")])
    assert root_files(image) == ([(field, case)], 0)
    assert readback.fat_files(image) == {name: b"x"}
    assert readback.fsck_fat(image).returncode == 0


@pytest.mark.parametrize("name", ["ReadMe.txt", "README.Txt", "long name.txt", "a.b.c", "abcdefghi", "a+b",
                                  ".profile", "¥", "é.TXT", "日本.txt", "x.json"])
def test_any_other_name_has_a_long_name_and_an_ascii_alias(tmp_path, name):
    image = image_of(tmp_path, [(name, b"x")])
    (field_case,), long_entries = root_files(image)
    assert long_entries >= 1
    assert field_case[0].isascii() and field_case[1] == 0
    assert readback.fat_files(image) == {name: b"x"}
    assert readback.fsck_fat(image).returncode == 0


def test_non_ascii_names_read_back_whatever_the_code_page(tmp_path):
    """Found by the property test: '¥' came back as 'Ø'. Its 8.3 entry held CP437's 0x9D and,
    that alias reading back as the name under CP437, no long name; mtools reads 0x9D under
    CP850, as 'Ø'. Aliases are now pure ASCII and such names always have a long name."""
    files = [("¥", b""), ("Ø", b"1"), ("é", b"2"), ("ü.TXT", b"3"), ("£¥€", b"4"), ("ÀB.TXT", b"5")]
    image = image_of(tmp_path, files)
    assert readback.fat_files(image) == dict(files)
    shorts, _ = root_files(image)
    assert all(field.isascii() for field, _ in shorts)


def test_aliases_avoid_8_3_names_given_in_the_same_directory(tmp_path):
    files = [("Long name one.txt", b"1"), ("LONGNA~1.TXT", b"2"), ("LONGNA~2.TXT", b"3"), ("long name two.txt", b"4")]
    image = image_of(tmp_path, files)
    shorts, _ = root_files(image)
    assert len({field for field, _ in shorts}) == 4
    assert readback.fat_files(image) == dict(files)


def test_case_differing_directories_are_refused():
    with pytest.raises(PayloadError, match="differs only in case"):
        Payload(type="floppy", files=(PayloadFile("Dir/a", b""), PayloadFile("DIR/b", b"")))
