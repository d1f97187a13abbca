r"""The project's one atomic writer and one full-write loop, on file descriptors.

Everything that writes a file as root goes through here: the store's images and records,
the command's outputs (``build -o``, ``ovf … -o``, by way of
:func:`payloadhook.local.paths.write_file`), ``install-hook`` and key files. Work is
done relative to a descriptor of the directory (``*at`` system calls), so a directory that
is renamed or replaced by a symbolic link halfway cannot redirect a write.

API
===

``open_dir(path, *, dir_fd=None, create_mode=None) -> int``
    A descriptor (``O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC``) of the directory ``path``,
    opened one component at a time without following a symbolic link anywhere on the way.
    ``path`` is absolute, or relative to ``dir_fd``. With ``create_mode``, the *last*
    component is created when missing (never its parents) and given exactly that mode with
    ``fchmod``, whatever the umask. Raises ``OSError``: ``ELOOP``/``ENOTDIR`` when a component
    is a symbolic link or not a directory (see :func:`is_link_error`), ``ENOENT`` when missing.

``write_all(fd, data) -> int``
    Writes all of ``data`` (bytes, bytearray, memoryview, or a list of them, written with
    ``writev`` in batches of IOV_MAX) to ``fd``, resuming after short writes; returns the
    byte count. Raises ``OSError`` (``ENOSPC``, ``EDQUOT``, ...).

``atomic_write(dir_fd, name, write, mode, *, tmp=None, before_rename=None) -> T``
    Creates a temporary file in the directory ``dir_fd`` (``O_CREAT|O_EXCL|O_NOFOLLOW``),
    calls ``write(stream)`` with a buffered binary stream on it (``stream.fileno()`` is the
    descriptor, for ``writev``; :func:`write_all` works on it once the stream is flushed),
    flushes it, sets ``mode`` with ``fchmod``, ``fsync`` on the file, calls
    ``before_rename(stat_result)`` if given (the store records the new file's inode there),
    renames it onto ``name`` and ``fsync`` on the directory. Returns what ``write`` returned.
    ``tmp`` is the temporary name (default: :func:`payloadhook.filenames.random_tmp_name`); a caller that names it
    must serialize writers itself (the store does, under its lock): a leftover non-directory
    at ``tmp`` is removed first. On any failure the temporary file is removed and the
    exception (``OSError`` or whatever ``write`` raised) propagates; ``name`` is untouched.

``write_temp(dir_fd, tmp, write, mode) -> (T, os.stat_result)``
    The first half of ``atomic_write``, for a caller that renames later (the store renames
    a domain's images only once all are written): ``tmp`` created (a leftover non-directory
    there removed first), written, flushed, given its mode and synced; returns what ``write``
    returned and the file's ``fstat``. On failure ``tmp`` is removed and the error propagates.

``read_private(dir_fd, name, limit, owner, refused) -> bytes | None``
    Up to ``limit`` + 1 bytes of the file ``name`` in ``dir_fd`` (a caller refuses more than
    ``limit``), opened without following a link (``O_NOFOLLOW|O_NONBLOCK``: a FIFO does not
    block) and checked, before a byte is read, to be a regular file owned by ``owner`` and
    closed to group and others; ``refused()`` is raised otherwise. None when it is missing;
    ``OSError`` when it cannot be opened or read. The key files and inject's ledger read so.

``unlink_file(dir_fd, name) -> bool``
    Unlinks ``name`` in ``dir_fd`` unless it is missing or a directory, following no link;
    True when something was removed.
"""


from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not free on the hook's path
    from typing import BinaryIO, Callable, TypeVar, Union

    T = TypeVar("T")
    Buffer = Union[bytes, bytearray, memoryview]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
try:
    _IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024)
except (ValueError, OSError):  # pragma: no cover - Linux always answers
    _IOV_MAX = 16


def is_link_error(exc: OSError) -> bool:
    """Whether ``open_dir`` failed on a symbolic link or a non-directory on the path."""
    return exc.errno in (errno.ELOOP, errno.ENOTDIR)


