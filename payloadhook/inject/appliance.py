"""libguestfs's appliance, launched for one injection: its direct backend (QEMU run by this
command, never through a libvirt connection), KVM when KVM can run guests and TCG otherwise,
and a bound on the launch.

Why the check: ``/dev/kvm`` can exist, open and even create a VM on a host whose CPU has no
hardware virtualisation to give (a nested or emulated host, no ``vmx``/``svm`` flag); libguestfs
then picks KVM and its launch hangs for many minutes. Here KVM is used only when the CPU
flags say it can run guests and ``/dev/kvm`` answers; otherwise ``force_tcg``, which
boots the appliance in some 20-40 s. ``LIBGUESTFS_BACKEND_SETTINGS`` set by the caller is
kept as it is.

The bound: libguestfs's launch waits on its appliance without a timeout. A watchdog kills
this process's children (the appliance's QEMU, and a supermin building the appliance) when
the launch outlives the bound, so a launch that does not come up is one line, not a hang.
"""

from __future__ import annotations

import os
import signal
import threading

from ..errors import GuestError, shown

#: The default bound on the appliance's launch, in seconds (``--launch-timeout``).
LAUNCH_TIMEOUT = 600
#: ioctls of /dev/kvm (linux/kvm.h): _IO(KVMIO, 0x00) and _IO(KVMIO, 0x01).
_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01
_KVM_API_VERSION = 12


def cpu_virtualises(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo's flags offer hardware virtualisation (Intel VT-x or AMD-V)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags = set(value.split())
            return "vmx" in flags or "svm" in flags
    return False


def kvm_runs_guests(device: str = "/dev/kvm", cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """Whether KVM can run the appliance here: the CPU virtualises, and ``device`` opens,
    speaks KVM's API and creates a VM."""
    import fcntl
    try:
        with open(cpuinfo_path, encoding="ascii", errors="replace") as stream:
            if not cpu_virtualises(stream.read()):
                return False
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, _KVM_GET_API_VERSION) != _KVM_API_VERSION:
            return False
        os.close(fcntl.ioctl(fd, _KVM_CREATE_VM, 0))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _guestfs():
    try:
        import guestfs  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise GuestError("inject needs libguestfs's Python bindings, which are not installed "
                         "(Debian: apt install python3-guestfs linux-image-amd64; "
                         "Fedora: dnf install python3-libguestfs)") from None
    return guestfs


def reason(exc: BaseException) -> str:
    """libguestfs's message, first line, escaped and bounded (it may name guest paths)."""
    return shown(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 200)


def _children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stream:
                fields = stream.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[1].decode() == me:
            found.append(int(entry))
    return found


class Appliance:
    """One libguestfs handle: disks added, launched once, shut down (synced) once."""

    def __init__(self, launch_timeout: float = LAUNCH_TIMEOUT) -> None:
        guestfs = _guestfs()
        self.launch_timeout = launch_timeout
        self.g = guestfs.GuestFS(python_return_dict=True, close_on_exit=False)
        self.g.set_backend("direct")
        self.tcg = "LIBGUESTFS_BACKEND_SETTINGS" not in os.environ and not kvm_runs_guests()
        if self.tcg:
            self.g.set_backend_settings(["force_tcg"])
        self.drives: list[str] = []     # disk targets, in the order the appliance numbers them

    def add(self, target: str, source: str, disk_format: str, writable: bool) -> None:
        try:
            self.g.add_drive_opts(source, format=disk_format, readonly=not writable)
        except RuntimeError as exc:
            raise GuestError(f"cannot open disk {shown(target, 40)}: {reason(exc)}") from None
        self.drives.append(target)

    def launch(self) -> None:
        timed_out = threading.Event()
        done = threading.Event()

        def watchdog() -> None:
            if done.wait(self.launch_timeout):
                return
            timed_out.set()
            for pid in _children():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        thread = threading.Thread(target=watchdog, name="appliance-launch-bound", daemon=True)
        thread.start()
        try:
            self.g.launch()
        except RuntimeError as exc:
            if timed_out.is_set():
                raise GuestError(f"libguestfs's appliance did not come up within {self.launch_timeout:g} s "
                                 f"({'TCG' if self.tcg else 'KVM'}); the disks are untouched (libguestfs-test-tool "
                                 "shows why; --launch-timeout gives it longer)") from None
            raise GuestError(f"libguestfs's appliance did not start: {reason(exc)}") from None
        finally:
            done.set()
            thread.join()

    def finish(self) -> None:
        """Sync every file system and shut the appliance down; an error here is the
        injection's failure (writes may not have reached the disk)."""
        try:
            self.g.umount_all()
            self.g.sync()
            self.g.shutdown()
        except RuntimeError as exc:
            raise GuestError(f"libguestfs could not sync and shut down its appliance: {reason(exc)}") from None
        finally:
            self.g.close()

    def abandon(self) -> None:
        """Close after a failure: nothing more is written."""
        try:
            self.g.shutdown()
        except RuntimeError:
            pass
        self.g.close()
