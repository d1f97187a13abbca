"""A private libvirtd for tests: its own mount namespace, hook directory and /run.

The daemon runs inside ``unshare -m`` with bind mounts over /etc/libvirt,
/var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and /etc/payloadhook, and
a tmpfs on /run, so nothing here touches the host's libvirt. Its sockets live in
a directory outside the namespace, so tests reach it with an ordinary URI
(``qemu:///system?socket=...``); what it sees under /run is visible to the tests
through ``/proc/PID/root``.

Every command run inside it goes through ``nsenter -m -u -r -w``: the namespace's mount table
and also its root and working directory. Without ``-r``, a harness that itself runs in a chroot
would land on the root of the host's mount namespace, and act on the host's libvirt. start()
checks that the daemon it reaches is the private one, and stop() leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from payloadhook.install import hook_script, import_path
from tests.harness.paths import LIBVIRT_CACHE, qemu_readable_dir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CommandError(subprocess.CalledProcessError):
    """A harness command (virsh, nsenter) failed: the message carries its standard error."""

    def __str__(self) -> str:
        detail = (self.stderr or "").strip() or (self.output or "").strip() or "no output"
        return f"{' '.join(map(str, self.cmd))} failed (status {self.returncode}): {detail}"


def run(argv: list[str], check: bool, **options) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, **options)
    if check and result.returncode != 0:
        raise CommandError(result.returncode, argv, result.stdout, result.stderr)
    return result


def mount_namespace(pid: int | str) -> tuple[int, int]:
    """The identity of a process's mount namespace ("self" for ours)."""
    info = os.stat(f"/proc/{pid}/ns/mnt")
    return info.st_dev, info.st_ino

START = r"""set -e
mount --make-rprivate /
mount --bind "$B/etc" /etc/libvirt
mkdir -p /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /etc/payloadhook
mount --bind "$B/lib" /var/lib/libvirt
mount --bind "$B/log" /var/log/libvirt
mount --bind "$CACHE" /var/cache/libvirt
# KVM does not work on the test machines although /dev/kvm exists: libvirt would then
# find "KVM usable" at every start, drop its capabilities cache and probe QEMU again
# (4 s a start). Hiding /dev/kvm from qemu's user makes TCG the stable answer.
if [ -e /dev/kvm ]; then : > "$B/nokvm"; chmod 600 "$B/nokvm"; mount --bind "$B/nokvm" /dev/kvm; fi
mount --bind "$B/payloadhook-etc" /etc/payloadhook
mount -t tmpfs -o mode=755 tmpfs /run
if [ -n "$NS_BUS" ]; then mkdir -p /run/dbus; ln -s "$NS_BUS" /run/dbus/system_bus_socket; fi
if [ -n "$NS_HOSTNAME" ]; then hostname "$NS_HOSTNAME"; fi
if [ -n "$NS_NET" ]; then
  # a network namespace of its own: loopback up, and a sysfs that shows its interfaces (the
  # bridges libvirt makes), the cgroup mounts moved over to it
  ip link set lo up
  mkdir -p "$B/cgroup"
  mount --rbind /sys/fs/cgroup "$B/cgroup"
  mount -t sysfs sysfs /sys
  mount --move "$B/cgroup" /sys/fs/cgroup
fi
virtlogd -d
libvirtd -d $LIBVIRTD_ARGS
exec sleep infinity
"""


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a migration test's daemon: fixed ports collide
    with another run of the tests on the same machine."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def install_hook(hook_dir: str, python: str = sys.executable) -> str:
    """Place hooks/qemu in ``hook_dir``/qemu.d as install-hook does, run by ``python``."""
    target_dir = os.path.join(hook_dir, "qemu.d")
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, "50-payloadhook")
    with open(target, "w") as stream:
        stream.write(hook_script(python, import_path(python)))
    os.chmod(target, 0o755)
    return target


def _host_domains(directory: str, names: list[str]) -> list[str]:
    """copytree's ignore: /etc/libvirt/qemu's domain definitions and autostart links."""
    if os.path.basename(directory) != "qemu" or os.path.dirname(directory) != "/etc/libvirt":
        return []
    return [name for name in names if name.endswith(".xml") or name == "autostart"]


