"""Inside libguestfs's appliance: finding the file system an injection writes, writing files
there (each under a temporary name, then renamed into place), and removing them again.

Every operation is a libguestfs call: the guest's file systems are mounted in the appliance,
never on the host. A guest path is walked component by component with ``lstat``-like calls
(``is_symlink``, ``lstatns``), and a symbolic link anywhere on it is refused, not followed: a
hostile guest cannot make a write land elsewhere in its own file system, nor anywhere on the
host. On an NTFS volume each component is matched case-insensitively
(``case_sensitive_path``), as Windows reads it.
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import GuestError, quote, shown
from . import paths
from .appliance import Appliance, reason

#: libguestfs's protocol carries at most a few MiB a message: content goes in pieces.
CHUNK = 1 << 20
#: Read-only mount options that also keep a journal from being replayed onto the disk (a
#: plain ``ro`` mount of ext3/4, XFS or btrfs replays it): what is only looked at stays untouched.
_RO_OPTIONS = {"ext3": "ro,noload", "ext4": "ro,noload", "xfs": "ro,norecovery", "btrfs": "ro,rescue=nologreplay"}
_S_IFLNK, _S_IFDIR, S_IFREG = 0o120000, 0o040000, 0o100000
#: File systems libguestfs reports that hold no files.
_NOT_FILES = ("", "swap", "unknown", "crypto_LUKS", "LVM2_member", "linux_raid_member")


@dataclass
class Located:
    """The mounted guest: its mountpoints (longest first) and the disk each lies on."""

    mounts: list[tuple[str, str, int | None]]     # mountpoint, device, drive index
    windows: bool
    systemroot: str | None = None                  # "/Windows", as inspection found it
    root: str | None = None                        # the inspection root's device

    def drive_of(self, guest_path: str) -> int | None:
        for mountpoint, _device, index in self.mounts:
            if guest_path == mountpoint or guest_path.startswith(mountpoint.rstrip("/") + "/"):
                return index
        return None


@dataclass(frozen=True)
class Planned:
    """One file to write: its final components as they exist in the guest."""

    parts: tuple[str, ...]
    content: bytes

    @property
    def path(self) -> str:
        return paths.join(self.parts)


@dataclass
class Plan:
    files: list[Planned] = field(default_factory=list)
    new_dirs: list[tuple[str, ...]] = field(default_factory=list)    # to make, parents first


@contextmanager
def _tar_stream(items: list[Planned], mode: int, owner: tuple[int, int]):
    """A path libguestfs reads a tar of ``items`` from (named 0, 1, ...): a memfd, so that
    the content rests on no host file system."""
    import tarfile
    import time
    fd = os.memfd_create("payloadhook-inject", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) \
                as tar:
            now = int(time.time())
            for index, item in enumerate(items):
                info = tarfile.TarInfo(str(index))
                info.size, info.mode, info.uid, info.gid, info.mtime = len(item.content), mode, owner[0], owner[1], now
                tar.addfile(info, io.BytesIO(item.content))
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


class Guest:
    def __init__(self, app: Appliance, written: int, disk_name: str) -> None:
        self.app = app
        self.g = app.g
        self.written = written          # the index of the written drive
        self.disk_name = disk_name      # its target, for messages
        self.located: Located | None = None
        self._walked: dict[tuple[str, ...], tuple[tuple[str, ...], int]] = {}
        self._listed: dict[tuple[str, ...], dict[str, str]] = {}

    # -- which drive a device lies on ----------------------------------------------------

    def drive_index(self, device: str) -> int | None:
        g = self.g
        try:
            if g.is_lv(device):
                vg = g.lvm_canonical_lv_name(device).split("/")[2]
                members = set(g.vgpvuuids(vg))
                indexes = {self.drive_index(pv) for pv in g.pvs() if g.pvuuid(pv) in members}
                return indexes.pop() if len(indexes) == 1 else None
            whole = g.part_to_dev(device) if device in g.list_partitions() else device
            return g.device_index(whole)
        except RuntimeError:
            return None

    # -- finding and mounting --------------------------------------------------------------

    def locate_volume(self, volume: int) -> Located:
        """The file system named by partition number (0: the whole disk), mounted at /."""
        g = self.g
        g.umount_all()
        device = g.list_devices()[self.written]
        where = f"disk {shown(self.disk_name, 40)}"
        if volume == 0:
            fs = device
        else:
            found = [p for p in g.list_partitions() if g.part_to_dev(p) == device and g.part_to_partnum(p) == volume]
            if not found:
                raise GuestError(f"{where} has no partition {volume}")
            fs = found[0]
            where += f" partition {volume}"
        vfs = g.vfs_type(fs)
        if vfs in _NOT_FILES:
            raise GuestError(f"{where} holds no file system payloadhook can write into"
                             + (f" ({shown(vfs, 30)})" if vfs else ""))
        try:
            self._mount_ro(fs, "/")
        except RuntimeError as exc:
            raise GuestError(f"cannot mount the file system of {where}: {reason(exc)}") from None
        self.located = Located(mounts=[("/", fs, self.written)], windows=vfs == "ntfs")
        return self.located

    def locate_os(self, disk_named: bool) -> Located:
        """The guest's operating system by libguestfs's inspection, its file systems mounted
        (read-only until :meth:`make_writable`) as its fstab (or Windows's drive letters) says."""
        g = self.g
        try:
            roots = list(g.inspect_os())
        except RuntimeError as exc:
            raise GuestError(f"libguestfs's inspection failed: {reason(exc)} (give --volume N to name the file "
                             "system)") from None
        if len(roots) > 1 and disk_named:
            roots = [r for r in roots if self.drive_index(r) == self.written]
        where = f"disk {shown(self.disk_name, 40)}" if disk_named else "the domain's disks"
        if not roots:
            raise GuestError(f"no operating system found on {where} (give --volume N to name the file system, "
                             "0 for a disk without partitions)")
        if len(roots) > 1:
            hint = "give --volume N" if disk_named else "give --disk TARGET to choose one"
            raise GuestError(f"{len(roots)} operating systems found on {where}; {hint}")
        root = roots[0]
        mountpoints = g.inspect_get_mountpoints(root)
        mounts = []
        for mountpoint in sorted(mountpoints, key=len):
            device = mountpoints[mountpoint]
            index = self.drive_index(device)
            try:
                self._mount_ro(device, mountpoint)
            except RuntimeError as exc:
                if mountpoint == "/":
                    raise GuestError(f"cannot mount the guest's root file system: {reason(exc)}") from None
                continue    # as virt-customize: a file system that does not mount is left out
            mounts.append((mountpoint, device, index))
        windows = g.inspect_get_type(root) == "windows"
        systemroot = g.inspect_get_windows_systemroot(root) if windows else None
        mounts.sort(key=lambda m: len(m[0]), reverse=True)
        self.located = Located(mounts=mounts, windows=windows, systemroot=systemroot, root=root)
        return self.located

    def _mount_ro(self, device: str, mountpoint: str) -> None:
        self.g.mount_options(_RO_OPTIONS.get(self.g.vfs_type(device), "ro"), device, mountpoint)

    def make_writable(self) -> None:
        """Mount again, the written disk's file systems read-write: only once everything is
        checked, so that a refusal leaves the disk as it was (a read-write mount alone
        changes it)."""
        assert self.located is not None
        g = self.g
        g.umount_all()
        for mountpoint, device, index in sorted(self.located.mounts, key=lambda m: len(m[0])):
            try:
                if index == self.written:
                    g.mount(device, mountpoint)
                else:
                    self._mount_ro(device, mountpoint)
            except RuntimeError as exc:
                raise GuestError(f"cannot mount {quote(mountpoint)} of the guest read-write: {reason(exc)}") from None

    # -- paths -----------------------------------------------------------------------------

    def _exists(self, path: str) -> bool:
        try:
            self.g.lstatns(path)
            return True
        except RuntimeError:
            return False

    def _actual(self, done: tuple[str, ...], part: str) -> str:
        """The name ``part`` has in the directory ``done``: on NTFS, matched without case."""
        if not (self.located and self.located.windows):
            return part
        try:
            found = self.g.case_sensitive_path(paths.join(done + (part,)))
        except RuntimeError:
            return part
        return found.rstrip("/").rpartition("/")[2] or part

    def _lstat_mode(self, path: str) -> int | None:
        """The file type bits of ``path`` itself (a link is not followed); None if missing."""
        try:
            return int(self.g.lstatns(path)["st_mode"]) & 0o170000
        except RuntimeError:
            return None

    def walk(self, parts: tuple[str, ...]) -> tuple[tuple[str, ...], int]:
        """``parts`` as they exist in the guest, and how many exist: each existing one a
        directory reached through no symbolic link (else GuestError). One look a component,
        remembered for the injection (nothing else changes the guest meanwhile)."""
        if parts in self._walked:
            return self._walked[parts]
        done: tuple[str, ...] = ()
        found: tuple[tuple[str, ...], int] | None = None
        for count, part in enumerate(parts):
            actual = self._actual(done, part)
            path = paths.join(done + (actual,))
            kind = self._lstat_mode(path)
            if kind == _S_IFLNK:
                raise GuestError(f"{quote(path)} is a symbolic link in the guest; payloadhook follows no link "
                                 "of the guest's")
            if kind is None:
                found = (done + (actual,) + parts[count + 1:], count)
                break
            if kind != _S_IFDIR:
                raise GuestError(f"{quote(path)} in the guest is not a directory, so nothing can be put under it")
            done += (actual,)
        self._walked[parts] = found or (done, len(parts))
        return self._walked[parts]

    def _names_in(self, directory: tuple[str, ...]) -> dict[str, str]:
        """The names in an existing directory, keyed as they are matched (without case on
        NTFS): one listing a directory, however many files go there."""
        if directory not in self._listed:
            windows = bool(self.located and self.located.windows)
            self._listed[directory] = {(name.lower() if windows else name): name
                                       for name in self.g.ls(paths.join(directory))}
        return self._listed[directory]

    def plan(self, directory: tuple[str, ...], files: list[tuple[str, bytes]]) -> Plan:
        """Where each file goes (``name`` under ``directory``), checked before anything is
        written: the directories on the way are directories or can be made, no file is there
        already, and the file system is on the written disk."""
        plan = Plan()
        made: set[tuple[str, ...]] = set()
        targets: set[str] = set()
        windows = bool(self.located and self.located.windows)
        for name, content in files:
            parts = paths.under(directory, name)
            dir_parts, existing = self.walk(parts[:-1])
            where = paths.join(dir_parts)
            drive = self.located.drive_of(paths.join(dir_parts[:existing] or ())) if self.located else None
            if drive != self.written:
                raise GuestError(f"{quote(where)} lies on no file system of disk {shown(self.disk_name, 40)} that "
                                 "payloadhook mounted read-write (give --disk for the disk that holds it)")
            for depth in range(existing + 1, len(dir_parts) + 1):
                if dir_parts[:depth] not in made:
                    made.add(dir_parts[:depth])
                    plan.new_dirs.append(dir_parts[:depth])
            there = self._names_in(dir_parts).get(parts[-1].lower() if windows else parts[-1]) \
                if existing == len(dir_parts) else None
            final = dir_parts + (there or parts[-1],)
            path = paths.join(final)
            if path.lower() in targets:
                raise GuestError(f"{quote(path)} is given twice")
            targets.add(path.lower())
            if there is not None:
                raise GuestError(f"{quote(path)} exists in the guest already; payloadhook does not replace a "
                                 "guest's file (remove it, or inject --remove what an earlier inject put there)")
            plan.files.append(Planned(final, content))
        return plan

    # -- writing ---------------------------------------------------------------------------

    def write(self, plan: Plan, mode: int, owner: tuple[int, int]) -> None:
        """Make the directories (0755), then put each file in place under a temporary name
        and rename it there. On a POSIX file system the files of one directory travel as one
        tar stream (from memory, never a host file) unpacked into a new 0700 directory beside
        them, with their mode and owner; on NTFS each is written in turn."""
        g = self.g
        self.make_writable()
        posix = not (self.located and self.located.windows)
        for parts in plan.new_dirs:
            path = paths.join(parts)
            try:
                g.mkdir_mode(path, 0o755)
                if posix:
                    g.lchown(0, 0, path)
            except RuntimeError as exc:
                raise GuestError(f"cannot make the directory {quote(path)} in the guest: {reason(exc)}") from None
        if not posix:
            for item in plan.files:
                self._write_one(item)
            return
        by_directory: dict[tuple[str, ...], list[Planned]] = {}
        for item in plan.files:
            by_directory.setdefault(item.parts[:-1], []).append(item)
        for directory, items in by_directory.items():
            self._write_tar(directory, items, mode, owner)

    def _write_one(self, item: Planned) -> None:
        g = self.g
        tmp = paths.join(item.parts[:-1] + (f".payloadhook-{os.urandom(8).hex()}.tmp",))
        try:
            g.write(tmp, item.content[:CHUNK])
            for offset in range(CHUNK, len(item.content), CHUNK):
                g.write_append(tmp, item.content[offset:offset + CHUNK])
            g.rename(tmp, item.path)
        except RuntimeError as exc:
            try:
                g.rm_f(tmp)
            except RuntimeError:
                pass
            raise GuestError(f"cannot write {quote(item.path)} in the guest: {reason(exc)}") from None

    def _write_tar(self, directory: tuple[str, ...], items: list[Planned], mode: int,
                   owner: tuple[int, int]) -> None:
        g = self.g
        staging = paths.join(directory + (f".payloadhook-{os.urandom(8).hex()}",))
        try:
            g.mkdir_mode(staging, 0o700)
            with _tar_stream(items, mode, owner) as stream:
                g.tar_in(stream, staging)
            for index, item in enumerate(items):
                g.rename(f"{staging}/{index}", item.path)
            g.rmdir(staging)
        except RuntimeError as exc:
            try:
                g.rm_rf(staging)
            except RuntimeError:
                pass
            raise GuestError(f"cannot write the files of {quote(paths.join(directory))} in the guest: "
                             f"{reason(exc)}") from None

    # -- removing ----------------------------------------------------------------------------

    def content_of(self, path: str, size: int) -> bytes:
        chunks = []
        for offset in range(0, size, CHUNK):
            chunks.append(self.g.pread(path, min(CHUNK, size - offset), offset))
        return b"".join(chunks)

    def find(self, path: str) -> str | None:
        """Where the recorded file ``path`` is now, reached through no link; None if gone.
        GuestError where a link or a non-directory is on its way."""
        parts = paths.components(path, "file")
        found, existing = self.walk(parts[:-1])
        if existing < len(found):
            return None
        final = paths.join(found + (self._actual(found, parts[-1]),))
        return final if (self.g.is_symlink(final) or self._exists(final)) else None

    def lstat_names(self, directory: tuple[str, ...], names: list[str]) -> list[tuple[str, int, int] | None]:
        """For each name in the existing ``directory`` (reached through no link): its path,
        file type bits and size, not following a link; None where it is gone. One call for
        the whole directory."""
        windows = bool(self.located and self.located.windows)
        listing = self._names_in(directory) if windows else None
        actual = [(listing or {}).get(name.lower(), name) if windows else name for name in names]
        states = self.g.lstatnslist(paths.join(directory), actual)
        return [None if int(st["st_ino"]) == -1 else
                (paths.join(directory + (name,)), int(st["st_mode"]) & 0o170000, int(st["st_size"]))
                for name, st in zip(actual, states)]

    def remove_file(self, path: str) -> None:
        self.g.rm(path)

    def remove_dir_if_empty(self, path: str) -> bool:
        g = self.g
        try:
            found = self.find(path)
        except GuestError:
            return False
        if found is None:
            return True
        if g.is_symlink(found) or not g.is_dir(found) or g.ls(found):
            return False
        g.rmdir(found)
        return True
