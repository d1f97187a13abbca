"""ISO 9660 images, read back by xorriso, isoinfo, blkid and pycdlib, none of which shares code with\npayloadhook's writer."""

import os
import random

import pytest

from payloadhook.errors import PayloadError
from payloadhook.media.iso import JOLIET_MAX_UNITS, build_iso, joliet_names
from payloadhook.model import Payload, PayloadFile
from tests.harness import readback

LONG = "a-very-long-file-name-that-goes-on-and-on-beyond-what-joliet-can-hold-in-one-name.json"

CASES = {
    "contract": [("openstack/latest/meta_data.json", b'{"uuid": "x"}\n'), ("readme.txt", b"plain")],
    "unicode": [("Ünïcödé/日本語のファイル名.txt", "こんにちは".encode()), ("файл.txt", b"\x00\x01\xff"),
                ("emoji-\U0001F600.txt", b"smile")],
    "nested": [("/".join(f"level{i}" for i in range(1, 8)) + "/deep.bin", os.urandom(5000)),
               ("a/b/c.txt", b"c"), ("a/b.txt", b"b")],
    "long-names": [(LONG, b"long"), ("d" * 100 + "/" + "e" * 200 + ".txt", b"deep long")],
    "iso-collisions": [("Config File A.txt", b"A"), ("Config File B.txt", b"B"), ("config_file_c.txt", b"C"),
                       ("readme.TXT", b"r1"), ("ReadMe.txt", b"r2")],
    "empty-and-big": [("empty", b""), ("big.bin", os.urandom(3 * 1024 * 1024 + 7))],
    "no-files": [],
}


def image_of(tmp_path, files, label=None):
    payload = Payload(type="cdrom", files=tuple(PayloadFile(n, c) for n, c in files), volume_id=label)
    path = tmp_path / "payload.iso"
    path.write_bytes(build_iso(payload))
    return str(path)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("tree", ["rock", "joliet"])
def test_pycdlib_parses_both_trees_byte_for_byte(tmp_path, case, tree):
    files = dict(CASES[case])
    if tree == "joliet":
        files = {n: c for n, c in files.items() if all(len(p.encode("utf-16-le")) <= 128 for p in n.split("/"))}
    found = readback.pycdlib_files(image_of(tmp_path, CASES[case]), tree)
    assert {n: c for n, c in found.items() if n in files or tree == "rock"} == files


@pytest.mark.parametrize("case", sorted(CASES))
def test_plain_iso9660_tree_holds_every_file_under_level_1_names(tmp_path, case):
    found = readback.iso9660_files(image_of(tmp_path, CASES[case]))
    assert sorted(found.values()) == sorted(c for _, c in CASES[case])
    for path in found:
        for part in path.split("/"):
            stem, _, ext = part.partition(".")
            assert len(stem) <= 8 and len(ext) <= 3 and part == part.upper()


@pytest.mark.parametrize("case", sorted(CASES))
def test_rock_ridge_tree_holds_every_file_byte_for_byte(tmp_path, case):
    image = image_of(tmp_path, CASES[case])
    assert readback.iso_files(image, "rock") == dict(CASES[case])


@pytest.mark.parametrize("case", sorted(set(CASES) - {"long-names"}))
def test_joliet_tree_holds_every_file_byte_for_byte(tmp_path, case):
    image = image_of(tmp_path, CASES[case])
    assert readback.iso_files(image, "joliet") == dict(CASES[case])


def test_joliet_shortens_long_names_keeping_extension(tmp_path):
    files = [(LONG, b"1"), (LONG.replace("json", "yaml"), b"2"), (LONG[:-6] + "X.json", b"3")]
    image = image_of(tmp_path, files)
    joliet = readback.iso_files(image, "joliet")
    assert sorted(joliet.values()) == [b"1", b"2", b"3"]
    for name in joliet:
        assert len(name) <= JOLIET_MAX_UNITS
        assert name.startswith(LONG[:40])
    assert sorted(os.path.splitext(n)[1] for n in joliet) == [".json", ".json", ".yaml"]
    # isoinfo reads the same Joliet names
    assert sorted(n.rsplit("/", 1)[-1] for n in readback.isoinfo_joliet_names(image)) == sorted(joliet)


def test_joliet_keeps_non_ascii_names_of_up_to_64_utf16_units(tmp_path):
    name = "日本語" * 20 + ".txt"                # 64 characters, 184 bytes of UTF-8
    assert readback.iso_files(image_of(tmp_path, [(name, b"jp")]), "joliet") == {name: b"jp"}


def test_joliet_shortens_by_utf16_units_never_splitting_a_character(tmp_path):
    name = "\U0001F600" * 40 + ".txt"           # 40 characters outside the BMP: 84 UTF-16 units
    joliet = readback.iso_files(image_of(tmp_path, [(name, b"e")]), "joliet")
    (short,) = joliet
    assert short == "\U0001F600" * 30 + ".txt"   # 60 + 4 units
    assert readback.iso_files(image_of(tmp_path, [(name, b"e")]), "rock") == {name: b"e"}


