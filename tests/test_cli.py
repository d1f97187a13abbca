"""The payloadhook command against a real libvirtd, judged by the tiny guest (CONTRACT.md section 5)."""

import hashlib
import os
import subprocess
import sys

import pytest

from tests.conftest import MARKER, REPO
from tests.harness.domains import domain, images_of, wait_state
from tests.harness.tinyguest import parse_console

pytestmark = pytest.mark.integration

XSL = os.path.join(REPO, "xsl", "redact.xsl")


def payloadhook(libvirtd, *args, check=True, uri=None):
    result = subprocess.run([sys.executable, "-m", "payloadhook.cli", "-c", uri or libvirtd.uri, *args],
                            capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    assert MARKER not in result.stdout + result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def seed(workdir):
    tree = workdir / "seed"
    tree.mkdir()
    (tree / "meta-data").write_bytes(b"instance-id: " + MARKER.encode() + b"\n")
    (tree / "user-data").write_bytes(b"#cloud-config\n")
    return tree


@pytest.fixture
def guest(libvirtd, workdir, guest_kernel, request):
    """A defined guest without payload disks, whose console the test reads after each boot."""
    name = "ph-cli-" + request.node.name.split("[")[0][5:30].replace("_", "-")
    console = workdir / "console.log"
    path = workdir / "guest.xml"
    path.write_text(domain(name, [], kernel=guest_kernel, console=str(console), devs="sr0"))
    libvirtd.virsh("define", str(path))

    def boot(*start):
        if console.exists():
            console.unlink()
        (start[0]() if start else libvirtd.virsh("start", name))
        wait_state(libvirtd, name, "shut off", timeout=120)
        return parse_console(console.read_text(errors="replace"))

    yield name, boot
    libvirtd.virsh("destroy", name, check=False)
    libvirtd.virsh("undefine", name, check=False)


def sums(tree):
    return {p: hashlib.sha256((tree / p).read_bytes()).hexdigest() for p in sorted(os.listdir(tree))}


def test_attach_start_detach(libvirtd, guest, seed):
    name, boot = guest
    out = payloadhook(libvirtd, "attach", name, "--type", "cdrom", "--label", "cidata", str(seed)).stdout
    assert f"to {name} on hdc" in out
    report = boot()
    assert report["labels"] == {"sr0": "cidata"}
    assert report["files"][("sr0", "rock")] == sums(seed)
    assert not images_of(libvirtd, name)

    shown = payloadhook(libvirtd, "show", name).stdout
    assert "cdrom on hdc, label cidata, 2 files" in shown
    assert hashlib.sha256((seed / "meta-data").read_bytes()).hexdigest() in shown

    payloadhook(libvirtd, "detach", name)
    assert "<disk" not in libvirtd.virsh("dumpxml", name).stdout
    assert "no payloads" in payloadhook(libvirtd, "show", name).stdout
    report = boot()
    assert report["files"] == {}


def test_run_once_leaves_the_definition_unchanged(libvirtd, guest, seed):
    name, boot = guest
    before = libvirtd.virsh("dumpxml", "--inactive", name).stdout
    report = boot(lambda: payloadhook(libvirtd, "run-once", name, "--type", "cdrom", str(seed)))
    assert report["files"][("sr0", "rock")] == sums(seed)
    assert libvirtd.virsh("dumpxml", "--inactive", name).stdout == before
    report = boot()
    assert report["files"] == {}


def test_run_once_refuses_a_running_domain(libvirtd, guest, seed):
    name, _ = guest
    libvirtd.virsh("start", name)
    try:
        result = payloadhook(libvirtd, "run-once", name, "--type", "cdrom", str(seed), check=False)
        assert result.returncode == 3
        assert result.stderr == f"payloadhook: domain {name} is running; run-once starts an inactive domain\n"
    finally:
        libvirtd.virsh("destroy", name, check=False)


def test_show_and_dumpxml_never_print_content(libvirtd, guest, seed):
    name, _ = guest
    payloadhook(libvirtd, "attach", name, "--type", "floppy", str(seed / "meta-data"))
    payloadhook(libvirtd, "attach", name, "--type", "cdrom", str(seed))
    dumped = payloadhook(libvirtd, "dumpxml", name).stdout
    assert 'redacted="yes"' in dumped and "sha256=" in dumped and "meta-data" in dumped
    real = libvirtd.virsh("dumpxml", name).stdout.encode()
    redacted = subprocess.run(["xsltproc", XSL, "-"], input=real, capture_output=True, check=True).stdout
    assert b"<pl:content" in real and b'redacted="yes"' in redacted
    import base64
    for encoded in (base64.b64encode((seed / "meta-data").read_bytes()),):
        assert encoded in real.replace(b"\n", b"") and encoded not in redacted.replace(b"\n", b"")


@pytest.mark.parametrize("args,code,fragment", [
    (["show", "no-such-domain"], 3, "payloadhook: domain no-such-domain not found"),
    (["attach", "no-such-domain", "--type", "cdrom", "/etc/hostname"], 3, "not found"),
    (["attach", "{guest}", "--type", "cdrom", "/nonexistent/file"], 1, "input /nonexistent/file does not exist"),
    (["detach", "{guest}"], 1, "has no payload at all"),
])
def test_errors_are_one_line_with_documented_codes(libvirtd, guest, args, code, fragment):
    name, _ = guest
    result = payloadhook(libvirtd, *[a.format(guest=name) for a in args], check=False)
    assert result.returncode == code
    assert result.stderr.count("\n") == 1 and fragment in result.stderr


def test_unreachable_daemon(libvirtd):
    result = payloadhook(libvirtd, "show", "x", check=False, uri="qemu:///system?socket=/nonexistent/sock")
    assert result.returncode == 3
    assert result.stderr.startswith("payloadhook: cannot connect to qemu:///system?socket=/nonexistent/sock: ")
    assert result.stderr.count("\n") == 1


def test_ovf_export_and_import_through_libvirt(libvirtd, guest, seed, workdir):
    name, boot = guest
    payloadhook(libvirtd, "attach", name, "--type", "cdrom", "--label", "cidata", str(seed))
    shown = payloadhook(libvirtd, "show", name).stdout
    assert payloadhook(libvirtd, "show", "--inactive", name).stdout == shown   # read-only, saved definition
    carried = workdir / "vm.ovf"
    payloadhook(libvirtd, "ovf", "export", name, "-o", str(carried), "--with-content")
    payloadhook(libvirtd, "detach", name)
    payloadhook(libvirtd, "ovf", "import", str(carried), "--domain", name)
    assert payloadhook(libvirtd, "show", name).stdout == shown
    report = boot()
    assert report["files"][("sr0", "rock")] == sums(seed)
