"""Hostile input and faults: a root hook that cannot be turned against its host.

Every file in tests/data/bad/ is a domain XML that the hook must refuse at prepare:
exit status 1, one line on stderr naming the problem (its first comment says which),
never content, never a traceback, nothing written. Then property tests, an XML fuzz
test, and faults: a hook killed mid-prepare, many domains at once.
"""

import base64
import glob
import io
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.domain.view import read_domain
from payloadhook.errors import PayloadError, PayloadhookError
from payloadhook.hook import run
from payloadhook.media.floppy import build_floppy
from payloadhook.media.iso import JOLIET_MAX_UNITS, build_iso
from payloadhook.model import Payload, PayloadFile, check_name
from tests.conftest import MARKER, REPO
from tests.harness import readback

BAD = sorted(glob.glob(os.path.join(REPO, "tests", "data", "bad", "*.xml")))
HOOK = os.path.join(REPO, "hooks", "qemu")


@pytest.fixture
def hook_env(tmp_path):
    image_dir = tmp_path / "images"
    conf = tmp_path / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\nmax_file_size = 1K\nmax_payload_size = 2K\n")
    return {"PAYLOADHOOK_CONF": str(conf), "LC_ALL": "C"}, str(image_dir)


def assert_nothing_left(image_dir):
    """No image, no temporary file, no record: at most the empty record directory."""
    if not os.path.exists(image_dir):
        return
    assert sorted(os.listdir(image_dir)) in ([], [".payloadhook"])
    if os.path.exists(os.path.join(image_dir, ".payloadhook")):
        assert os.listdir(os.path.join(image_dir, ".payloadhook")) == []


def test_corpus_is_there():
    assert len(BAD) >= 40


@pytest.mark.parametrize("path", BAD, ids=[os.path.basename(p)[:-4] for p in BAD])
def test_bad_input_is_refused_in_one_line(hook_env, path):
    environ, image_dir = hook_env
    xml = open(path, "rb").read()
    expect = re.search(rb"<!-- expect: (.*?) -->", xml).group(1).decode()
    xml = xml.replace(b"/run/payloadhook", image_dir.encode())
    stdout, stderr = io.BytesIO(), io.StringIO()
    assert run(["qemu", "bad", "prepare", "begin", "-"], io.BytesIO(xml), stdout, stderr, environ) == 1
    assert stdout.getvalue() == b""
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("payloadhook: domain bad: "), lines
    assert expect in lines[0]
    assert MARKER not in lines[0] and base64.b64encode(MARKER.encode()).decode() not in lines[0]
    assert_nothing_left(image_dir)
    assert not os.path.exists("/etc/cron.d/evil") and not os.path.exists("/etc/evil")
    assert run(["qemu", "bad", "release", "end", "-"], io.BytesIO(xml), stdout, stderr, environ) == 0


def test_huge_document_is_refused_fast_in_bounded_memory(hook_env):
    environ, _ = hook_env
    huge = b"<domain><name>x</name><metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'/>" + \
        b"<x>" + b"y" * (64 << 20) + b"</x></metadata></domain>"
    stderr = io.StringIO()
    started = time.monotonic()
    assert run(["qemu", "x", "prepare", "begin", "-"], io.BytesIO(huge), io.BytesIO(), stderr, environ) == 1
    assert time.monotonic() - started < 2
    assert "over the 8388608 bytes accepted" in stderr.getvalue()


# -- properties ---------------------------------------------------------------

COMPONENT = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\u2028\u2029"),
                    min_size=1, max_size=40).filter(lambda c: c not in (".", ".."))
NAME = st.lists(COMPONENT, min_size=1, max_size=3).map("/".join)


def valid_files(payload_type):
    def ok(name):
        try:
            check_name(name, payload_type)
            return True
        except PayloadError:
            return False
    return st.dictionaries(NAME.filter(ok), st.binary(max_size=3000), min_size=1, max_size=5)


def clean_tree(files, payload_type):
    try:
        Payload(type=payload_type, files=tuple(PayloadFile(n, c) for n, c in files.items()))
        return True
    except PayloadError:
        return False


PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.filter_too_much])


@PROPERTY
@given(files=valid_files("cdrom"))
def test_any_valid_cdrom_payload_round_trips(tmp_path_factory, files):
    assume(clean_tree(files, "cdrom"))
    payload = Payload(type="cdrom", files=tuple(PayloadFile(n, c) for n, c in files.items()))
    image = tmp_path_factory.mktemp("iso") / "p.iso"
    image.write_bytes(build_iso(payload))
    # xorriso extracts into a Linux file system: names as bytes, any Unicode
    assert readback.iso_files(str(image), "rock") == files
    assert readback.pycdlib_files(str(image), "rock") == files   # and a strict parser agrees
    if all(len(p.encode("utf-16-le")) // 2 <= JOLIET_MAX_UNITS and not set(p) & set("*:;?\\")
           for n in files for p in n.split("/")):
        assert readback.iso_files(str(image), "joliet") == files


@PROPERTY
@given(files=valid_files("floppy").filter(lambda f: all(ord(ch) <= 0xFFFF for n in f for ch in n)))
def test_any_valid_floppy_payload_round_trips(tmp_path_factory, files):
    # (mtools cannot show characters beyond the BMP; the guest test covers those)
    assume(clean_tree(files, "floppy"))
    payload = Payload(type="floppy", files=tuple(PayloadFile(n, c) for n, c in files.items()))
    image = tmp_path_factory.mktemp("fat") / "p.img"
    image.write_bytes(build_floppy(payload))
    assert readback.fat_files(str(image)) == files
    assert readback.fsck_fat(str(image)).returncode == 0