def open_dir(path: str, *, dir_fd: int | None = None, create_mode: int | None = None) -> int:
    """A descriptor of directory ``path``, reached following no symbolic link (see module doc)."""
    if dir_fd is None:
        if not path.startswith("/"):
            raise ValueError("open_dir needs an absolute path or a dir_fd")
        fd = os.open("/", DIR_FLAGS)
    else:
        fd = os.dup(dir_fd)
    parts = [part for part in path.split("/") if part]
    try:
        for index, part in enumerate(parts):
            if part in (".", ".."):
                raise OSError(errno.EINVAL, "path has a '.' or '..' component")
            last = index == len(parts) - 1
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if create_mode is None or not last:
                    raise
                child = _make_dir(fd, part, create_mode)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _make_dir(parent_fd: int, name: str, mode: int) -> int:
    try:
        os.mkdir(name, mode, dir_fd=parent_fd)
    except FileExistsError:
        pass    # made meanwhile by someone else: opened (and checked by the caller) as found
    child = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    try:
        if os.fstat(child).st_uid == os.geteuid():
            os.fchmod(child, mode)   # mkdir's mode went through the umask
    except BaseException:
        os.close(child)
        raise
    return child


def write_all(fd: int, data: Buffer | list[Buffer], offset: int | None = None) -> int:
    """Write every byte of ``data`` (a buffer or a list of buffers) to ``fd``: at its
    position, or from ``offset`` on (``pwritev``: the position is neither used nor moved)."""
    if not isinstance(data, list):
        data = [data]
    total = 0
    for start in range(0, len(data), _IOV_MAX):
        # bytes as they are (writev takes them; a cast per piece cost a CD-ROM of 80,000 files 0.2 s)
        batch = [piece if type(piece) is bytes else memoryview(piece).cast("B")
                 for piece in data[start:start + _IOV_MAX]]
        total += _writev_all(fd, batch, None if offset is None else offset + total)
    return total


def _writev_all(fd: int, batch: list[bytes | memoryview], offset: int | None) -> int:
    total = sum(len(piece) for piece in batch)
    pending = [piece for piece in batch if piece]
    first = 0
    done = 0
    while first < len(pending):
        rest = pending[first:] if first else pending
        try:
            written = os.writev(fd, rest) if offset is None else os.pwritev(fd, rest, offset + done)
        except BlockingIOError:    # a non-blocking pipe that is full: wait until it drains
            import select
            select.select([], [fd], [])
            continue
        done += written
        while first < len(pending) and written >= len(pending[first]):   # short write: skip what went out
            written -= len(pending[first])
            first += 1
        if first < len(pending) and written:
            pending[first] = memoryview(pending[first]).cast("B")[written:]
    return total


def read_private(dir_fd: int, name: str, limit: int, owner: int,
                 refused: Callable[[], Exception]) -> bytes | None:
    """A file only ``owner`` may read or write, read after its checks (module docstring)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != owner or st.st_mode & 0o077:
            raise refused()
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def unlink_file(dir_fd: int, name: str) -> bool:
    """Unlink ``name`` unless missing or a directory; never follows a link."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        return False
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def write_temp(dir_fd: int, tmp: str, write: Callable[[BinaryIO], T], mode: int,
               sync: bool = True) -> tuple[T, os.stat_result]:
    """The first half of :func:`atomic_write`: ``tmp`` written, moded and synced, not renamed."""
    unlink_file(dir_fd, tmp)
    fd = os.open(tmp, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb", closefd=False) as stream:
            result = write(stream)
            stream.flush()
        os.fchmod(fd, mode)
        if sync:
            os.fsync(fd)
        return result, os.fstat(fd)
    except BaseException:
        _unlink_quietly(dir_fd, tmp)
        raise
    finally:
        os.close(fd)


def _unlink_quietly(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass    # already gone; the caller's error is the one to report


def atomic_write(dir_fd: int, name: str, write: Callable[[BinaryIO], T], mode: int, *,
                 tmp: str | None = None,
                 before_rename: Callable[[os.stat_result], None] | None = None, sync: bool = True,
                 sync_dir: bool = True) -> T:
    """Write ``name`` in ``dir_fd`` through a temporary file and a rename (see module doc).
    ``sync`` False skips both fsyncs: for a file the command makes for a user (an image
    written with ``build -o``), which ``cp`` would not sync either. ``sync_dir`` False keeps
    the file's fsync (after a crash, ``name`` holds the old content or the new, never a
    part) but not the directory's (the rename itself may be lost)."""
    if tmp is None:
        from .filenames import random_tmp_name
        tmp = random_tmp_name()
    result, st = write_temp(dir_fd, tmp, write, mode, sync)
    try:
        if before_rename is not None:
            before_rename(st)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        _unlink_quietly(dir_fd, tmp)
        raise
    if sync and sync_dir:
        os.fsync(dir_fd)
    return result
