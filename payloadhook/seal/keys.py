"""The host's sealing keys: ``/etc/payloadhook/keys/KEYID.key``, 32 random bytes each, root
only (0600 in a 0700 directory), and ``current``, the id of the key new content is sealed
under. Older keys stay, to open what they sealed, until ``payloadhook reseal`` has moved
everything to the current one and ``payloadhook key retire`` removes them (only once nothing
libvirt keeps holds a blob under them: ops/resealing.py).

Keys are read by the hook as root: the directory and every key file are checked (owned by
root, closed to group and others, regular files reached without a symbolic link) before a
byte of them is used, and a key id from a domain XML is checked before it names a file.
"""

from __future__ import annotations

import os
import stat
import time

from ..errors import PayloadhookError, SealError, command
from ..frozen import Frozen, assign
from ..model import check_key_id
from .blob import KEY_BYTES

KEY_DIR = "/etc/payloadhook/keys"
CURRENT = "current"
SUFFIX = ".key"
class KeyInfo(Frozen):
    """One key as ``key list`` shows it (a Frozen class: dataclasses would cost the hook's
    sealed prepare 9 ms of imports, payloadhook/frozen.py)."""

    __slots__ = ("key_id", "created", "current")
    key_id: str
    created: float
    current: bool

    def __init__(self, key_id: str, created: float, current: bool) -> None:
        assign(self, "key_id", key_id)
        assign(self, "created", created)
        assign(self, "current", current)


def _is_key_id(text: str) -> bool:
    try:
        check_key_id(text)
    except PayloadhookError:
        return False
    return True


def _open_dir(key_dir: str, create: bool = False) -> int:
    """A descriptor of the key directory, reached through no symbolic link, and checked to be
    root's and closed to others before any key in it is read."""
    from ..fileio import open_dir
    try:
        if create:    # /etc/payloadhook (0755) too, where install-hook did not make it
            parent = open_dir(os.path.dirname(key_dir), create_mode=0o755)
            try:
                fd = open_dir(os.path.basename(key_dir), dir_fd=parent, create_mode=0o700)
            finally:
                os.close(parent)
        else:
            fd = open_dir(key_dir)
    except FileNotFoundError:
        raise SealError(f"no sealing keys on this host ({key_dir} does not exist); "
                        "run 'payloadhook key new'") from None
    except OSError as exc:
        raise SealError(f"key directory {key_dir} cannot be opened: {exc.strerror} "
                        "(a symbolic link or a non-directory on the way?)") from None
    st = os.fstat(fd)
    if st.st_uid != 0 or st.st_mode & 0o077:
        os.close(fd)
        raise SealError(f"key directory {key_dir} must be owned by root and closed to others "
                        f"({command('chown', 'root:', key_dir)} && {command('chmod', '0700', key_dir)})")
    return fd

def _read(key_dir: str, dir_fd: int, name: str, limit: int) -> bytes | None:
    """Up to ``limit`` + 1 bytes of a root-only regular file of the key directory; None if missing."""
    from ..fileio import read_private
    try:
        return read_private(dir_fd, name, limit, 0, lambda: SealError(
            f"{key_dir}/{name} must be a regular file owned by root, mode 0600"))
    except OSError as exc:
        raise SealError(f"{key_dir}/{name} cannot be read: {exc.strerror}") from None


class KeyStore:
    """The key directory of this host."""

    def __init__(self, key_dir: str = KEY_DIR):
        self.key_dir = key_dir

    def load(self, key_id: str) -> bytes:
        """The key ``key_id``; SealError naming it when this host lacks it or it is malformed."""
        check_key_id(key_id)
        if not os.path.lexists(self.key_dir):
            key = None
        else:
            dir_fd = _open_dir(self.key_dir)
            try:
                key = _read(self.key_dir, dir_fd, key_id + SUFFIX, KEY_BYTES)
            finally:
                os.close(dir_fd)
        if key is None:
            raise SealError(f"key {key_id} is not on this host ({self.key_dir}/{key_id}{SUFFIX}); "
                            "copy it from a host that has it")
        if len(key) != KEY_BYTES:
            raise SealError(f"key file {self.key_dir}/{key_id}{SUFFIX} does not hold {KEY_BYTES} bytes")
        return key

    def current(self) -> str | None:
        """The id of the current key, or None when this host has no key."""
        try:
            dir_fd = _open_dir(self.key_dir)
        except SealError:
            if not os.path.lexists(self.key_dir):
                return None
            raise
        try:
            raw = _read(self.key_dir, dir_fd, CURRENT, 256)
        finally:
            os.close(dir_fd)
        if raw is None:
            return None
        try:
            return check_key_id(raw.decode("ascii").strip())
        except UnicodeDecodeError:
            raise SealError(f"{self.key_dir}/{CURRENT} does not hold a key id") from None

    def list(self) -> list[KeyInfo]:
        if not os.path.lexists(self.key_dir):
            return []
        current = self.current()
        dir_fd = _open_dir(self.key_dir)
        try:
            infos = []
            for entry in os.listdir(dir_fd):
                key_id = entry[:-len(SUFFIX)]
                if not entry.endswith(SUFFIX) or not _is_key_id(key_id):
                    continue
                st = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    infos.append(KeyInfo(key_id, st.st_mtime, key_id == current))
        finally:
            os.close(dir_fd)
        return sorted(infos, key=lambda info: (info.created, info.key_id))

    # -- writing ----------------------------------------------------------------

    def new(self) -> str:
        """Make a key, write it (0600), make it current; return its id."""
        from ..fileio import atomic_write
        key_id = time.strftime("%Y%m%d", time.gmtime()) + "-" + os.urandom(4).hex()
        dir_fd = _open_dir(self.key_dir, create=True)
        try:
            if os.path.lexists(f"{self.key_dir}/{key_id}{SUFFIX}"):   # 2**32 ids a day: never in practice
                raise SealError(f"key {key_id} exists already; run 'payloadhook key new' again")
            key = os.urandom(KEY_BYTES)
            atomic_write(dir_fd, key_id + SUFFIX, lambda stream: stream.write(key), 0o600)
            atomic_write(dir_fd, CURRENT, lambda stream: stream.write(key_id.encode("ascii") + b"\n"), 0o600)
        except OSError as exc:
            raise SealError(f"cannot write a key in {self.key_dir}: {exc.strerror}") from None
        finally:
            os.close(dir_fd)
        return key_id

    def retirable(self, key_id: str) -> str:
        """The path of key ``key_id``, checked to be one that may be retired: on this host, and
        not the current key (new content is sealed under that one). SealError otherwise."""
        check_key_id(key_id)
        path = f"{self.key_dir}/{key_id}{SUFFIX}"
        if self.current() == key_id:
            raise SealError(f"key {key_id} is the current key; make another one current first "
                            "('payloadhook key new', then 'payloadhook reseal --all')")
        dir_fd = _open_dir(self.key_dir)
        try:
            st = os.stat(key_id + SUFFIX, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise SealError(f"key {key_id} is not on this host ({path})") from None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(st.st_mode):
            raise SealError(f"{path} is not a regular file")
        return path

    def remove(self, key_id: str) -> str:
        """Delete key ``key_id`` (after :meth:`retirable`'s checks); its path."""
        path = self.retirable(key_id)
        dir_fd = _open_dir(self.key_dir)
        try:
            os.unlink(key_id + SUFFIX, dir_fd=dir_fd)
            os.fsync(dir_fd)
        except OSError as exc:
            raise SealError(f"cannot remove {path}: {exc.strerror}") from None
        finally:
            os.close(dir_fd)
        return path
