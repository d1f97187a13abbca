"""The qemu hook (README, "The hook"), in-process and as libvirt runs it: a bare environment, LC_ALL=C."""

import io
import os
import subprocess
import sys

import pytest

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.domain.view import view_of
from payloadhook.hook import main, run
from payloadhook.model import Payload, PayloadFile
from tests.conftest import MARKER, REPO

HOOK = os.path.join(REPO, "hooks", "qemu")
DATA = os.path.join(REPO, "tests", "data")

UNICODE_FILES = (
    PayloadFile("Ünïcödé/日本語のファイル名.txt", MARKER.encode() + "こんにちは".encode()),
    PayloadFile("openstack/latest/meta_data.json", MARKER.encode() + b'{"uuid": "x"}'),
)


def domain_xml(image_dir, name="dömain-ü", payloads=None, cd_source=None):
    payloads = payloads if payloads is not None else [
        Payload(type="cdrom", files=UNICODE_FILES, volume_id="config-2"),
        Payload(type="floppy", files=(PayloadFile("Unattend.xml", MARKER.encode()),)),
    ]
    root = xmlsafe.parse_xml(f"""<domain type='qemu'><name>{name}</name><devices>
      <disk type='file' device='cdrom'><source file='{cd_source or image_dir + "/" + name + "-hdc.iso"}'/>
        <target dev='hdc' bus='ide'/><readonly/></disk>
      <disk type='file' device='floppy'><source file='{image_dir}/{name}-fda.img'/><target dev='fda' bus='fdc'/></disk>
      </devices></domain>""")
    metadata.set_payloads(root, payloads)
    return xmlsafe.serialize(root)


@pytest.fixture
def conf(tmp_path):
    image_dir = tmp_path / "images"
    path = tmp_path / "payloadhook.conf"
    path.write_text(f"[payloadhook]\nimage_dir = {image_dir}\nmax_file_size = 1M\n")
    return {"PAYLOADHOOK_CONF": str(path), "PAYLOADHOOK_INDEX": str(tmp_path / "index")}, str(image_dir)


def hook_process(args, stdin, environ):
    """Run hooks/qemu as libvirt does: LC_ALL=C and nothing else but our config's path."""
    env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "PAYLOADHOOK_INDEX": os.environ["PAYLOADHOOK_INDEX"], **environ}    # conftest's, unless given
    return subprocess.run([sys.executable, "-I", HOOK, *args], input=stdin, capture_output=True, env=env,
                          timeout=60)


def test_prepare_and_release_in_process(conf):
    environ, image_dir = conf
    xml = domain_xml(image_dir)
    out = io.BytesIO()
    assert main("dömain-ü", "prepare", "begin", io.BytesIO(xml), out, environ) == 0
    assert out.getvalue() == b""
    assert sorted(os.listdir(image_dir)) == [".payloadhook", "dömain-ü-fda.img", "dömain-ü-hdc.iso"]
    assert main("dömain-ü", "release", "end", io.BytesIO(xml), out, environ) == 0
    assert sorted(os.listdir(image_dir)) == [".payloadhook"]


def test_hook_process_under_lc_all_c_with_unicode(conf):
    environ, image_dir = conf
    xml = domain_xml(image_dir)
    result = hook_process(["dömain-ü", "prepare", "begin", "-"], xml, environ)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    from tests.harness import readback
    iso = readback.iso_files(f"{image_dir}/dömain-ü-hdc.iso", "rock")
    assert iso == {f.name: f.content for f in UNICODE_FILES}
    assert readback.iso_files(f"{image_dir}/dömain-ü-hdc.iso", "joliet") == iso
    assert readback.fat_files(f"{image_dir}/dömain-ü-fda.img") == {"Unattend.xml": MARKER.encode()}
    result = hook_process(["dömain-ü", "release", "end", "-"], xml, environ)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert os.listdir(image_dir) == [".payloadhook"]


@pytest.mark.parametrize("operation", [("prepare", "begin"), ("start", "begin"), ("started", "begin"),
                                       ("stopped", "end"), ("release", "end"), ("reconnect", "begin"),
                                       ("attach", "begin")])
def test_domain_without_payload_imports_nothing_heavy(operation, tmp_path):
    xml = open(os.path.join(DATA, "plain-domain.xml"), "rb").read()
    # what the hook imports beyond what the interpreter already has (an editable install's finder loads re)
    code = ("import sys; before = set(sys.modules); from payloadhook.hook import run; "
            f"rc = run(['qemu', 'plain', {operation[0]!r}, {operation[1]!r}, '-'], sys.stdin.buffer, "
            "sys.stdout.buffer, sys.stderr); "
            "loaded = sorted(m for m in ('lxml', 'pycdlib', 'pyfatfs', 'cryptography', 'fs', 'configparser', 'json', 'logging', "
            "'dataclasses', 're', 'typing', 'hashlib', 'socket', 'ctypes', 'resource', 'payloadhook.seal.nodump', "
            "'payloadhook.seal.evp') if m in set(sys.modules) - before); "
            "print(rc, loaded)")
    conf = tmp_path / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {tmp_path}/images\n")
    env = {"LC_ALL": "C", "PAYLOADHOOK_CONF": str(conf)}
    result = subprocess.run([sys.executable, "-I", "-c", code], input=xml, capture_output=True, env=env)
    assert result.stdout.decode().split("\n")[-2] == "0 []", result.stderr


