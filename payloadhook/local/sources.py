"""An input file the command streams into an image (``payloadhook build``): a
:class:`payloadhook.model.Source` over the descriptor that local/files.py opened and checked.

The descriptor stays open from the check to the copy, so the file copied is the file that
was checked, wherever its path leads meanwhile. Its bytes go from that descriptor to the
image by the kernel: ``os.copy_file_range`` (both regular files), else ``os.sendfile`` (an
image on standard output, a pipe), else a read/write loop of at most :data:`CHUNK` bytes at a
time, for a pair of files the kernel copies neither way. The file must still be what was
checked: its size the size checked before the copy, the same after it, the copy not cut
short, and it still linked somewhere (a file removed or replaced by a rename in the
meantime is refused, not copied). Each refusal is one line naming the input; the image
writer's atomic write then leaves no image.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import PayloadError, UsageError
from ..errors import shown_path as show
from ..model import Source

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..model import PayloadFile

#: The bounded loop's buffer, where the kernel copies neither way.
CHUNK = 1 << 20
#: What the copy calls refuse with for a pair of descriptors they do not copy between (a
#: pipe, files on two file systems, a file system without the call): then the next way.
_NOT_THIS_WAY = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF,
                 errno.EPERM, errno.ETXTBSY)
#: Failures that are the output's (the image), reported as the writer reports them.
_OUTPUT_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EPIPE)


#: Descriptors left free for everything else the command opens (the image, directories).
_SPARE_DESCRIPTORS = 64


def descriptors_to_hold() -> int:
    """How far input files may be held open: the soft limit on open files raised to the
    hard one (a 1,000-file build needs more than the usual 1,024), less a spare; a file
    whose descriptor is past it is read into memory instead (local/files.py)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass    # kept as it is: fewer files are streamed
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(0, soft - _SPARE_DESCRIPTORS)


class InputFile(Source):
    """An opened, checked regular file of ``size`` bytes, named ``path`` in messages."""

    __slots__ = ("_fd", "_path", "_size")

    def __init__(self, fd: int, path: str, size: int) -> None:
        self._fd = fd
        self._path = path
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"InputFile({show(self._path)}, {self._size} bytes)"

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:    # a payload dropped without a build closes its files
        self.close()

    def is_file(self, st: os.stat_result) -> bool:
        """Whether ``st`` (another descriptor's fstat) is this very file."""
        mine = os.fstat(self._fd)
        return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)

    @property
    def path(self) -> str:
        return self._path

    def _changed(self, how: str) -> PayloadError:
        return PayloadError(f"input {show(self._path)} {how} while the image was built")

    def _check(self) -> None:
        """Refuse the file unless it is still what was checked: its size, and linked."""
        st = os.fstat(self._fd)
        if st.st_size != self._size:
            raise self._changed(f"changed size ({self._size} bytes, now {st.st_size})")
        if st.st_nlink == 0:
            raise self._changed("was removed")

    def write_to(self, fd: int, offset: int | None = None) -> None:
        """Copy the file's bytes into ``fd``, at its position or from ``offset`` on (see the
        module doc): then the file must still be as checked. (A file that shrank cuts the
        copy short, one that grew has another size after it, one removed or renamed over has
        no link.)"""
        size = self._size
        try:
            try:    # the common case: one call copies it all
                done = os.copy_file_range(self._fd, fd, size, 0, offset)
            except OSError as exc:
                if exc.errno not in _NOT_THIS_WAY:
                    raise
                done = 0
            else:
                if 0 < done < size:
                    done += _copy_file_range(self._fd, fd, size, done, offset)
            if done == 0:    # not copied this way (or the file is empty now): the next ways
                if offset is not None:
                    os.lseek(fd, offset, os.SEEK_SET)    # they write at the position
                done = _sendfile(self._fd, fd, size)
                if done <= 0:
                    done = _loop(self._fd, fd, size)
            if done != size:
                raise self._changed(f"changed size ({size} bytes, {done} copied)")
            self._check()
        except OSError as exc:
            if exc.errno in _OUTPUT_ERRORS:
                raise
            raise PayloadError(f"input {show(self._path)} cannot be read: {exc.strerror}") from None

    def read(self) -> bytes:
        try:
            self._check()
            data = os.pread(self._fd, self._size + 1, 0)
        except OSError as exc:
            raise PayloadError(f"input {show(self._path)} cannot be read: {exc.strerror}") from None
        if len(data) != self._size:
            raise PayloadError(f"input {show(self._path)} changed size ({self._size} bytes, now {len(data)}) "
                               "while being read")
        return data


def _copy_file_range(source: int, out: int, size: int, done: int, offset: int | None) -> int:
    """Bytes copied by ``copy_file_range`` from offset ``done`` of ``source`` to ``out`` (at
    its position, or at ``offset`` + ``done``), until ``size`` or the end of ``source``."""
    start = done
    while done < size:
        copied = os.copy_file_range(source, out, size - done, done, None if offset is None else offset + done)
        if copied == 0:
            break
        done += copied
    return done - start


def _sendfile(source: int, out: int, size: int) -> int:
    """Bytes copied from offset 0 of ``source`` to ``out`` at its position, until ``size`` or
    the end of ``source``, by ``sendfile`` (whose output may be a pipe); -1 when the kernel
    will not copy between these two."""
    done = 0
    while done < size:
        try:
            sent = os.sendfile(out, source, done, size - done)
        except BlockingIOError:    # a non-blocking pipe that is full: wait until it drains
            import select
            select.select([], [out], [])
            continue
        except OSError as exc:
            if done == 0 and exc.errno in _NOT_THIS_WAY:
                return -1
            raise
        if sent == 0:
            break
        done += sent
    return done


def _loop(source: int, out: int, size: int) -> int:
    """As :func:`_sendfile`, through a buffer of at most :data:`CHUNK` bytes."""
    from ..fileio import write_all
    done = 0
    while done < size:
        data = os.pread(source, min(CHUNK, size - done), done)
        if not data:
            break
        write_all(out, data)
        done += len(data)
    return done


def require_standard_output() -> None:
    """Refuse ``-o -`` with standard output closed: checked before any input is opened, since
    an input opened then would take descriptor 1 and stand where the image should go."""
    try:
        os.fstat(1)
    except OSError:
        raise UsageError("standard output is closed: give the image a file with -o FILE") from None


def refuse_output_into_inputs(files: Iterable[PayloadFile], fd: int) -> None:
    """Refuse to write an image to ``fd`` (standard output) where it is one of its streamed
    input files (``-o - >> input``): the image's first pieces would land in the input before
    the input is copied. (``-o FILE`` onto an input is safe: the atomic writer writes a new
    file and renames it over, and the input held open keeps its own bytes.)"""
    try:
        st = os.fstat(fd)
    except OSError:
        raise UsageError("standard output is closed: give the image a file with -o FILE") from None
    if not stat.S_ISREG(st.st_mode):
        return
    for file in files:
        data = file.data
        if isinstance(data, InputFile) and data.is_file(st):
            raise UsageError(f"standard output is the input {show(data.path)}: the image would be written into "
                             "its own input; write it with -o FILE instead")