class Libvirtd:
    def __init__(self, base: str | None = None, config: str = "", cache: str | None = None,
                 hostname: str | None = None, tcp_port: int | None = None, netns: bool = False,
                 system_bus: str | None = None):
        self.base = base or tempfile.mkdtemp(prefix="payloadhook-libvirtd-")
        # libvirt's cache of QEMU's capabilities: kept between runs, it saves a probe of QEMU
        self.cache = cache or LIBVIRT_CACHE
        os.chmod(self.base, 0o755)
        self.config = config
        self.process: subprocess.Popen | None = None
        #: A host of its own for migration tests: its own UTS namespace (hostname) and host UUID,
        #: and a TCP listener on 127.0.0.1 without authentication.
        self.hostname = hostname
        self.tcp_port = tcp_port
        #: A network namespace of its own (unshare -n): its networks, bridges, taps and firewall
        #: rules stay there, and no packet of its guests reaches the host's network.
        self.netns = netns
        #: A private system bus's socket (tests/harness/systembus.py), at /run/dbus/system_bus_socket
        #: in the namespace: where libvirtd asks polkit (Debian's auth_unix_ro), as on a host.
        self.system_bus = system_bus

    @property
    def socket_dir(self) -> str:
        return os.path.join(self.base, "sock")

    @property
    def uri(self) -> str:
        return f"qemu:///system?socket={self.socket_dir}/libvirt-sock"

    @property
    def tcp_uri(self) -> str:
        return f"qemu+tcp://127.0.0.1:{self.tcp_port}/system"

    @property
    def ro_uri(self) -> str:
        return f"qemu:///system?socket={self.socket_dir}/libvirt-sock-ro"

    @property
    def root(self) -> str:
        """The namespace's view of /, for looking at its /run."""
        return f"/proc/{self.process.pid}/root"

    def path(self, inside: str) -> str:
        return self.root + inside

    def start(self, hook: bool = True) -> Libvirtd:
        for sub in ("etc", "lib", "log", "sock", "payloadhook-etc"):
            os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        qemu_readable_dir(self.cache)
        # The host's configuration, but none of its domains: a daemon of its own starts empty,
        # whatever the host defined (the demo's vm1, say).
        shutil.copytree("/etc/libvirt", os.path.join(self.base, "etc"), dirs_exist_ok=True, symlinks=True,
                        ignore=_host_domains)
        with open(os.path.join(self.base, "etc", "libvirtd.conf"), "a") as stream:
            stream.write(f'\nunix_sock_dir = "{self.socket_dir}"\nunix_sock_rw_perms = "0700"\n')
            if self.hostname:
                import uuid
                stream.write(f'host_uuid = "{uuid.uuid5(uuid.NAMESPACE_DNS, self.hostname)}"\n')
            if self.tcp_port:
                stream.write(f'listen_tls = 0\nlisten_tcp = 1\ntcp_port = "{self.tcp_port}"\n'
                             f'listen_addr = "127.0.0.1"\nauth_tcp = "none"\n')
        with open(os.path.join(self.base, "etc", "qemu.conf"), "a") as stream:
            # qemu's private /dev would copy our bind mount over /dev/kvm, which the kernel refuses
            stream.write("\nnamespaces = []\n")
        with open(os.path.join(self.base, "payloadhook-etc", "payloadhook.conf"), "w") as stream:
            stream.write("[payloadhook]\n" + self.config)
        hooks = os.path.join(self.base, "etc", "hooks")
        shutil.rmtree(hooks, ignore_errors=True)
        os.makedirs(hooks)
        if hook:
            install_hook(hooks)
        env = {**os.environ, "B": self.base, "CACHE": self.cache, "NS_HOSTNAME": self.hostname or "",
               "LIBVIRTD_ARGS": "--listen" if self.tcp_port else "", "NS_NET": "1" if self.netns else "",
               "NS_BUS": self.system_bus or ""}
        self.process = subprocess.Popen(["unshare", "-m", "-u", *(["-n"] if self.netns else []), "sh", "-c", START],
                                        env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(self.socket_dir, "libvirt-sock")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("libvirtd did not start: " + self.process.stderr.read().decode(errors="replace"))
            time.sleep(0.05)
        self.virsh("version")  # the socket answers
        self.check_private()
        return self

    def check_private(self) -> None:
        """Refuse to go on unless the daemon answering on our socket is the private one: in the
        namespace (not ours), under our root, with a /run of its own."""
        holder = self.process.pid
        if mount_namespace(holder) == mount_namespace("self"):
            raise RuntimeError("the test libvirtd's namespace is the host's mount namespace")
        if os.stat(self.path("/run")).st_dev == os.stat("/run").st_dev:
            raise RuntimeError("the test libvirtd's /run is the host's /run")
        pid = self.daemon_pid("libvirtd")
        if pid is None:
            raise RuntimeError("the test libvirtd wrote no pid file in its own /run")
        if mount_namespace(pid) != mount_namespace(holder):
            raise RuntimeError(f"libvirtd {pid} of the pid file runs outside the test namespace")
        root, ours = os.stat(f"/proc/{pid}/root/"), os.stat(self.root + "/")
        if (root.st_dev, root.st_ino) != (ours.st_dev, ours.st_ino):
            raise RuntimeError(f"libvirtd {pid} runs under another root than the harness (a chroot entered "
                               "without nsenter -r?)")
        deadline = time.monotonic() + 10    # a daemon just restarted: its pid file and socket settle
        while not self.socket_inodes() & self.socket_inodes_of(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd {pid} does not hold {self.socket_dir}/libvirt-sock")
            time.sleep(0.1)
            pid = self.daemon_pid("libvirtd") or pid

    def socket_inodes(self) -> set[int]:
        """The inodes of the sockets listening on our libvirt-sock path (from /proc/PID/net/unix:
        flag __SO_ACCEPTCON; a connection accepted on that path shows the path too)."""
        path = os.path.join(self.socket_dir, "libvirt-sock")
        found = set()
        # the daemon's network namespace's table (in a namespace of its own, ours lists none of it)
        with open(f"/proc/{self.process.pid}/net/unix") as stream:
            for line in stream:
                fields = line.split()
                if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                    found.add(int(fields[6]))
        return found

    @staticmethod
    def socket_inodes_of(pid: int) -> set[int]:
        inodes: set[int] = set()
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:     # gone: it holds nothing
            return inodes
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
        return inodes

    def processes(self) -> list[int]:
        """Every process in the daemon's mount namespace but the one that holds it."""
        holder = self.process.pid
        namespace = mount_namespace(holder)
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == holder:
                continue
            try:
                if mount_namespace(entry) == namespace:
                    found.append(int(entry))
            except OSError:   # gone, or a zombie
                continue
        return found

    def virsh(self, *args: str, check: bool = True, ro: bool = False) -> subprocess.CompletedProcess:
        """virsh against this daemon; with check, a failure raises CommandError with virsh's stderr."""
        return run(["virsh", "-q", "-c", self.ro_uri if ro else self.uri, *args], check,
                   env={**os.environ, "LC_ALL": "C.UTF-8"})

    def nsenter(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command in the daemon's namespaces, under its root and in its working directory."""
        return run(self.nsenter_argv(*argv), check)

    def nsenter_argv(self, *argv: str) -> list[str]:
        """``argv`` run in the daemon's namespaces (its network one too, when it has one)."""
        return ["nsenter", "-t", str(self.process.pid), "-m", "-u", *(["-n"] if self.netns else []), "-r", "-w",
                "--", *argv]

    def kill_daemon(self, sig: int = signal.SIGTERM) -> None:
        pid = self.daemon_pid("libvirtd")
        os.kill(pid, sig)
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        if sig == signal.SIGKILL:   # a killed daemon leaves its pid file; a new one must not trip on it
            os.unlink(self.path("/run/libvirtd.pid"))

    def start_daemon(self) -> None:
        self.nsenter("libvirtd", "-d", *(["--listen"] if self.tcp_port else []))
        deadline = time.monotonic() + 30
        while (answer := self.virsh("version", check=False)).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd did not come back: {answer.stderr.strip()}")
            time.sleep(0.1)
        self.check_private()

    def daemon_pid(self, name: str) -> int | None:
        try:
            with open(self.path(f"/run/{name}.pid")) as stream:
                return int(stream.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop every domain, the daemons and whatever else runs in the namespace, even when
        the daemon no longer answers; raise when a process outlives it all."""
        if self.process is None:
            return
        self.destroy_domains()
        for name in ("libvirtd", "virtlogd"):
            pid = self.daemon_pid(name)
            if pid and pid in self.processes():
                os.kill(pid, signal.SIGTERM)
        survivors = self._wait_gone(self.processes(), 5)
        # what the daemon could not stop (QEMU after a failed restart, a dnsmasq): killed
        for pid in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        survivors = self._wait_gone(self.processes(), 10)
        self.process.kill()
        self.process.wait()
        self.process = None
        shutil.rmtree(self.base, ignore_errors=True)
        if survivors:
            raise RuntimeError(f"processes of the test libvirtd's namespace survived SIGKILL: {survivors}")

    def destroy_domains(self) -> None:
        """Destroy every running domain, by UUID: virsh takes an argument that looks like a
        UUID (or an id) for one, so a domain so named would be missed by its name."""
        for uuid in self.virsh("list", "--uuid", check=False).stdout.split():
            self.virsh("destroy", uuid, check=False)

    @staticmethod
    def _wait_gone(pids: list[int], timeout: float) -> list[int]:
        """Wait until none of ``pids`` runs (a zombie counts as ended); return those left."""
        deadline = time.monotonic() + timeout
        while True:
            left = []
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/stat") as stream:
                        state = stream.read().rsplit(")", 1)[1].split()[0]
                except (OSError, IndexError):
                    continue
                if state not in ("Z", "X"):
                    left.append(pid)
            if not left or time.monotonic() > deadline:
                return left
            pids = left
            time.sleep(0.05)
