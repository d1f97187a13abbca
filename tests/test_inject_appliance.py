"""payloadhook inject through libguestfs's appliance, against a real libvirtd, read back by
tools that are not libguestfs: a NoCloud seed in an ext4 qcow2 (debugfs), an answer file in
an NTFS Windows tree (ntfscat), inject --remove taking them out (or leaving what the guest
changed), and the refusals that only the guest's file system can tell.

Each appliance launch takes 20-60 s under TCG: the module makes six, each serving several
checks (module-scoped fixtures, tests in order)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from payloadhook.errors import GuestError
from payloadhook.inject import paths
from payloadhook.inject.appliance import Appliance
from payloadhook.inject.guest import Guest
from tests.conftest import MARKER
from tests.harness.guestimages import (
    as_raw,
    debugfs,
    debugfs_cat,
    debugfs_tree,
    linux_qcow2,
    ntfs_cat,
    ntfs_put,
    sha256,
    windows_raw,
)

pytestmark = [pytest.mark.integration, pytest.mark.appliance]

SEED = "/var/lib/cloud/seed/nocloud"
USER_DATA = b"#cloud-config\nruncmd: [echo " + MARKER.encode() + b"]\n"
ANSWER = (b'<?xml version="1.0" encoding="utf-8"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend">'
          b"<!-- " + MARKER.encode() + b" --></unattend>\n")


class Host:
    """A directory for the module's disks, and the command with a key directory of its own."""

    def __init__(self, daemon, root):
        self.daemon = daemon
        self.dir = tempfile.mkdtemp(dir=root)
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "command.conf")
        keys = os.path.join(self.dir, "keys")
        with open(self.conf, "w") as stream:
            stream.write(f"[payloadhook]\nkey_dir = {keys}\ninject_record_dir = {self.dir}/injected\n")

    def path(self, name):
        return os.path.join(self.dir, name)

    def command(self, *argv, check=True):
        result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", self.daemon.uri, *argv],
                                capture_output=True, text=True,
                                env={**os.environ, "LC_ALL": "C", "PAYLOADHOOK_CONF": self.conf})
        assert MARKER not in result.stdout + result.stderr
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def define(self, name, disk_xml, metadata=""):
        xml = f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory>{metadata}
  <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{disk_xml}</devices></domain>"""
        path = self.path(name + ".xml")
        with open(path, "w") as stream:
            stream.write(xml)
        self.daemon.virsh("define", path)
        return name

    def record_of(self, name):
        return json.loads(self.command("show", name, "--json").stdout).get("injected", [])


def disk_xml(source, fmt, target, bus):
    return (f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/><source file='{source}'/>"
            f"<target dev='{target}' bus='{bus}'/></disk>")


# -- a Linux guest: a NoCloud seed, sealed record ---------------------------------------------

@pytest.fixture(scope="module")
def linux(libvirtd, qemu_work_root):
    host = Host(libvirtd, qemu_work_root)
    image = linux_qcow2(host.dir)
    host.before = debugfs_tree(as_raw(image, host.path("before.raw")), host.path("before"))
    host.image = image
    host.command("key", "new")      # the record is sealed, as attach seals: the host has a key
    (user_data := host.path("user-data"))
    with open(user_data, "wb") as stream:
        stream.write(USER_DATA)
    host.name = host.define("inj-linux", disk_xml(image, "qcow2", "vda", "virtio"), forged_record(image, host))
    host.injected = host.command("inject", host.name, "--cloud-init", f"user-data={user_data}")
    host.uuid = libvirtd.virsh("domuuid", host.name).stdout.strip()
    yield host
    libvirtd.virsh("undefine", host.name, check=False)


def forged_record(image, host):
    """A <pl:injected> as anyone who may define the domain can write it: system directories and
    a public file by its public hash. inject carries none of it forward (this host's inject did
    not write it), so --remove leaves them."""
    from payloadhook.domain.metadata import NAMESPACE
    os_release = debugfs_cat(as_raw(image, host.path("forged.raw")), "/etc/os-release")
    return (f"<metadata><pl:payloads xmlns:pl='{NAMESPACE}'><pl:injected disk='vda' when='2026-12-01T12:00:00Z'>"
            "<pl:directory path='/usr/bin'/><pl:directory path='/var/lib'/>"
            f"<pl:file path='/etc/os-release' size='{len(os_release)}' "
            f"sha256='{hashlib.sha256(os_release).hexdigest()}'/></pl:injected></pl:payloads></metadata>")


def meta_data(host):
    return f'instance-id: "{host.uuid}"\nlocal-hostname: "inj-linux"\n'.encode()


def test_the_nocloud_seed_is_in_the_guest_as_debugfs_reads_it(linux):
    assert linux.injected.stdout.startswith(f"injected 2 files ({len(USER_DATA) + len(meta_data(linux))} bytes) "
                                            f"into '{SEED}' on disk vda of inj-linux, recorded sealed")
    raw = as_raw(linux.image, linux.path("after.raw"))
    assert debugfs_cat(raw, SEED + "/user-data") == USER_DATA
    assert debugfs_cat(raw, SEED + "/meta-data") == meta_data(linux)
    listing = debugfs(raw, f"ls -l {SEED}").decode()
    assert ".payloadhook-" not in listing and "user-data" in listing
    stat = debugfs(raw, f"stat {SEED}/user-data").decode()
    assert "Mode:  0600" in stat and "User:     0" in stat


def test_show_lists_paths_and_sizes_and_no_hash_of_a_sealed_file(linux):
    (record,) = linux.record_of(linux.name)
    assert record["disk"] == "vda" and record["volume"] is None
    assert {f["path"]: (f["size"], f["sha256"], f["sealed"]) for f in record["files"]} == {
        SEED + "/user-data": (len(USER_DATA), None, True), SEED + "/meta-data": (len(meta_data(linux)), None, True)}
    assert record["directories"] == ["/var/lib/cloud", "/var/lib/cloud/seed", SEED]
    text = linux.command("show", linux.name).stdout
    assert f"{SEED}/user-data" in text and "sealed (key" in text
    assert [line.split()[-1] for line in text.splitlines() if "directory made by inject" in line] == [
        "/var/lib/cloud", "/var/lib/cloud/seed", SEED]
    assert "/usr/bin" not in text and "/etc/os-release" not in text
    xml = linux.daemon.virsh("dumpxml", "--inactive", linux.name).stdout
    assert hashlib.sha256(USER_DATA).hexdigest() not in xml and "<pl:injected" in xml


def test_inject_remove_takes_the_files_out_and_leaves_everything_else_byte_for_byte(linux):
    result = linux.command("inject", "--remove", linux.name)
    assert result.stdout.strip() == (
        f"removed 2 injected files ('{SEED}/user-data', '{SEED}/meta-data') from disk vda of inj-linux; "
        f"removed the directories inject made: '{SEED}', '/var/lib/cloud/seed', '/var/lib/cloud'")
    after = debugfs_tree(as_raw(linux.image, linux.path("removed.raw")), linux.path("removed"))
    assert after == linux.before
    assert linux.record_of(linux.name) == []


def test_a_target_directory_that_cannot_be_made_leaves_the_disk_untouched(linux):
    before = sha256(linux.image)
    with open(linux.path("x"), "w") as stream:
        stream.write("x")
    result = linux.command("inject", linux.name, "--into", "/etc/fstab/app", linux.path("x"), check=False)
    assert result.returncode == 1
    assert result.stderr == "payloadhook: '/etc/fstab' in the guest is not a directory, so nothing can be put " \
                            "under it\n"
    assert sha256(linux.image) == before and linux.record_of(linux.name) == []


def test_a_launch_that_does_not_come_up_within_its_bound_is_one_line(linux):
    before = sha256(linux.image)
    result = linux.command("inject", linux.name, "--launch-timeout", "1", "--into", "/etc/app", linux.path("x"),
                           check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("payloadhook: libguestfs's appliance did not come up within 1 s")
    assert len(result.stderr.splitlines()) == 1
    assert sha256(linux.image) == before and linux.record_of(linux.name) == []


# -- a Windows guest: the answer file, found by inspection --------------------------------------

@pytest.fixture(scope="module")
def windows(libvirtd, qemu_work_root):
    host = Host(libvirtd, qemu_work_root)
    host.image = windows_raw(host.dir)
    with open(host.path("unattend.xml"), "wb") as stream:
        stream.write(ANSWER)
    host.name = host.define("inj-win", disk_xml(host.image, "raw", "sda", "sata"))
    host.injected = host.command("inject", host.name, "--no-seal", "--sysprep", host.path("unattend.xml"))
    yield host
    libvirtd.virsh("undefine", host.name, check=False)


def test_sysprep_writes_windows_panther_unattend_xml(windows):
    assert windows.injected.stdout.startswith("injected 1 file (") and "'/Windows/Panther'" in windows.injected.stdout
    assert ntfs_cat(windows.image, "/Windows/Panther/unattend.xml", windows.path("v.ntfs")) == ANSWER
    assert ntfs_cat(windows.image, "/Users/Default/notes.txt", windows.path("v.ntfs")) == b"keep me\n"
    (record,) = windows.record_of(windows.name)
    assert record["files"] == [{"path": "/Windows/Panther/unattend.xml", "size": len(ANSWER),
                                "sha256": hashlib.sha256(ANSWER).hexdigest(), "sealed": False, "key": None}]


def test_remove_leaves_a_file_the_guest_changed_and_says_so(windows):
    changed = windows.path("changed.xml")
    with open(changed, "wb") as stream:
        stream.write(ANSWER.replace(b"<!--", b"<!-- edited by the guest"))
    ntfs_put(windows.image, changed, "/Windows/Panther/unattend.xml", windows.path("v.ntfs"))
    result = windows.command("inject", "--remove", windows.name)
    assert result.stdout.strip() == (
        "removed 0 injected files from disk sda of inj-win; left 1 the guest changed, kept on record: "
        "'/Windows/Panther/unattend.xml' (changed since it was injected); kept directories that are not empty: "
        "'/Windows/Panther'")
    with open(changed, "rb") as stream:
        assert ntfs_cat(windows.image, "/Windows/Panther/unattend.xml", windows.path("v.ntfs")) == stream.read()
    (record,) = windows.record_of(windows.name)      # what was left stays on record, for a later --remove
    assert [f["path"] for f in record["files"]] == ["/Windows/Panther/unattend.xml"]
    assert record["directories"] == ["/Windows/Panther"]


# -- what only the guest's file systems can refuse: one launch, several disks ------------------

@pytest.fixture(scope="module")
def several(qemu_work_root):
    directory = tempfile.mkdtemp(dir=qemu_work_root)
    disks = [windows_raw(directory), linux_qcow2(directory, "one"), linux_qcow2(directory, "two"),
             os.path.join(directory, "blank.raw"), os.path.join(directory, "btrfs.raw")]
    subprocess.run(["truncate", "-s", "16M", disks[3]], check=True)
    os.makedirs(os.path.join(directory, "btrfs-tree", "etc"))
    with open(os.path.join(directory, "btrfs-tree", "etc", "hostname"), "w") as stream:
        stream.write("btrfs\n")
    subprocess.run(["truncate", "-s", "128M", disks[4]], check=True)
    subprocess.run(["mkfs.btrfs", "-q", "--rootdir", os.path.join(directory, "btrfs-tree"), disks[4]], check=True)
    hashes = [sha256(d) for d in disks]
    app = Appliance(600)
    for index, (disk, fmt) in enumerate(zip(disks, ("raw", "qcow2", "qcow2", "raw", "raw"))):
        app.add(f"sd{'abcde'[index]}", disk, fmt, writable=index == 0)
    app.launch()
    yield app, disks, hashes, directory
    shutil.rmtree(directory, ignore_errors=True)


def test_several_operating_systems_and_no_disk_named_are_refused(several):
    app = several[0]
    with pytest.raises(GuestError, match="^3 operating systems found on the domain's disks; give --disk TARGET"):
        Guest(app, 0, "sda").locate_os(disk_named=False)
    with pytest.raises(GuestError, match="^no operating system found on disk sdd"):
        Guest(app, 3, "sdd").locate_os(disk_named=True)
    with pytest.raises(GuestError, match="^disk sdd holds no file system"):
        Guest(app, 3, "sdd").locate_volume(0)


def test_guest_links_files_in_the_way_and_existing_files_are_refused(several):
    guest = Guest(several[0], 1, "sdb")
    guest.locate_volume(0)
    with pytest.raises(GuestError, match="^'/etc/evil' is a symbolic link in the guest"):
        guest.plan(paths.components("/etc/evil/sub"), [("x", b"")])
    with pytest.raises(GuestError, match="^'/etc/fstab' in the guest is not a directory"):
        guest.plan(paths.components("/etc/fstab"), [("x", b"")])
    with pytest.raises(GuestError, match="^'/home/u/notes' exists in the guest already"):
        guest.plan(paths.components("/home/u"), [("notes", b"")])


def test_a_btrfs_volume_is_checked_on_a_mount_that_replays_no_log(several):
    """btrfs's plain read-only mount replays its log tree onto the disk; the checks' mount
    (ro,rescue=nologreplay) does not, and the kernel of the appliance takes it."""
    guest = Guest(several[0], 4, "sde")
    guest.locate_volume(0)
    assert list(several[0].g.mountpoints().values()) == ["/"]
    with pytest.raises(GuestError, match="^'/etc/hostname' exists in the guest already"):
        guest.plan(paths.components("/etc"), [("hostname", b"")])


def test_a_named_volume_and_directory_on_ntfs_match_names_without_case(several):
    app, disks, hashes, directory = several
    guest = Guest(app, 0, "sda")
    located = guest.locate_volume(1)
    assert located.windows
    plan = guest.plan(paths.components("/windows/Setup/Scripts"), [("SetupComplete.cmd", b"echo hi\r\n")])
    assert plan.files[0].path == "/Windows/Setup/Scripts/SetupComplete.cmd"
    guest.write(plan, 0o600, (0, 0))
    app.finish()
    assert ntfs_cat(disks[0], "/Windows/Setup/Scripts/SetupComplete.cmd", os.path.join(directory, "v")) == \
        b"echo hi\r\n"
    assert [sha256(d) for d in disks[1:]] == hashes[1:]     # the disks added read-only are as they were