def test_joliet_names_are_unique_and_short():
    names = [("x" * 70) + f"{i}.txt" for i in range(12)] + ["short.txt"]
    result = joliet_names(names)
    assert result["short.txt"] == "short.txt"
    assert len(set(result.values())) == len(names)
    assert all(len(v.encode("utf-16-le")) // 2 <= JOLIET_MAX_UNITS and v.endswith(".txt") for v in result.values())


@pytest.mark.parametrize("label", ["config-2", "cidata", "PAYLOAD", "A" * 16])
def test_label_and_type_seen_by_blkid(tmp_path, label):
    info = readback.blkid(image_of(tmp_path, [("a", b"a")], label))
    assert info["TYPE"] == "iso9660"
    assert info["LABEL"] == label


def test_default_label(tmp_path):
    assert readback.blkid(image_of(tmp_path, [("a", b"a")]))["LABEL"] == "PAYLOAD"


def test_size_is_a_multiple_of_4k(tmp_path):
    for size in (0, 1, 2048, 4097, 100_000):
        assert os.path.getsize(image_of(tmp_path, [("f", b"x" * size)])) % 4096 == 0


def test_too_deep_is_refused():
    with pytest.raises(PayloadError, match="deeper than 8"):
        Payload(type="cdrom", files=(PayloadFile("/".join("abcdefghi"), b""),))


def test_rock_ridge_names_on_both_sides_of_the_continuation_area(tmp_path):
    """Short names sit in the directory record; longer ones (and 251-255 bytes: two NM
    entries) in a continuation area. Every length from 120 to 160 bytes, and the longest."""
    files = [(f"{n:03}" + "x" * (n - 3), n.to_bytes(2, "big")) for n in [*range(120, 161), 249, 250, 251, 254, 255]]
    files += [("d" * 200 + "/" + "é" * 127 + ".", b"two-byte characters")]   # 255 bytes of UTF-8
    image = image_of(tmp_path, files)
    assert readback.iso_files(image, "rock") == dict(files)
    assert readback.pycdlib_files(image, "rock") == dict(files)


@pytest.mark.parametrize("seed", [376, 425, 496, 733])
def test_directories_over_several_sectors_in_both_trees(tmp_path, seed):
    """Records never cross a sector, so where a directory's sectors end depends on the
    order of its records, which differs between the trees: here names starting with '-'
    sort first in Joliet and last in ISO 9660 (as '_'). These seeds make a Joliet
    directory need one sector more than in ISO order; laid out in the wrong order, it
    once outgrew its extent and shifted everything after it, Rock Ridge areas included."""
    rnd = random.Random(seed)
    files = []
    for index in range(rnd.randint(20, 70)):
        if rnd.random() < 0.5:
            name = "-" + "".join(rnd.choice("abcdefghij") for _ in range(rnd.choice([5, 40, 60])))
        else:
            name = "".join(rnd.choice("abcdefghij") for _ in range(rnd.choice([1, 12, 30])))
        files.append((f"d/{name}{index}", bytes([index])))
    image = image_of(tmp_path, files)
    assert readback.iso_files(image, "rock") == dict(files)
    assert readback.pycdlib_files(image, "rock") == dict(files)
    assert readback.iso_files(image, "joliet") == dict(files)


ALPHABET = "abcXYZ019 _-.~é日本\U0001F600Ωß*:;?\\"


@pytest.mark.parametrize("seed", range(20))
def test_random_trees_read_back_whole(tmp_path, seed):
    """Trees of up to 40 files, 8 levels, names of 1 to 255 bytes from an alphabet that
    upsets every naming scheme, sizes on both sides of a sector: xorriso and pycdlib read
    the Rock Ridge tree back whole. (A random run like this found the Joliet extent bug.)"""
    rnd = random.Random(seed)
    files = {}
    for _ in range(rnd.randint(1, 40)):
        parts = []
        for _ in range(rnd.randint(1, 8)):
            part = "".join(rnd.choice(ALPHABET) for _ in range(rnd.choice([1, 3, 8, 12, 30, 64, 65, 100, 140, 200])))
            while len(part.encode()) > 255:
                part = part[:-1]
            parts.append(part.strip(" ") or "x")
        name = "/".join("dot" if p in (".", "..") else p for p in parts)
        if not any(other.startswith(name + "/") or name.startswith(other + "/") for other in files):
            files[name] = os.urandom(rnd.choice([0, 1, 2047, 2048, 2049, 5000]))
    image = image_of(tmp_path, list(files.items()))
    assert readback.iso_files(image, "rock") == files
    assert readback.pycdlib_files(image, "rock") == files


def test_an_ascii_name_is_cut_to_d_characters_as_any_other():
    """ISO 9660 names of ASCII are cleaned in one translation (isonames.iso9660_names): the
    same 8.3 name as the rule gives (isonames._iso9660_basis: each part upper-cased and
    cleaned on its own)."""
    from payloadhook.media import isonames
    rnd = random.Random(26)
    alphabet = "abcXYZ019._-~ !#$%&()[]{}\x7f"
    names = [".bashrc", "a.", "a..b", "A.B.C", "x" * 40 + ".y", "file-0001.bin"] + ["a." + "b" * n for n in (14, 15, 16, 17)]
    names += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 24))) for _ in range(2000)]
    for name in names:
        for is_dir in (False, True):
            stem, suffix = isonames._iso9660_basis(name, is_dir)
            assert isonames.iso9660_names([(name, is_dir)]) == [stem[:8] + suffix], name
