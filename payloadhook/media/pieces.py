"""Writing an image as a list of pieces, in order: buffers (the image's own structures,
content held as bytes, zeros) by ``writev``, a thousand at a time, never joined; content held
outside memory (a :class:`payloadhook.model.Source`, an input file of ``build``) by the
kernel's copy into the same descriptor (local/sources.py). Either way no file's content is
copied through Python on its way to the image."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported on the hook's path
    from typing import BinaryIO, Union

    Piece = Union[bytes, bytearray, memoryview, "Source"]

from ..fileio import write_all
from ..model import Source


def write_pieces(out: BinaryIO, pieces: list[Piece]) -> int:
    """Write ``pieces`` to ``out``; return the bytes written. To a file (or a pipe) by its
    descriptor; to anything else (a ``BytesIO``), one by one, a source read whole."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    total = 0
    if fd is None:
        for piece in pieces:
            if isinstance(piece, Source):
                total += piece.size
                out.write(piece.read())
            else:
                total += out.write(piece)
        return total
    flush = getattr(out, "flush", None)
    if flush is not None:
        flush()
    buffers: list[bytes | bytearray | memoryview] = []
    for piece in pieces:
        if isinstance(piece, Source):
            if buffers:   # one buffer (the padding after a file, most often) by write, not writev's batching
                total += write_all(fd, buffers if len(buffers) > 1 else buffers[0])
                buffers = []
            piece.write_to(fd)
            total += piece.size
        else:
            buffers.append(piece)
    if buffers:
        total += write_all(fd, buffers)
    seek = getattr(out, "seek", None)
    if seek is not None and out.seekable():
        seek(os.lseek(fd, 0, os.SEEK_CUR))   # the file object knows where it stands again
    return total
