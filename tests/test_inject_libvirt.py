"""inject's refusals through a real libvirtd, each before the appliance is launched and each
leaving the disk as it was (its SHA-256) and the definition without a record: a running, a
paused domain, one with a managed save image, a disk another running domain uses, and a disk
another process (a QEMU: qemu-io) holds open."""

import os
import subprocess
import sys
import tempfile
import time

import pytest

from tests.harness.domains import defined, wait_state
from tests.harness.guestimages import linux_qcow2, sha256

pytestmark = pytest.mark.integration


def qcow2_disk(source: str, target: str = "vda") -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{source}'/>"
            f"<target dev='{target}' bus='virtio'/></disk>")


def inject(daemon, *argv):
    result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", daemon.uri, "inject", *argv],
                            capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    return result


@pytest.fixture(scope="module")
def image(qemu_work_root):
    directory = tempfile.mkdtemp(dir=qemu_work_root)
    os.chmod(directory, 0o755)
    return linux_qcow2(directory)


def assert_refused(daemon, name, image, before, fragment, tmp_path):
    (tmp_path / "user-data").write_text("#cloud-config\n")
    result = inject(daemon, name, "--no-seal", "--cloud-init", f"user-data={tmp_path / 'user-data'}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert fragment in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert sha256(image) == before
    assert "injected" not in daemon.virsh("dumpxml", "--inactive", name).stdout


def test_a_domain_that_is_not_shut_off_is_refused(libvirtd, workdir, image, tmp_path):
    before = sha256(image)
    with defined(libvirtd, workdir, "inj-state", [qcow2_disk(image)]) as name:
        libvirtd.virsh("start", name)
        wait_state(libvirtd, name, "running")
        assert_refused(libvirtd, name, image, before, "is running; inject writes only", tmp_path)
        libvirtd.virsh("suspend", name)
        assert_refused(libvirtd, name, image, before, "is paused", tmp_path)
        libvirtd.virsh("resume", name)
        libvirtd.virsh("managedsave", name)
        wait_state(libvirtd, name, "shut off")
        assert_refused(libvirtd, name, image, before, "has a managed save image", tmp_path)
        libvirtd.virsh("managedsave-remove", name)


def test_a_disk_another_running_domain_uses_is_refused(libvirtd, workdir, image, tmp_path):
    before = sha256(image)
    with defined(libvirtd, workdir, "inj-user", [qcow2_disk(image)]) as user, \
            defined(libvirtd, workdir, "inj-other", [qcow2_disk(image)]) as other:
        libvirtd.virsh("start", user)
        wait_state(libvirtd, user, "running")
        assert_refused(libvirtd, other, image, before, "is in use by the running domain inj-user", tmp_path)


def test_a_disk_another_process_holds_open_is_refused(libvirtd, workdir, image, tmp_path):
    before = sha256(image)
    with defined(libvirtd, workdir, "inj-locked", [qcow2_disk(image)]) as name:
        holder = subprocess.Popen(["qemu-io", "-f", "qcow2", image], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not any(os.path.realpath(f"/proc/{holder.pid}/fd/{fd}") == os.path.realpath(image)
                          for fd in os.listdir(f"/proc/{holder.pid}/fd")):
                assert time.monotonic() < deadline, "qemu-io did not open the image"
                time.sleep(0.1)
            time.sleep(0.5)     # its locks follow the open
            assert_refused(libvirtd, name, image, before, "is locked by another process", tmp_path)
        finally:
            holder.stdin.close()
            holder.wait(30)


def command(daemon, tmp_path, *argv):
    """The command with a configuration of its own: this host's injection records in tmp_path."""
    conf = tmp_path / "command.conf"
    conf.write_text(f"[payloadhook]\nkey_dir = {tmp_path / 'keys'}\ninject_record_dir = {tmp_path / 'injected'}\n")
    return subprocess.run([sys.executable, "-m", "payloadhook", "-c", daemon.uri, *argv], capture_output=True,
                          text=True, env={**os.environ, "LC_ALL": "C", "PAYLOADHOOK_CONF": str(conf)})


def test_a_record_written_by_hand_removes_nothing(libvirtd, workdir, image, tmp_path):
    """Anyone who may define the domain can write a <pl:injected>; naming public files by their
    public hashes (/etc/os-release) and system directories must not make inject --remove delete
    them: it acts only on what this host's own record of the injection also names."""
    from payloadhook.domain.metadata import NAMESPACE
    from tests.harness.guestimages import as_raw, debugfs_cat
    os_release = debugfs_cat(as_raw(image, str(tmp_path / "image.raw")), "/etc/os-release")
    import hashlib
    forged = (f"<metadata><pl:payloads xmlns:pl='{NAMESPACE}'><pl:injected disk='vda' when='2026-12-01T12:00:00Z'>"
              "<pl:directory path='/usr/bin'/><pl:directory path='/var/lib'/>"
              f"<pl:file path='/etc/os-release' size='{len(os_release)}' "
              f"sha256='{hashlib.sha256(os_release).hexdigest()}'/></pl:injected></pl:payloads></metadata>")
    before = sha256(image)
    xml = tmp_path / "forged.xml"
    xml.write_text(f"<domain type='qemu'><name>inj-forged</name><memory unit='MiB'>256</memory>{forged}"
                   "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
                   f"<devices>{qcow2_disk(image)}</devices></domain>")
    libvirtd.virsh("define", str(xml))
    try:
        result = command(libvirtd, tmp_path, "inject", "--remove", "inj-forged")
        assert result.returncode == 1, result.stdout + result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "inject did not write on this host" in result.stderr and "nothing removed" in result.stderr
        assert "'/etc/os-release'" in result.stderr
        assert sha256(image) == before
        assert "injected" in libvirtd.virsh("dumpxml", "--inactive", "inj-forged").stdout    # left as it was
    finally:
        libvirtd.virsh("undefine", "inj-forged", check=False)


def test_a_block_device_the_host_has_mounted_is_refused(libvirtd, workdir, tmp_path):
    """A device mounted on the host (or a partition of it) is claimed by its file system: inject
    opens a block source exclusively, and refuses it with the device untouched."""
    raw = str(tmp_path / "hostfs.raw")
    subprocess.run(["truncate", "-s", "32M", raw], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", raw], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", raw], capture_output=True, text=True,
                          check=True).stdout.strip()
    mount = tmp_path / "mnt"
    mount.mkdir()
    disk = (f"<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='{loop}'/>"
            "<target dev='vda' bus='virtio'/></disk>")
    try:
        subprocess.run(["mount", loop, str(mount)], check=True)
        try:
            (tmp_path / "f").write_text("x\n")
            with defined(libvirtd, workdir, "inj-mounted", [disk]) as name:
                result = command(libvirtd, tmp_path, "inject", name, "--volume", "0", "--no-seal",
                                 "--into", "/planted", f"f={tmp_path / 'f'}")
                assert result.returncode == 1, result.stdout + result.stderr
                assert "is in use on the host" in result.stderr and len(result.stderr.splitlines()) == 1
                assert "injected" not in libvirtd.virsh("dumpxml", "--inactive", name).stdout
        finally:
            subprocess.run(["umount", str(mount)], check=True)
        listing = subprocess.run(["debugfs", "-R", "ls /", raw], capture_output=True, text=True).stdout
        assert "planted" not in listing
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)



