"""Names that upset the naming schemes, by the thousand.

Every scheme that makes names unique in a directory (ISO 9660 level 1 names, Joliet's
``~N``, FAT 8.3 aliases) is fed thousands of names sharing one prefix: the image builds,
every name is unique, and independent readers (xorriso, isoinfo, pycdlib; mtools,
fsck.fat) read every file back. No timing is asserted here: bench/bench_scale.py prints
what it costs, and the cost was quadratic (minutes, for a root hook libvirt never times
out) before it was made linear.
"""

import collections

import pytest

from payloadhook.media.floppy import build_floppy
from payloadhook.media.iso import JOLIET_MAX_UNITS, build_iso
from payloadhook.model import Payload, PayloadFile
from tests.harness import readback

MANY = 20_000
#: over 64 UTF-16 units, so Joliet shortens every one to the same stem; all 'A_SHARED' in ISO 9660
LONG_PREFIX = "a-shared-prefix-" + "p" * 60


@pytest.fixture(scope="module")
def cdrom(tmp_path_factory):
    files = {f"{LONG_PREFIX}-{i:05}.txt": str(i).encode() for i in range(MANY)}
    # and directories sharing a prefix, with the 8.3 names their numbering will reach, given
    files.update({f"shared-directory-{i:04}/f": b"d%d" % i for i in range(1000)})
    files.update({f"SHARED_D{i}/g": b"g%d" % i for i in range(1, 10)})
    image = tmp_path_factory.mktemp("many") / "many.iso"
    image.write_bytes(build_iso(Payload(type="cdrom", files=tuple(PayloadFile(n, c) for n, c in files.items()))))
    return str(image), files


def test_rock_ridge_tree_holds_every_name(cdrom):
    image, files = cdrom
    assert readback.iso_files(image, "rock") == files


def test_joliet_names_are_unique_short_and_keep_their_extension(cdrom):
    image, files = cdrom
    found = readback.iso_files(image, "joliet")
    assert len(found) == len(files)
    assert collections.Counter(found.values()) == collections.Counter(files.values())
    for path in found:
        leaf = path.rsplit("/", 1)[-1]
        assert len(leaf.encode("utf-16-le")) // 2 <= JOLIET_MAX_UNITS
    assert sum(1 for p in found if p.endswith(".txt")) == MANY
    assert len(set(readback.isoinfo_names(image, "joliet"))) == len(files) + 1009   # and the directories


def test_iso9660_names_are_unique_8_3(cdrom):
    image, files = cdrom
    paths = readback.isoinfo_names(image)
    assert len(paths) == len(set(paths)) == len(files) + 1009
    for path in paths:
        stem, _, ext = path.rsplit("/", 1)[-1].partition(".")
        assert len(stem) <= 8 and len(ext.split(";")[0]) <= 3


def test_pycdlib_finds_every_record_in_every_tree(cdrom):
    import io

    import pycdlib
    image, files = cdrom
    iso = pycdlib.PyCdlib()
    iso.open(image)
    try:
        for key in ("rr_path", "joliet_path", "iso_path"):
            assert sum(len(names) for _, _, names in iso.walk(**{key: "/"})) == len(files)
        for name in [f"{LONG_PREFIX}-{i:05}.txt" for i in (0, 9, 10, 99, 100, 9999, MANY - 1)]:
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path="/" + name)
            assert out.getvalue() == files[name]
    finally:
        iso.close()


@pytest.fixture(scope="module")
def floppy(tmp_path_factory):
    # each takes a long-name entry and an alias: 'SAMEPR~1' ... 'SA~19999'
    files = {f"d/samepref{i:05}": b"" for i in range(MANY)}
    # 8.3 names given that the aliases would otherwise take
    files.update({f"d/SAMEPR~{i}": b"%d" % i for i in range(1, 10)})
    files.update({f"d/SAMEP~{i}": b"%d" % i for i in range(10, 40)})
    files.update({f"dirs/shared directory {i:03}/x.txt": b"%d" % i for i in range(100)})
    image = tmp_path_factory.mktemp("many") / "many.img"
    image.write_bytes(build_floppy(Payload(type="floppy", files=tuple(PayloadFile(n, c) for n, c in files.items()))))
    return str(image), files


def test_mtools_reads_every_name_back(floppy):
    image, files = floppy
    assert readback.fat_files(image) == files


def test_fsck_finds_no_duplicate_or_broken_entry(floppy):
    image, _ = floppy
    result = readback.fsck_fat(image)
    assert result.returncode == 0, result.stdout + result.stderr


# -- floppy names through the hook: refused in one line, or built ----------------------

def hook_prepare(tmp_path, names):
    import base64
    import io

    from payloadhook.hook import run
    image_dir = tmp_path / "images"
    conf = tmp_path / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\n")
    files = "".join(f"<pl:file><pl:name>{n}</pl:name><pl:content>{base64.b64encode(n.encode()).decode()}"
                    "</pl:content></pl:file>" for n in names)
    xml = (f"<domain type='kvm'><name>names</name><metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'>"
           f"<pl:payload type='floppy'><pl:files>{files}</pl:files></pl:payload></pl:payloads></metadata>"
           f"<devices><disk type='file' device='floppy'><source file='{image_dir}/names-fda.img'/>"
           "<target dev='fda'/></disk></devices></domain>").encode()
    stderr = io.StringIO()
    environ = {"PAYLOADHOOK_CONF": str(conf), "PAYLOADHOOK_INDEX": str(tmp_path / "index"), "LC_ALL": "C"}
    status = run(["qemu", "names", "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr, environ)
    image = image_dir / "names-fda.img"
    found = readback.fat_files(str(image)) if image.exists() else None
    assert run(["qemu", "names", "release", "end", "-"], io.BytesIO(xml), io.BytesIO(), io.StringIO(), environ) == 0
    assert not image.exists()
    return status, stderr.getvalue(), found


@pytest.mark.parametrize("names,fragment", [
    (["Dir/a", "DIR/b"], "directory 'DIR' that differs only in case from 'Dir'"),
    (["x/Sub/a", "x/sub/b"], "directory 'sub' that differs only in case from 'Sub'"),
    (["Readme.txt", "README.TXT"], "differs only in case"),
    ([f"R{i:03}.TXT" for i in range(225)], "needs 225 root directory entries, over the 224"),
])
def test_hook_refuses_floppy_names_in_one_line(tmp_path, names, fragment):
    status, stderr, found = hook_prepare(tmp_path, names)
    assert status == 1 and len(stderr.splitlines()) == 1 and fragment in stderr, stderr
    assert found is None


def test_hook_builds_a_root_of_224_8_3_names(tmp_path):
    names = [f"R{i:03}.TXT" for i in range(224)]
    status, stderr, found = hook_prepare(tmp_path, names)
    assert status == 0, stderr
    assert found == {n: n.encode() for n in names}
