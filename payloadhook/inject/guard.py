"""What must hold before a domain's disk is opened for writing, checked through libvirt and
on the disk itself; each failure a GuestError, and the disk untouched:

- the domain is shut off (not running, not paused) and has no managed save image (its saved
  memory expects the disk as it was);
- no other active domain uses the disk (its live XML, backing files included);
- no process holds QEMU's locks on the disk's image (QEMU locks bytes 100-299 of an image
  with open file description locks; a probe for a write lock over them conflicts with any);
- the source is a regular file or a block device.

The appliance's own QEMU takes the disk's write lock at launch, so a domain started after
these checks fails to start, and :func:`check_domain` run again after the launch catches one
that started before it.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct

from ..errors import GuestError, shown
from .disks import GuestDisk

#: struct flock on Linux x86-64 and aarch64: l_type, l_whence (short), l_start, l_len (off_t), l_pid.
_FLOCK = "hhqqi4x"
#: The bytes QEMU's file locking uses (block/file-posix.c: 100 + permission, 200 + shared).
_QEMU_LOCK_START, _QEMU_LOCK_LEN = 100, 200


def check_domain(dom, name: str) -> None:
    """The domain is shut off, and has no managed save image."""
    from ..ops import virt
    if virt.call(f"cannot ask about {name}", dom.isActive):
        state = virt.call(f"cannot ask about {name}", dom.state)[0]
        import libvirt  # type: ignore[import-untyped]
        what = "paused" if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED) else "running"
        raise GuestError(f"domain {name} is {what}; inject writes only the disk of a shut-off domain "
                         "(shut it down first)")
    if virt.call(f"cannot ask about {name}", dom.hasManagedSaveImage, 0):
        raise GuestError(f"domain {name} has a managed save image, whose memory expects its disk as it is; "
                         f"start it and shut it down, or discard the image (virsh managedsave-remove), first")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_rdev, 0) if stat.S_ISBLK(st.st_mode) else (st.st_dev, st.st_ino)


def _sources(root) -> list[str]:
    """Every file or device a domain's disks read, their backing chains included."""
    found = []
    for disk in root.findall("devices/disk"):
        for source in disk.iter("source"):
            path = source.get("file") or source.get("dev")
            if path:
                found.append(path)
    return found


def check_not_shared(conn, dom, disk: GuestDisk) -> None:
    """No other active domain uses ``disk``'s source (libvirt's view of every running domain)."""
    from .. import xmlsafe
    from ..ops import virt
    assert disk.source is not None
    mine = _identity(disk.source)
    flag = virt._libvirt().VIR_CONNECT_LIST_DOMAINS_ACTIVE
    for other in virt.call("cannot list domains", conn.listAllDomains, flag):
        if other.UUIDString() == dom.UUIDString():
            continue
        try:
            root = xmlsafe.parse_xml(virt.live_xml(other))
        except GuestError:
            raise
        except Exception:      # a domain gone meanwhile, or an XML we cannot read: not ours to judge
            continue
        for path in _sources(root):
            if path == disk.source or (mine is not None and _identity(path) == mine):
                raise GuestError(f"disk {shown(disk.target, 40)} ({shown(disk.source)}) is in use by the running "
                                 f"domain {virt.name_of(other)}; inject does not write a disk another domain uses")


def check_source(disk: GuestDisk) -> None:
    """The source is a regular file or a block device, and no process holds QEMU's locks on it."""
    assert disk.source is not None
    where = f"disk {shown(disk.target, 40)} ({shown(disk.source)})"
    try:
        fd = os.open(disk.source, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise GuestError(f"{where} cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise GuestError(f"{where} is neither a regular file nor a block device")
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, _QEMU_LOCK_START, _QEMU_LOCK_LEN, 0)
        held = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe))
        if held[0] != fcntl.F_UNLCK:
            raise GuestError(f"{where} is locked by another process (a QEMU has it open); inject does not "
                             "write a disk in use")
    finally:
        os.close(fd)