def test_a_disk_and_its_partition_are_one_disk_to_the_shared_disk_check(tmp_path):
    """/dev/sdb and /dev/sdb1 share bytes; two partitions of one disk, or two disks, do not;
    a whole disk is its own whole disk as sysfs tells (a loop device here: this machine's
    loop devices scan no partitions, so partitions are given by their device numbers)."""
    from payloadhook.inject import guard
    raw = str(tmp_path / "disk.raw")
    subprocess.run(["truncate", "-s", "16M", raw], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", raw], capture_output=True, text=True,
                          check=True).stdout.strip()
    try:
        rdev = os.stat(loop).st_rdev
        assert guard._identity(loop) == (True, rdev, rdev)
        assert not guard._overlap(guard._identity(raw), guard._identity(loop))     # a file is not a device
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
    sdb, sdb1, sdb2, sdc = os.makedev(8, 16), os.makedev(8, 17), os.makedev(8, 18), os.makedev(8, 32)
    disk, one, two, other = (True, sdb, sdb), (True, sdb, sdb1), (True, sdb, sdb2), (True, sdc, sdc)
    assert guard._overlap(disk, one) and guard._overlap(one, disk) and guard._overlap(one, one)
    assert not guard._overlap(one, two) and not guard._overlap(disk, other)
