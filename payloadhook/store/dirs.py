"""The directories the store works in, opened safely, checked, and locked; and the index.

Every directory is opened by :func:`fileio.open_dir` (no symbolic link anywhere on the
path) and must belong to root and be writable by nobody else: a 0777 ``image_dir`` a user
pre-created would let them plant records. Directories the store creates get their modes
exactly (``fchmod``), whatever the umask.

One lock serializes prepare, release and gc in an image directory: ``flock`` on the record
directory's descriptor, dropped when it is closed (a killed process drops it too).
"""

from __future__ import annotations

import errno
import fcntl
import os

from .. import fileio
from ..errors import StoreError
from ..filenames import tmp_name
from .paths import IMAGE_DIR_MODE, PRIVATE_DIR_MODE, RECORD_MODE, check_owner
from .records import RECORDS, indexed_dirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    pass


class Missing(Exception):
    """image_dir or its record directory does not exist (and was not to be created)."""


def no_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def failure(exc: OSError, where: str, what: str) -> StoreError:
    """The one-line refusal for a failed write: no space says so plainly."""
    if no_space(exc):
        return StoreError(f"no space left in {where} for {what}")
    return StoreError(f"cannot write {what} in {where}: {exc.strerror}")


def open_checked(path: str, mode: int, create: bool, dir_fd: int | None = None, shown: str | None = None) -> int:
    """A checked descriptor of a directory; Missing when absent and not ``create``."""
    shown = shown or path
    try:
        fd = fileio.open_dir(path, dir_fd=dir_fd, create_mode=mode if create else None)
    except FileNotFoundError:
        raise Missing(shown) from None
    except OSError as exc:
        if fileio.is_link_error(exc):
            raise StoreError(f"directory {shown} goes through a symbolic link or a non-directory") from None
        if create and no_space(exc):
            raise StoreError(f"no space left in {os.path.dirname(shown)} for the directory {shown}") from None
        raise StoreError(f"directory {shown} cannot be opened: {exc.strerror}") from None
    try:
        check_owner(fd, shown, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


class locked:
    """``with locked(image_dir, create) as (dir_fd, records_fd)``: image_dir and its record
    directory, opened and checked, with the lock held; Missing if absent. (A class, not a
    contextlib.contextmanager: contextlib costs the hook an import.)"""

    def __init__(self, image_dir: str, create: bool) -> None:
        self.image_dir = image_dir
        self.create = create
        self.fds: list[int] = []

    def __enter__(self) -> tuple[int, int]:
        try:
            dir_fd = open_checked(self.image_dir, IMAGE_DIR_MODE, self.create)
        except Missing:
            if self.create:
                raise StoreError(f"image directory {self.image_dir} cannot be created: a parent is missing") from None
            raise
        self.fds.append(dir_fd)
        try:
            records_fd = open_checked(RECORDS, PRIVATE_DIR_MODE, self.create, dir_fd, f"{self.image_dir}/{RECORDS}")
            self.fds.append(records_fd)
            fcntl.flock(records_fd, fcntl.LOCK_EX)
        except BaseException:
            self._close()
            raise
        return dir_fd, records_fd

    def __exit__(self, *_exc: object) -> None:
        self._close()

    def _close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())


def _index_entry(image_dir: str) -> str:
    """The index file of image_dir: its path in hex, or a SHA-256 of a long one (as records)."""
    raw = os.fsencode(image_dir)
    if len(raw) <= 100:
        return "dir-" + raw.hex()
    import hashlib
    return "dir-sha256-" + hashlib.sha256(raw).hexdigest()


def register(index: str, image_dir: str) -> None:
    """Name image_dir in the index (call with its lock held), so that release and gc find
    its records after the configuration moves image_dir elsewhere."""
    index_fd = open_checked(index, PRIVATE_DIR_MODE, create=True)
    try:
        entry = _index_entry(image_dir)
        try:
            os.stat(entry, dir_fd=index_fd, follow_symlinks=False)
            return
        except FileNotFoundError:
            pass
        data = os.fsencode(image_dir)
        # a fixed temporary name: what a killed register leaves, the next one replaces
        fileio.atomic_write(index_fd, entry, lambda out: out.write(data), RECORD_MODE, tmp=tmp_name(entry))
    except OSError as exc:
        raise failure(exc, index, "the index of image directories") from None
    finally:
        os.close(index_fd)


def unregister(index: str, image_dir: str) -> None:
    """Drop image_dir from the index (call with its lock held, once it holds no record)."""
    try:
        index_fd = open_checked(index, PRIVATE_DIR_MODE, create=False)
    except Missing:
        return
    try:
        fileio.unlink_file(index_fd, tmp_name(_index_entry(image_dir)))
        fileio.unlink_file(index_fd, _index_entry(image_dir))
    finally:
        os.close(index_fd)


def image_dirs(image_dir: str, index: str | None) -> list[str]:
    """image_dir, then every other directory the index names (if the index is sound)."""
    found = [image_dir]
    if index is None:
        return found
    try:
        os.close(open_checked(index, PRIVATE_DIR_MODE, create=False))
    except Missing:
        return found
    try:
        listing = set(os.listdir(index))
    except OSError:
        return found
    # an entry counts only under its own name: a copied or renamed entry is not ours
    found.extend(path for path in indexed_dirs(index)
                 if path != image_dir and _index_entry(path) in listing)
    return found
