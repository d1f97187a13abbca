"""A private D-Bus system bus for private libvirtds, with Debian's polkitd and libvirt-dbus on
it: what cockpit-machines talks to (org.libvirt on the system bus, for its "system"
connection), and what a libvirtd asks about its read-only socket (Debian's auth_unix_ro is
"polkit").

The bus is Debian's dbus-daemon with a configuration of its own: the system bus's default
policy (deny every method call and name, but those the policies in /usr/share/dbus-1/system.d
open: Debian's org.libvirt.conf lets root and the group libvirt call org.libvirt, and
org.freedesktop.PolicyKit1.conf lets polkitd own its name) and its socket in a directory of
the test, never /run/dbus. No activation: polkitd and libvirt-dbus are started here.
libvirt-dbus runs inside the daemon's mount namespace, where /run is the namespace's own and its
/run/libvirt/libvirt-sock leads to the private daemon's socket (libvirt-dbus opens
qemu:///system, whose socket it looks for there). It runs as root, not as Debian's libvirtdbus
user: the private daemon's socket is root's only (unix_sock_rw_perms 0700), where Debian's
libvirtd lets libvirtdbus in through polkit (libvirt-dbus.rules). One extra policy lets root
own org.libvirt for that reason. Clients reach the bus by DBUS_SYSTEM_BUS_ADDRESS
(:attr:`SystemBus.address`), which GDBus (cockpit-bridge, libvirt-dbus, polkitd) reads; a
libvirtd by the path /run/dbus/system_bus_socket its harness links (Libvirtd(system_bus=)).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <policy user="root">
    <allow own="org.libvirt"/>
  </policy>
</busconfig>
"""


class SystemBus:
    """The bus, with polkitd on it when ``polkit``; libvirt-dbus for a daemon by
    :meth:`add_libvirt_dbus`. A private libvirtd asks this polkitd (for its read-only socket,
    Debian's auth_unix_ro "polkit") when it was started with ``system_bus=`` this bus's
    :attr:`socket` (libvirtd looks for the bus once, at its first use, at
    /run/dbus/system_bus_socket: the harness links that path in its namespace)."""

    def __init__(self, polkit: bool = True) -> None:
        self.polkit = polkit
        self.base = tempfile.mkdtemp(prefix="payloadhook-bus-")
        os.chmod(self.base, 0o755)     # a session as another user reaches the socket too
        self.socket = os.path.join(self.base, "system_bus_socket")
        self.processes: list[subprocess.Popen] = []

    @property
    def address(self) -> str:
        return f"unix:path={self.socket}"

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DBUS_SYSTEM_BUS_ADDRESS": self.address}

    def start(self) -> SystemBus:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen:
        with open(os.path.join(self.base, log), "wb") as stream:
            process = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=stream)
        self.processes.append(process)
        return process

    def _start(self) -> SystemBus:
        config = os.path.join(self.base, "bus.conf")
        with open(config, "w") as stream:
            stream.write(CONFIG.format(socket=self.socket))
        bus = self._spawn(["dbus-daemon", "--nofork", "--nopidfile", f"--config-file={config}"], "bus.log")
        self._wait(lambda: os.path.exists(self.socket), "dbus-daemon's socket", bus)
        if self.polkit:
            # as Debian's polkit.service starts it: by root, and it changes to its user polkitd
            # (whom Debian's org.freedesktop.PolicyKit1.conf lets own the name)
            polkitd = self._spawn(["/usr/lib/polkit-1/polkitd", "--no-debug"], "polkitd.log")
            self._wait(lambda: self.has_owner("org.freedesktop.PolicyKit1"), "polkitd on the bus", polkitd)
        return self

    def add_libvirt_dbus(self, daemon) -> None:
        """libvirt-dbus for ``daemon``, in its mount namespace."""
        # qemu:///system, as libvirt-dbus opens it, in the namespace: the private daemon's socket
        daemon.nsenter("sh", "-c", 'mkdir -p /run/libvirt && ln -sf "$1/libvirt-sock" /run/libvirt/libvirt-sock'
                       ' && ln -sf "$1/libvirt-sock-ro" /run/libvirt/libvirt-sock-ro', "-", daemon.socket_dir)
        process = self._spawn(daemon.nsenter_argv("/usr/sbin/libvirt-dbus", "--system"), "libvirt-dbus.log")
        self._wait(lambda: self.has_owner("org.libvirt"), "org.libvirt on the bus", process)

    def has_owner(self, name: str) -> bool:
        result = subprocess.run(["dbus-send", f"--bus={self.address}", "--print-reply", "--dest=org.freedesktop.DBus",
                                 "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{name}"],
                                capture_output=True, text=True)
        return result.returncode == 0 and "boolean true" in result.stdout

    def call(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
        """dbus-send on this bus (as ``user``, when given), --print-reply."""
        argv = ["dbus-send", f"--bus={self.address}", "--print-reply", *args]
        if user is not None:
            import pwd
            argv = ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}", "--clear-groups", *argv]
        return subprocess.run(argv, capture_output=True, text=True)

    def _wait(self, ready, what: str, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not come up: {self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        text = []
        for name in ("bus.log", "polkitd.log", "libvirt-dbus.log"):
            try:
                with open(os.path.join(self.base, name), errors="replace") as stream:
                    text.append(f"{name}: {stream.read().strip()}")
            except OSError:
                pass
        return "; ".join(text)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes = []
        shutil.rmtree(self.base, ignore_errors=True)
