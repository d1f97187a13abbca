"""The test harness's private libvirtd: no operation of it reaches the host's libvirt, and
stop() leaves nothing running, even when the daemon no longer answers."""

import os
import signal
import uuid

import libvirt
import pytest

from tests.harness.domains import domain, wait_state
from tests.harness.libvirtd import CommandError, Libvirtd, mount_namespace

pytestmark = pytest.mark.integration

HOST_LIBVIRT = ("/run/libvirt", "/var/log/libvirt")


def host_files() -> set[tuple[int, int]]:
    """(device, inode) of every file and directory of the host's libvirt runtime and logs."""
    found = set()
    for top in HOST_LIBVIRT:
        for directory, _, files in os.walk(top):
            for path in [directory, *(os.path.join(directory, f) for f in files)]:
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                found.add((info.st_dev, info.st_ino))
    return found


def open_files(pid: int) -> set[tuple[int, int]]:
    opened = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            info = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        opened.add((info.st_dev, info.st_ino))
    return opened


def qemu_pids(daemon: Libvirtd) -> list[int]:
    pids = []
    for pid in daemon.processes():
        try:
            with open(f"/proc/{pid}/comm") as stream:
                if stream.read().startswith("qemu-system"):
                    pids.append(pid)
        except OSError:
            continue
    return pids


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (one whose parent, gone, left it to init)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.fixture
def daemon():
    """A daemon of this test's own: these tests kill and restart it."""
    started = Libvirtd().start(hook=False)
    yield started
    started.stop()


def test_no_harness_operation_touches_the_host_libvirt(daemon, workdir):
    marker = f"payloadhook-harness-{uuid.uuid4()}"
    daemon.nsenter("sh", "-c", f"mkdir -p /run/libvirt /var/log/libvirt && touch /run/libvirt/{marker} "
                               f"/var/log/libvirt/{marker}")
    assert os.path.exists(daemon.path(f"/run/libvirt/{marker}"))
    assert os.path.exists(os.path.join(daemon.base, "log", marker))
    for top in HOST_LIBVIRT:
        assert not os.path.exists(os.path.join(top, marker))
    # the namespace's root and working directory are the harness's, whatever chroot it runs in
    root, ours = daemon.nsenter("stat", "-L", "-c", "%d:%i", "/").stdout.split(), os.stat("/")
    assert root == [f"{ours.st_dev}:{ours.st_ino}"]

    path = workdir / "ph-harness.xml"
    path.write_text(domain("ph-harness", []))
    daemon.virsh("define", str(path))
    daemon.virsh("start", "ph-harness")
    daemon.kill_daemon(signal.SIGKILL)
    daemon.start_daemon()                 # through nsenter: the restart the chroot case got wrong
    wait_state(daemon, "ph-harness", "running")

    assert mount_namespace(daemon.process.pid) != mount_namespace("self")
    assert os.stat(daemon.path("/run")).st_dev != os.stat("/run").st_dev
    with open(f"/proc/{daemon.daemon_pid('libvirtd')}/mountinfo") as stream:
        run_mounts = [line.split(" - ")[1].split()[0] for line in stream if line.split()[4] == "/run"]
    assert run_mounts[-1] == "tmpfs"
    processes = daemon.processes()
    assert daemon.daemon_pid("libvirtd") in processes and qemu_pids(daemon)
    host = host_files()
    for pid in processes:
        assert not open_files(pid) & host, f"process {pid} of the test namespace holds a host libvirt file"
    daemon.stop()                         # and stopping it leaves the host's libvirt as it was
    assert not [f for top in HOST_LIBVIRT for _, _, files in os.walk(top) for f in files if marker in f]


def test_stop_leaves_no_qemu_after_a_failed_restart(daemon, workdir):
    path = workdir / "ph-orphan.xml"
    path.write_text(domain("ph-orphan", []))
    daemon.virsh("define", str(path))
    daemon.virsh("start", "ph-orphan")
    (qemu,) = qemu_pids(daemon)
    daemon.kill_daemon(signal.SIGKILL)    # and no restart: nobody answers on the socket any more
    assert running(qemu)
    daemon.stop()
    assert not running(qemu)


def test_stop_destroys_a_domain_named_like_another_domains_uuid(daemon, workdir):
    """virsh looks an argument that looks like a UUID up as a UUID first: `destroy NAME` of a
    domain named after another one's UUID hits the other. stop() destroys by UUID."""
    (workdir / "named.xml").write_text(domain("ph-named", []))
    daemon.virsh("define", str(workdir / "named.xml"))
    twin = daemon.virsh("domuuid", "ph-named").stdout.strip()
    (workdir / "twin.xml").write_text(domain(twin, []))
    daemon.virsh("define", str(workdir / "twin.xml"))
    connection = libvirt.open(daemon.uri)   # virsh itself could not start the twin by its name
    connection.lookupByName(twin).create()
    connection.lookupByName("ph-named").create()
    assert len(daemon.virsh("list", "--uuid").stdout.split()) == 2
    daemon.destroy_domains()
    assert daemon.virsh("list", "--uuid").stdout.split() == []


def test_virsh_errors_carry_virsh_stderr(daemon):
    with pytest.raises(CommandError) as caught:
        daemon.virsh("domstate", "ph-no-such-domain")
    assert "ph-no-such-domain" in str(caught.value) and "virsh" in str(caught.value)
    assert "failed to get domain" in str(caught.value).lower() or "not found" in str(caught.value).lower()


def test_the_private_daemon_starts_without_the_hosts_domains():
    """The host's /etc/libvirt is copied for its configuration; its domain definitions (the
    demo's vm1, say) and autostart links are not."""
    from tests.harness.libvirtd import _host_domains
    assert _host_domains("/etc/libvirt/qemu", ["vm1.xml", "networks", "autostart", "x.conf"]) == ["vm1.xml", "autostart"]
    assert _host_domains("/etc/libvirt/qemu/networks", ["default.xml"]) == []
    assert _host_domains("/etc/libvirt", ["qemu.conf", "libvirtd.conf"]) == []
