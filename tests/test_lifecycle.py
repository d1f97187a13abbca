"""Every path through a domain's life: save/restore, managedsave, daemon restarts, crashes, gc.

The guest here re-reads its CD-ROM and floppy every second (payloadtest.loop=1) and prints
the checksums of each pass; after a restore, the passes that follow must still be right.
"""

import hashlib
import os
import signal
import sys
import time

import pytest

from payloadhook.model import Payload, PayloadFile
from tests.conftest import MARKER
from tests.harness.domains import IMAGE_DIR, disk, domain, images_of
from tests.harness.tinyguest import parse_console, round_text

pytestmark = pytest.mark.integration

CD = Payload(type="cdrom", volume_id="cidata", files=(
    PayloadFile("meta-data", b"instance-id: " + MARKER.encode() + b"\n"), PayloadFile("user-data", b"#cloud-config\n")))
FD = Payload(type="floppy", files=(PayloadFile("Unattend.xml", b"<unattend/>\n"),))
EXPECTED = {("sr0", "rock"): {f.name: hashlib.sha256(f.content).hexdigest() for f in CD.files},
            ("fd0", "vfat"): {f.name: hashlib.sha256(f.content).hexdigest() for f in FD.files}}


def wait_round(console, after: int, timeout=120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rounds = parse_console(console.read_text(errors="replace"))["rounds"] if console.exists() else 0
        if rounds > after:
            return rounds
        time.sleep(0.5)
    raise AssertionError(f"the guest printed no pass after {after}")


def wait_whole_pass(console, after: int) -> int:
    """A pass after ``after`` that the console holds whole: libvirt reopens (truncates) the
    console file when QEMU starts again, so the first pass seen there may be cut."""
    return wait_round(console, wait_round(console, after))


def pass_report(console, round_number):
    report = parse_console(round_text(console.read_text(errors="replace"), round_number))
    return {key: value for key, value in report["files"].items() if key in EXPECTED}


def define_looping_guest(daemon, workdir, guest_kernel, name):
    """Define a guest with the CD and FD payloads that re-reads them every second; return its console."""
    console = workdir / "console.log"
    path = workdir / "guest.xml"
    path.write_text(domain(name, [disk("cdrom", "hdc", f"{IMAGE_DIR}/{name}-hdc.iso"),
                                  disk("floppy", "fda", f"{IMAGE_DIR}/{name}-fda.img")], [CD, FD],
                           kernel=guest_kernel, console=str(console), devs="sr0,fd0", loop=True))
    daemon.virsh("define", str(path))
    return console


@pytest.fixture
def looping_guest(libvirtd, workdir, guest_kernel, request):
    name = "ph-life-" + request.node.name[5:25].replace("_", "-")
    console = define_looping_guest(libvirtd, workdir, guest_kernel, name)
    yield name, console
    libvirtd.virsh("destroy", name, check=False)
    libvirtd.virsh("managedsave-remove", name, check=False)
    libvirtd.virsh("undefine", name, check=False)


def assert_stops_and_resumes(libvirtd, name, console, stop, resume):
    """``stop`` ends QEMU and keeps the guest's state: release removes the images. ``resume``
    brings the guest back: prepare builds them again, and its next whole pass reads right.
    A destroy then removes them."""
    libvirtd.virsh(*stop)
    assert images_of(libvirtd, name) == []        # QEMU stopped: release ran
    last = parse_console(console.read_text(errors="replace"))["rounds"]
    libvirtd.virsh(*resume)
    assert len(images_of(libvirtd, name)) == 2    # the prepare before QEMU built them again
    assert pass_report(console, wait_whole_pass(console, last)) == EXPECTED
    libvirtd.virsh("destroy", name)
    assert images_of(libvirtd, name) == []


def test_save_and_restore(libvirtd, workdir, looping_guest):
    name, console = looping_guest
    libvirtd.virsh("start", name)
    first = wait_round(console, 0)
    assert pass_report(console, first) == EXPECTED
    saved = str(workdir / "saved.img")
    assert_stops_and_resumes(libvirtd, name, console, ("save", name, saved), ("restore", saved))


def test_managedsave_then_start(libvirtd, looping_guest):
    name, console = looping_guest
    libvirtd.virsh("start", name)
    wait_round(console, 0)
    assert_stops_and_resumes(libvirtd, name, console, ("managedsave", name), ("start", name))


def test_libvirtd_restart_under_running_domains(libvirtd, looping_guest):
    name, console = looping_guest
    libvirtd.virsh("start", name)
    inodes = {f: os.stat(libvirtd.path(f"{IMAGE_DIR}/{f}")).st_ino for f in images_of(libvirtd, name)}
    libvirtd.kill_daemon(signal.SIGTERM)
    libvirtd.start_daemon()                        # reconnect: nothing rebuilt, nothing deleted
    assert libvirtd.virsh("domstate", name).stdout.strip() == "running"
    assert {f: os.stat(libvirtd.path(f"{IMAGE_DIR}/{f}")).st_ino for f in images_of(libvirtd, name)} == inodes
    assert pass_report(console, wait_whole_pass(console, 0)) == EXPECTED
    libvirtd.virsh("destroy", name)
    assert images_of(libvirtd, name) == []


def test_crash_leaves_stale_images_that_gc_removes(libvirtd, looping_guest):
    """libvirtd and QEMU killed, libvirt's own state lost (as when image_dir outlives a host crash)."""
    name, console = looping_guest
    libvirtd.virsh("start", name)
    qemu_pid = int(open(libvirtd.path(f"/run/libvirt/qemu/{name}.pid")).read())
    libvirtd.kill_daemon(signal.SIGKILL)
    os.kill(qemu_pid, signal.SIGKILL)
    libvirtd.nsenter("sh", "-c", f"rm -f /run/libvirt/qemu/{name}.*")
    libvirtd.start_daemon()
    assert libvirtd.virsh("domstate", name).stdout.strip() == "shut off"
    assert len(images_of(libvirtd, name)) == 2     # stale: nobody released them

    def gc(*args):
        # gc runs on the host: inside the namespace, its image_dir is the daemon's /run/payloadhook
        return libvirtd.nsenter(sys.executable, "-m", "payloadhook.cli", "-c", libvirtd.uri, "gc", *args)

    assert f"would remove {IMAGE_DIR}/{name}-hdc.iso, {IMAGE_DIR}/{name}-fda.img of {name}" in gc("--dry-run").stdout
    assert len(images_of(libvirtd, name)) == 2
    assert f"removed {IMAGE_DIR}/{name}-hdc.iso, {IMAGE_DIR}/{name}-fda.img of {name}" in gc().stdout
    assert images_of(libvirtd, name) == []
    assert gc().stdout.strip() == "nothing to remove"
    libvirtd.virsh("start", name)                  # a new start works
    assert pass_report(console, wait_whole_pass(console, 0)) == EXPECTED