#: What a prepare with payloads may import beyond the interpreter's start: the package's own
#: modules, and these C modules and small pure ones of the standard library, each for what it
#: does (XML, base64, the FAT geometry, packing records, the lock, the collector off while the
#: domain is read). Not dataclasses (inspect, ast, dis), re, enum, json, ElementTree,
#: defusedxml, functools, contextlib, typing, logging, lxml or cryptography: docs/speed.md
#: gives what each would cost.
PAYLOAD_PATH_STDLIB = {"__future__", "binascii", "errno", "fcntl", "gc", "pyexpat", "pyexpat.errors", "pyexpat.model", "_struct",
                       "struct", "math",
                       "encodings.utf_16_be", "encodings.utf_16_le"}


def modules_hook_loads(name: str, operation: str, xml: bytes, environ: dict) -> list[str]:
    """The modules the hook imports for OPERATION on domain NAME (from XML), run without site
    (-S), as the installed hook runs: an editable install's finder would load re and more
    first. The hook must succeed."""
    code = (f"import os, sys; sys.path.insert(0, {REPO!r}); before = set(sys.modules); from payloadhook.hook import run; "
            f"rc = run(['qemu', {name!r}, {operation!r}, 'begin', '-'], sys.stdin.buffer, sys.stdout.buffer, sys.stderr); "
            "print(rc, *sorted(set(sys.modules) - before))")
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "PAYLOADHOOK_INDEX": os.environ["PAYLOADHOOK_INDEX"], **environ}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], input=xml, capture_output=True, env=env)
    status, *loaded = result.stdout.decode().split("\n")[-2].split(" ")
    assert status == "0", result.stderr
    return loaded


def test_prepare_with_payloads_imports_only_what_it_uses(conf):
    environ, image_dir = conf
    xml = domain_xml(image_dir, name="imports")    # a CD-ROM and a floppy
    loaded = modules_hook_loads("imports", "prepare", xml, environ)
    assert {m for m in loaded if m.partition(".")[0] != "payloadhook"} - PAYLOAD_PATH_STDLIB == set()


@pytest.mark.parametrize("operation", [("release", "end"), ("stopped", "end"), ("started", "begin")])
def test_domain_without_payload_does_not_even_import_os(operation, conf):
    """Without site, as the installed hook runs, the interpreter has not imported os: the
    cheap paths use posix (payloadhook/posixenv.py)."""
    environ, _ = conf
    xml = open(os.path.join(DATA, "plain-domain.xml"), "rb").read()
    code = (f"import sys; sys.path.insert(0, {REPO!r}); before = set(sys.modules); from payloadhook.hook import run; "
            f"rc = run(['qemu', 'plain', {operation[0]!r}, {operation[1]!r}, '-'], sys.stdin.buffer, "
            "sys.stdout.buffer, sys.stderr); print(rc, *sorted(set(sys.modules) - before))")
    env = {"LC_ALL": "C", "PAYLOADHOOK_INDEX": os.environ["PAYLOADHOOK_INDEX"], **environ}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], input=xml, capture_output=True, env=env)
    status, *loaded = result.stdout.decode().split("\n")[-2].split(" ")
    assert status == "0", result.stderr
    assert {m for m in loaded if m.partition(".")[0] != "payloadhook"} == {"__future__"}


@pytest.mark.parametrize("mutate,fragment", [
    (lambda x, d: x.replace(b"openstack/latest", b"../../etc"), "has a '..' component"),
    (lambda x, d: x.replace(d.encode() + "/dömain-ü-hdc.iso".encode(), b"/etc/cron.d/evil"),
     "outside the image directory"),
    (lambda x, d: x.replace(b"<pl:content encoding=\"base64\">", b"<pl:content encoding=\"base64\">!!", 1),
     "not valid base64"),
    (lambda x, d: x.replace(b"</domain>", b""), "not well-formed"),
    (lambda x, d: x.replace(b'type="cdrom"', b'type="cdrom" target="sdq"'), "no disk has target 'sdq'"),
])
def test_refusals_are_one_line_without_content_and_leave_nothing(conf, mutate, fragment):
    environ, image_dir = conf
    xml = mutate(domain_xml(image_dir), image_dir)
    result = hook_process(["dömain-ü", "prepare", "begin", "-"], xml, environ)
    assert result.returncode == 1
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("payloadhook: domain dömain-ü: ") and fragment in lines[0], lines
    assert MARKER not in result.stderr.decode()
    assert not os.path.exists(image_dir) or os.listdir(image_dir) in ([], [".payloadhook"])
    assert not os.path.exists("/etc/cron.d/evil")
    # libvirt calls release after a failed prepare: harmless
    result = hook_process(["dömain-ü", "release", "end", "-"], xml, environ)
    assert (result.returncode, result.stderr) == (0, b"")


