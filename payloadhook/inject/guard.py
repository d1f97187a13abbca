"""What must hold before a domain's disk is opened for writing, checked through libvirt and
on the disk itself; each failure a GuestError, and the disk untouched:

- the domain is shut off (not running, not paused) and has no managed save image (its saved
  memory expects the disk as it was);
- no other active domain uses the disk (its live XML, backing files included);
- no process holds QEMU's locks on the disk's image (QEMU locks bytes 100-299 of an image
  with open file description locks; a probe for a write lock over them conflicts with any);
- the source is a regular file or a block device, and a block device is not mounted or
  otherwise claimed on the host (an exclusive open, held while the appliance runs).

The appliance's own QEMU takes the disk's write lock at launch, so a domain started after
these checks fails to start, and :func:`check_domain` run again after the launch catches one
that started before it.
"""

from __future__ import annotations

import errno
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


def _identity(path: str) -> tuple[bool, int, int] | None:
    """A file by device and inode; a block device by its whole disk and itself: a partition
    overlaps its whole disk, so /dev/sdb and /dev/sdb1 are one disk to :func:`_overlap`."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stat.S_ISBLK(st.st_mode):
        return True, _whole_disk(st.st_rdev), st.st_rdev
    return False, st.st_dev, st.st_ino


def _whole_disk(rdev: int) -> int:
    """The device number of the disk that block device ``rdev`` is a partition of (itself
    when it is none), as sysfs tells."""
    where = f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}"
    try:
        if not os.path.exists(os.path.join(where, "partition")):
            return rdev
        with open(os.path.join(os.path.realpath(where), "..", "dev")) as stream:
            major, _, minor = stream.read().strip().partition(":")
        return os.makedev(int(major), int(minor))
    except (OSError, ValueError):
        return rdev


def _overlap(mine: tuple[bool, int, int] | None, other: tuple[bool, int, int] | None) -> bool:
    """Whether two sources share bytes: the same file; the same device, or a disk and one of
    its partitions (two partitions of one disk do not)."""
    if mine is None or other is None or mine[0] != other[0]:
        return False
    if not mine[0]:
        return mine == other
    return mine[2] == other[2] or (mine[1] == other[1] and mine[1] in (mine[2], other[2]))


def _sources(conn, root) -> list[str]:
    """Every file or device a domain's disks read, their backing chains included; a storage
    pool's volume (``<disk type='volume'>``) by the path its pool gives it."""
    found = []
    for disk in root.findall("devices/disk"):
        for source in disk.iter("source"):
            path = source.get("file") or source.get("dev")
            if not path and source.get("pool") and source.get("volume"):
                path = _volume_path(conn, source.get("pool"), source.get("volume"))
            if path:
                found.append(path)
    return found


def _volume_path(conn, pool: str, volume: str) -> str | None:
    try:
        return conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).path()
    except Exception:      # a pool or volume gone, or not active: libvirt cannot tell, nor can we
        return None


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
        for path in _sources(conn, root):
            if path == disk.source or _overlap(mine, _identity(path)):
                raise GuestError(f"disk {shown(disk.target, 40)} ({shown(disk.source)}) is in use by the running "
                                 f"domain {virt.name_of(other)}; inject does not write a disk another domain uses")


def check_source(disk: GuestDisk) -> int:
    """The source is a regular file or a block device, no process holds QEMU's locks on it, and
    a block device is not mounted or claimed by the host (opened with O_EXCL: the kernel refuses
    with EBUSY a device that is mounted, a partition of one, or held by device-mapper, MD or
    another exclusive opener). The descriptor is returned open: held until the appliance is
    done, so the device cannot be mounted meanwhile (QEMU's own open is not exclusive)."""
    assert disk.source is not None
    where = f"disk {shown(disk.target, 40)} ({shown(disk.source)})"
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(disk.source, flags)
    except OSError as exc:
        raise GuestError(f"{where} cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise GuestError(f"{where} is neither a regular file nor a block device")
        if stat.S_ISBLK(st.st_mode):
            fd = _exclusive(fd, disk.source, st, where)
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, _QEMU_LOCK_START, _QEMU_LOCK_LEN, 0)
        held = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe))
        if held[0] != fcntl.F_UNLCK:
            raise GuestError(f"{where} is locked by another process (a QEMU has it open); inject does not "
                             "write a disk in use")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _exclusive(fd: int, path: str, st: os.stat_result, where: str) -> int:
    """The block device ``fd`` reopened with O_EXCL (the same device, else refused)."""
    try:
        exclusive = os.open(path, os.O_RDONLY | os.O_EXCL | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise GuestError(f"{where} is in use on the host (mounted, or a partition of it is, or held by "
                             "another program); inject does not write a disk in use") from None
        raise GuestError(f"{where} cannot be opened: {exc.strerror}") from None
    if os.fstat(exclusive).st_rdev != st.st_rdev:
        os.close(exclusive)
        raise GuestError(f"{where} changed while it was checked; nothing written")
    os.close(fd)
    return exclusive
