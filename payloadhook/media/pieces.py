"""Writing an image as a list of pieces, in order: buffers (the image's own structures,
content held as bytes), runs of zeros (:class:`Zeros`: padding, free space) and content held
outside memory (a :class:`payloadhook.model.Source`, an input file of ``build``).

Into a new, empty regular file (what the atomic writers make: local/output.py, the store),
the image's whole size is reserved first (``posix_fallocate``), each piece is written at its
offset, buffers by ``pwritev`` a thousand at a time, a source by the kernel's copy
(local/sources.py), and zeros are not written at all: the reserved blocks read as zeros.
Reserving first refuses a full file system before a byte is copied, and lets it allocate
the image's blocks in one call rather than page by page as they are written, and then, at
the rename over an older image, force that allocation (ext4's ``auto_da_alloc``): on ext4,
a third of a 10 MB build's kernel time (docs/speed.md). Into anything else (a pipe, standard
output, a file that already holds bytes, ``/dev/null``), pieces are written in order at the
descriptor's position, zeros from one shared buffer. Either way no file's content is copied
through Python on its way to the image."""

from __future__ import annotations

import errno
import fcntl
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported on the hook's path
    from typing import BinaryIO, Union

    Piece = Union[bytes, bytearray, memoryview, "Source", "Zeros"]

from ..fileio import write_all
from ..model import Source

#: Zeros written where they must be written (not into a new file), this many at a time.
_ZERO_CHUNK = 1 << 16
_ZERO_BUFFER = memoryview(bytes(_ZERO_CHUNK))
#: What reserving the image's room fails with that is the output's failure, reported as
#: the writer reports it; any other (a file system that cannot reserve) leaves the file to
#: grow as it is written.
_OUTPUT_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Zeros:
    """``size`` zero bytes of an image: padding after a file, free space."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"Zeros({self.size})"


#: One Zeros piece a length of padding, shared by every image.
_PADS: dict[int, Zeros] = {}


def padding(size: int, unit: int) -> Zeros | None:
    """The zeros after ``size`` bytes to the end of their last ``unit`` (a sector); None
    where they end on one."""
    left = -size % unit
    if not left:
        return None
    pad = _PADS.get(left)
    if pad is None:
        pad = _PADS[left] = Zeros(left)
    return pad


def write_pieces(out: BinaryIO, pieces: list[Piece], size: int) -> int:
    """Write ``pieces``, ``size`` bytes in all, to ``out``; return ``size``. To a file (or a
    pipe) by its descriptor, as the module doc says; to anything else (a ``BytesIO``), one
    by one, a source read whole."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:
        total = 0
        for piece in pieces:
            if isinstance(piece, Source):
                total += piece.size
                out.write(piece.read())
            elif isinstance(piece, Zeros):
                total += piece.size
                out.write(bytes(piece.size))
            else:
                total += out.write(piece)
        return _written(total, size)
    flush = getattr(out, "flush", None)
    if flush is not None:
        flush()
    if _is_new_file(out, fd):
        _write_at(fd, pieces, size)
        out.seek(size)    # the file object stands at the end, as if written in order
        return size
    total = 0
    buffers: list[bytes | bytearray | memoryview] = []
    for piece in pieces:
        if isinstance(piece, Source):
            if buffers:
                total += write_all(fd, buffers)
                buffers = []
            piece.write_to(fd)
            total += piece.size
        elif isinstance(piece, Zeros):
            left = piece.size
            while left:
                buffers.append(_ZERO_BUFFER[:min(left, _ZERO_CHUNK)])
                left -= len(buffers[-1])
        else:
            buffers.append(piece)
    if buffers:
        total += write_all(fd, buffers)
    seek = getattr(out, "seek", None)
    if seek is not None and out.seekable():
        seek(os.lseek(fd, 0, os.SEEK_CUR))   # the file object knows where it stands again
    return _written(total, size)


def _is_new_file(out: BinaryIO, fd: int) -> bool:
    """Whether ``out`` is a regular file, empty, at its start, whose descriptor does not
    append: one the pieces may be written into at their offsets. (The descriptor's own flags,
    not the file object's mode: a "wb" object may stand over an O_APPEND descriptor, and
    every write to one lands at its end, whatever offset it names.)"""
    seekable = getattr(out, "seekable", None)
    if seekable is None or not seekable() or fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
        return False
    st = os.fstat(fd)
    return stat.S_ISREG(st.st_mode) and st.st_size == 0 and os.lseek(fd, 0, os.SEEK_CUR) == 0


def _write_at(fd: int, pieces: list[Piece], size: int) -> None:
    """The pieces into the new file ``fd``, each at its offset, after the room is reserved."""
    reserved = True
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in _OUTPUT_ERRORS:
            raise
        reserved = False
    offset = start = 0            # where the buffers waiting to be written start
    buffers: list[bytes | bytearray | memoryview] = []
    for piece in pieces:
        if isinstance(piece, Zeros):
            if buffers:
                write_all(fd, buffers, start)
                buffers = []
            offset += piece.size
            start = offset
        elif isinstance(piece, Source):
            if buffers:
                write_all(fd, buffers, start)
                buffers = []
            piece.write_to(fd, offset)
            offset += piece.size
            start = offset
        else:
            buffers.append(piece)
            offset += len(piece)
    if buffers:
        write_all(fd, buffers, start)
    _written(offset, size)
    if not reserved:
        os.ftruncate(fd, size)    # zeros at the end, not written: the file's size says them


def _written(total: int, size: int) -> int:
    if total != size:   # the layout and the writer disagree: never write a shifted image
        raise AssertionError(f"the image's pieces came to {total} bytes, not {size}")
    return size
