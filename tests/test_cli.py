"""The payloadhook command against a real libvirtd, judged by the tiny guest (README, "The command")."""

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
    assert "cdrom on hdc, label cidata (cloud-init NoCloud), 2 files" in shown
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
        assert result.returncode == 1      # a refusal, not a libvirt failure
        assert result.stderr.startswith(f"payloadhook: domain {name} is running; run-once starts an inactive "
                                        "domain") and result.stderr.count("\n") == 1
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
    (["show", "no-such-domain"], 3, "payloadhook: domain 'no-such-domain' not found"),
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


@pytest.fixture
def idle(libvirtd, workdir, request):
    """A defined domain without a kernel: once started it stays running (SeaBIOS finds
    nothing to boot) until destroyed, so tests can look at a running domain at leisure."""
    name = "ph-cli-idle-" + request.node.name.split("[")[0][5:25].replace("_", "-")
    path = workdir / "idle.xml"
    path.write_text(domain(name, []))
    libvirtd.virsh("define", str(path))
    yield name
    libvirtd.virsh("destroy", name, check=False)
    libvirtd.virsh("undefine", name, check=False)


def test_attach_that_replaces_says_so_and_keeps_the_label(libvirtd, idle, seed):
    out = payloadhook(libvirtd, "attach", idle, "--type", "cdrom", "--label", "cidata", str(seed)).stdout
    assert out.startswith(f"attached cdrom payload (2 files, label cidata) to {idle} on hdc")
    (seed / "vendor-data").write_bytes(b"#cloud-config\n")
    out = payloadhook(libvirtd, "attach", idle, "--type", "cdrom", str(seed)).stdout
    assert out == (f"replaced cdrom payload on hdc of {idle} (3 files, label cidata): "
                   "label cidata kept (--label changes it); 2 files -> 3\n")
    assert "label cidata (cloud-init NoCloud), 3 files" in payloadhook(libvirtd, "show", idle).stdout
    out = payloadhook(libvirtd, "attach", idle, "--type", "cdrom", "--label", "config-2", str(seed)).stdout
    assert out == f"replaced cdrom payload on hdc of {idle} (3 files, label config-2): label cidata -> config-2\n"
    out = payloadhook(libvirtd, "attach", idle, "--type", "cdrom", "--label", "config-2", str(seed)).stdout
    assert out.endswith(": nothing changed\n")


def test_show_tells_the_next_start_from_the_running_domain(libvirtd, idle, seed):
    payloadhook(libvirtd, "attach", idle, "--type", "cdrom", "--label", "cidata", str(seed))
    libvirtd.virsh("start", idle)
    assert payloadhook(libvirtd, "show", idle).stdout.startswith("cdrom on hdc, label cidata (cloud-init NoCloud), 2 files")
    payloadhook(libvirtd, "detach", idle)
    shown = payloadhook(libvirtd, "show", idle).stdout
    assert shown.startswith(f"{idle}: the next start uses no payloads\n{idle}: running now with:\n"
                            "cdrom on hdc, label cidata (cloud-init NoCloud), 2 files")
    assert payloadhook(libvirtd, "show", "--inactive", idle).stdout == f"{idle}: no payloads\n"
    assert payloadhook(libvirtd, "show", "--live", idle).stdout.startswith("cdrom on hdc, label cidata")
    import json
    document = json.loads(payloadhook(libvirtd, "show", idle, "--json").stdout)
    assert document["payloads"] == [] and document["running"] is True
    (live,) = document["running_payloads"]
    assert (live["type"], live["target"], live["label"], live["sealed"]) == ("cdrom", "hdc", "cidata", False)
    assert [(f["name"], f["size"], f["sha256"]) for f in live["files"]] == \
        [(p, (seed / p).stat().st_size, digest) for p, digest in sums(seed).items()]


def test_show_json_and_list_json_are_documents_without_content(libvirtd, idle, guest, seed):
    import json
    name, _ = guest
    payloadhook(libvirtd, "attach", idle, "--type", "cdrom", "--label", "cidata", str(seed))
    payloadhook(libvirtd, "attach", idle, "--type", "floppy", str(seed / "user-data"))
    result = payloadhook(libvirtd, "show", idle, "--json")
    document = json.loads(result.stdout)          # the document alone on stdout
    assert set(document) == {"domain", "uuid", "running", "payloads"} and document["domain"] == idle
    assert [(p["type"], p["target"], p["label"], len(p["files"])) for p in document["payloads"]] == \
        [("cdrom", "hdc", "cidata", 2), ("floppy", "fda", "PAYLOAD", 1)]
    assert all(set(f) == {"name", "size", "sha256", "sealed"} for p in document["payloads"] for f in p["files"])
    listed = json.loads(payloadhook(libvirtd, "list", "--json").stdout)
    by_name = {d["domain"]: d for d in listed["domains"]}
    assert by_name[idle]["payloads"] == [
        {"type": "cdrom", "target": "hdc", "label": "cidata", "files": 2, "sealed": False},
        {"type": "floppy", "target": "fda", "label": "PAYLOAD", "files": 1, "sealed": False}]
    assert by_name[name]["payloads"] == [] and by_name[idle]["running"] is False
    table = payloadhook(libvirtd, "list").stdout
    assert "cdrom hdc cidata (2 files); floppy fda PAYLOAD (1 file)" in table
    result = payloadhook(libvirtd, "show", "no-such-domain", "--json", check=False)
    assert (result.returncode, result.stdout) == (3, "") and result.stderr.count("\n") == 1


def test_files_json_keeps_content_off_the_command_line(libvirtd, guest, seed):
    import base64
    import json
    name, boot = guest
    document = json.dumps({"files": [{"name": p, "content": base64.b64encode((seed / p).read_bytes()).decode()}
                                     for p in sorted(os.listdir(seed))]})
    result = subprocess.run([sys.executable, "-m", "payloadhook.cli", "-c", libvirtd.uri, "attach", name, "--type",
                             "cdrom", "--files-json", "-"], input=document, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = boot()
    assert report["files"][("sr0", "rock")] == sums(seed)


def test_check_gives_the_hooks_refusal_without_starting(libvirtd, guest, seed, workdir):
    name, _ = guest
    payloadhook(libvirtd, "attach", name, "--type", "cdrom", "--label", "cidata", str(seed))
    result = payloadhook(libvirtd, "check", name)
    assert result.stdout.startswith(f"{name}: cdrom payload on hdc (2 files, label cidata): ok")
    # a typo virsh define accepts: <pl:volumeid>
    xml = libvirtd.virsh("dumpxml", "--inactive", "--security-info", name).stdout
    typo = workdir / "typo.xml"
    typo.write_text(xml.replace("pl:volume_id>", "pl:volumeid>"))
    libvirtd.virsh("define", str(typo))
    result = payloadhook(libvirtd, "check", name, check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    reason = result.stderr.removeprefix("payloadhook: ").strip()
    assert "volumeid" in reason
    assert "running" not in libvirtd.virsh("domstate", name).stdout
    started = libvirtd.virsh("start", name, check=False)
    assert started.returncode != 0 and reason in started.stderr