BAD_PART = st.sampled_from(["", ".", "..", "a\x00b", "a\nb", "x\x1b[31m", "\x7f", "\x85"])


@settings(max_examples=200, deadline=None)
@given(prefix=st.lists(COMPONENT, max_size=2), bad=BAD_PART, suffix=st.lists(COMPONENT, max_size=2),
       payload_type=st.sampled_from(["cdrom", "floppy"]), absolute=st.booleans())
def test_any_invalid_name_is_refused(prefix, bad, suffix, payload_type, absolute):
    name = ("/" if absolute else "") + "/".join(prefix + [bad] + suffix)
    with pytest.raises(PayloadError):
        check_name(name, payload_type)


SEED = open(os.path.join(REPO, "tests", "data", "contract-example.xml"), "rb").read()


@settings(max_examples=400, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(SEED)), st.integers(0, 8), st.binary(max_size=8)), max_size=6))
def test_fuzzed_domain_xml_raises_only_our_errors(edits):
    data = SEED
    for position, length, replacement in edits:
        data = data[:position] + replacement + data[position + length:]
    try:
        read_domain(data, editable=False).bindings()
    except PayloadhookError as exc:
        assert "\n" not in str(exc)


# -- faults ---------------------------------------------------------------------

def hook(args, xml, environ, **kwargs):
    environ = {"PAYLOADHOOK_INDEX": os.environ["PAYLOADHOOK_INDEX"], **environ}    # conftest's
    return subprocess.Popen([sys.executable, "-I", HOOK, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environ, **kwargs)


def big_domain(image_dir, name):
    files = tuple(PayloadFile(f"dir{i}/file{i}.bin", os.urandom(200_000)) for i in range(5))
    root = xmlsafe.parse_xml(f"<domain><name>{name}</name><devices>"
                            f"<disk type='file' device='cdrom'><source file='{image_dir}/{name}.iso'/>"
                            f"<target dev='hdc'/></disk><disk type='file' device='floppy'>"
                            f"<source file='{image_dir}/{name}.img'/><target dev='fda'/></disk></devices></domain>")
    metadata.set_payloads(root, [Payload(type="cdrom", files=files),
                               Payload(type="floppy", files=files[:1])])
    return xmlsafe.serialize(root)


def test_hook_killed_at_any_point_of_prepare_leaves_nothing_after_release(tmp_path):
    image_dir = tmp_path / "images"
    conf = tmp_path / "c.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\n")
    environ = {"PAYLOADHOOK_CONF": str(conf), "LC_ALL": "C"}
    xml = big_domain(image_dir, "victim")
    rng = random.Random(1)
    outcomes = set()
    for attempt in range(16):
        process = hook(["victim", "prepare", "begin", "-"], xml, environ)
        process.stdin.write(xml)
        process.stdin.close()
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        outcomes.add(process.wait())
        release = hook(["victim", "release", "end", "-"], xml, environ)
        _, err = release.communicate(xml)
        assert release.returncode == 0, err
        assert_nothing_left(str(image_dir))
    assert -signal.SIGKILL in outcomes  # some were really killed mid-way


@pytest.mark.integration
def test_full_disk_leaves_nothing(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    assert os.system(f"mount -t tmpfs -o size=1200k tmpfs {mount}") == 0
    try:
        image_dir = mount / "images"
        conf = tmp_path / "c.conf"
        conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\n")
        environ = {"PAYLOADHOOK_CONF": str(conf), "LC_ALL": "C"}
        xml = big_domain(image_dir, "full")
        result = subprocess.run([sys.executable, "-I", HOOK, "full", "prepare", "begin", "-"], input=xml,
                                capture_output=True, env={**environ, "PAYLOADHOOK_INDEX": os.environ["PAYLOADHOOK_INDEX"]})
        assert result.returncode == 1
        line = result.stderr.decode()
        assert line.startswith(f"payloadhook: domain full: no space left in {image_dir} for the image full.")
        assert line.count("\n") == 1 and line.endswith("\n")
        assert sorted(os.listdir(image_dir)) == [".payloadhook"]
        assert os.listdir(image_dir / ".payloadhook") == []
    finally:
        os.system(f"umount {mount}")


def test_many_domains_prepared_at_once_do_not_interfere(tmp_path):
    image_dir = tmp_path / "images"
    conf = tmp_path / "c.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\n")
    environ = {"PAYLOADHOOK_CONF": str(conf), "LC_ALL": "C"}
    names = [f"dom{i}" for i in range(12)]
    documents = {n: big_domain(image_dir, n) for n in names}
    processes = {n: hook([n, "prepare", "begin", "-"], documents[n], environ) for n in names}
    for n, process in processes.items():
        _, err = process.communicate(documents[n])
        assert process.returncode == 0, err
    expected = sorted([".payloadhook"] + [f"{n}.iso" for n in names] + [f"{n}.img" for n in names])
    assert sorted(os.listdir(image_dir)) == expected
    for n in names:
        root = xmlsafe.parse_xml(documents[n])
        cdrom = metadata.read_payloads(root)[0]
        assert readback.iso_files(str(image_dir / f"{n}.iso")) == {f.name: f.content for f in cdrom.files}
    # stop all and start one again at once: the restart sees a clean slate
    processes = {n: hook([n, "release", "end", "-"], b"", environ) for n in names}
    for process in processes.values():
        process.communicate(b"")
    again = hook(["dom0", "prepare", "begin", "-"], documents["dom0"], environ)
    _, err = again.communicate(documents["dom0"])
    assert again.returncode == 0, err
    assert sorted(os.listdir(image_dir)) == [".payloadhook", "dom0.img", "dom0.iso"]