def test_over_limit_is_refused(conf):
    environ, image_dir = conf
    xml = domain_xml(image_dir, payloads=[Payload(type="cdrom", files=(PayloadFile("big", b"x" * (1 << 20 + 1)),))])
    result = hook_process(["dömain-ü", "prepare", "begin", "-"], xml, environ)
    assert result.returncode == 1 and b"over max_file_size (1048576)" in result.stderr


def test_malformed_config_is_one_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[payloadhook]\nimage_dir = relative\n")
    xml = domain_xml("/run/payloadhook")
    result = hook_process(["d", "prepare", "begin", "-"], xml, {"PAYLOADHOOK_CONF": str(conf)})
    assert result.returncode == 1
    assert result.stderr.decode() == f"payloadhook: domain d: configuration file {conf}: image_dir must be an absolute path\n"


def test_migrate_filter_rewrites_foreign_sources(conf):
    environ, image_dir = conf
    xml = domain_xml(image_dir, cd_source="/srv/elsewhere/dömain-ü-hdc.iso")
    out = io.BytesIO()
    main("dömain-ü", "migrate", "begin", io.BytesIO(xml), out, environ)
    sources = [d.source for d in view_of(xmlsafe.parse_xml(out.getvalue())).disks]
    assert sources == [f"{image_dir}/dömain-ü-hdc.iso", f"{image_dir}/dömain-ü-fda.img"]


@pytest.mark.parametrize("operation", ["migrate", "restore"])
def test_filter_prints_nothing_when_nothing_changes(conf, operation):
    environ, image_dir = conf
    result = hook_process(["dömain-ü", operation, "begin", "-"], domain_xml(image_dir), environ)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_large_input_is_drained_for_ignored_operations():
    big = b"<domain><name>x</name><description>" + b"y" * (3 << 20) + b"</description></domain>"
    stdin = io.BytesIO(big)
    assert run(["qemu", "x", "started", "begin", "-"], stdin, io.BytesIO(), io.StringIO()) == 0
    assert stdin.tell() == len(big)


CAPTURED = os.path.join(DATA, "restore-begin-captured.xml")


def test_restore_filter_on_xml_libvirt_really_passes(tmp_path):
    xml = open(CAPTURED, "rb").read()
    here = tmp_path / "here.conf"
    here.write_text("[payloadhook]\nimage_dir = /run/payloadhook\n")
    result = hook_process(["captured", "restore", "begin", "-"], xml, {"PAYLOADHOOK_CONF": str(here)})
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")

    elsewhere = tmp_path / "elsewhere.conf"
    elsewhere.write_text("[payloadhook]\nimage_dir = /srv/payloads\n")
    for operation in ("restore", "migrate"):
        result = hook_process(["captured", operation, "begin", "-"], xml, {"PAYLOADHOOK_CONF": str(elsewhere)})
        assert result.returncode == 0 and result.stderr == b""
        out = xmlsafe.parse_xml(result.stdout)
        assert [d.source for d in view_of(out).disks] == ["/srv/payloads/captured-hdc.iso",
                                                               "/srv/payloads/captured-fda.img"]
        # nothing else changed
        from lxml import etree
        back = result.stdout.replace(b"/srv/payloads/", b"/run/payloadhook/")
        assert etree.tostring(etree.fromstring(back), method="c14n") == \
            etree.tostring(xmlsafe.parse_xml(xml), method="c14n")


def test_a_bug_is_still_one_line_without_content(conf, monkeypatch):
    environ, image_dir = conf

    def broken(payload, out):
        raise ValueError("a message that quotes " + MARKER)

    monkeypatch.setattr("payloadhook.media.write_image", broken)
    stderr = io.StringIO()
    assert run(["qemu", "d", "prepare", "begin", "-"], io.BytesIO(domain_xml(image_dir)), io.BytesIO(), stderr,
               environ) == 1
    assert stderr.getvalue() == "payloadhook: domain d: internal error (ValueError) in prepare; please report it\n"


@pytest.mark.parametrize("interface", ["", "<interface type='network'><source network='default'/></interface>"],
                         ids=["no word network", "a network interface"])
def test_started_of_a_domain_without_network_payload_imports_no_seed_machinery(conf, interface):
    """libvirt waits for started before virsh start returns: for a CD-ROM or floppy payload
    it does not import the seed service's modules (socket, json, base64, dataclasses: 80
    million instructions), and where the XML cannot spell type="network" it does not even
    read the domain."""
    environ, image_dir = conf
    xml = domain_xml(image_dir, name="started").replace(b"<devices>", b"<devices>" + interface.encode())
    loaded = modules_hook_loads("started", "started", xml, environ)
    assert {m for m in loaded if m.partition(".")[0] != "payloadhook"} - PAYLOAD_PATH_STDLIB == set()
    assert not [m for m in loaded if m.startswith("payloadhook.seed")]
    assert ("payloadhook.domain.view" in loaded) == bool(interface)
