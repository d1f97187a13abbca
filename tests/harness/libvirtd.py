"""A private libvirtd for tests: its own mount namespace, hook directory and /run.

The daemon runs inside ``unshare -m`` with bind mounts over /etc/libvirt,
/var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and /etc/payloadhook, and
a tmpfs on /run, so nothing here touches the host's libvirt. Its sockets live in
a directory outside the namespace, so tests reach it with an ordinary URI
(``qemu:///system?socket=...``); what it sees under /run is visible to the tests
through ``/proc/PID/root``.
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

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
if [ -n "$NS_HOSTNAME" ]; then hostname "$NS_HOSTNAME"; fi
virtlogd -d
libvirtd -d $LIBVIRTD_ARGS
exec sleep infinity
"""


def install_hook(hook_dir: str, python: str = sys.executable) -> str:
    """Place hooks/qemu in ``hook_dir``/qemu.d as install-hook does, run by ``python``."""
    target_dir = os.path.join(hook_dir, "qemu.d")
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, "50-payloadhook")
    with open(target, "w") as stream:
        stream.write(hook_script(python, import_path(python)))
    os.chmod(target, 0o755)
    return target


class Libvirtd:
    def __init__(self, base: str | None = None, config: str = "", cache: str | None = None,
                 hostname: str | None = None, tcp_port: int | None = None):
        self.base = base or tempfile.mkdtemp(prefix="payloadhook-libvirtd-")
        # libvirt's cache of QEMU's capabilities: kept between runs, it saves a probe of QEMU
        self.cache = cache or os.path.join(REPO, ".cache", "libvirt")
        os.chmod(self.base, 0o755)
        self.config = config
        self.process: subprocess.Popen | None = None
        #: A host of its own for migration tests: its own UTS namespace (hostname) and host UUID,
        #: and a TCP listener on 127.0.0.1 without authentication.
        self.hostname = hostname
        self.tcp_port = tcp_port

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

    def start(self, hook: bool = True) -> "Libvirtd":
        for sub in ("etc", "lib", "log", "sock", "payloadhook-etc"):
            os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        os.makedirs(self.cache, exist_ok=True)
        shutil.copytree("/etc/libvirt", os.path.join(self.base, "etc"), dirs_exist_ok=True, symlinks=True)
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
               "LIBVIRTD_ARGS": "--listen" if self.tcp_port else ""}
        self.process = subprocess.Popen(["unshare", "-m", "-u", "sh", "-c", START], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(self.socket_dir, "libvirt-sock")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("libvirtd did not start: " + self.process.stderr.read().decode(errors="replace"))
            time.sleep(0.05)
        self.virsh("version")  # the socket answers
        return self

    def virsh(self, *args: str, check: bool = True, ro: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["virsh", "-q", "-c", self.ro_uri if ro else self.uri, *args],
                              capture_output=True, text=True, check=check, env={**os.environ, "LC_ALL": "C.UTF-8"})

    def nsenter(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command in the daemon's mount namespace."""
        return subprocess.run(["nsenter", "-t", str(self.process.pid), "-m", "-u", "--", *argv], capture_output=True,
                              text=True, check=check)

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
        while self.virsh("version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("libvirtd did not come back")
            time.sleep(0.1)

    def daemon_pid(self, name: str) -> int | None:
        try:
            with open(self.path(f"/run/{name}.pid")) as stream:
                return int(stream.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if self.process is None:
            return
        listing = self.virsh("list", "--name", check=False).stdout.split()
        for name in listing:
            self.virsh("destroy", name, check=False)
        for name in ("libvirtd", "virtlogd"):
            pid = self.daemon_pid(name)
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
        self.process.kill()
        self.process.wait()
        self.process = None
        shutil.rmtree(self.base, ignore_errors=True)
