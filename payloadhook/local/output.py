"""Where the command writes a file it makes (``build -o``, ``ovf … -o``, a merge or an import
in place): through the one atomic writer (:func:`payloadhook.local.paths.write_file`), or, for ``-o -``,
to standard output. The path is walked by the rule of :mod:`payloadhook.local.paths`: no symbolic
link another user owns is followed, nothing is written in a directory another user owns
(write in your working directory, or in /tmp itself, instead) and no file another user owns
is written over; an existing file of root's keeps its mode and owner, a new one gets ``mode``
(:data:`CONTENT_MODE` for anything holding payload content)."""

from __future__ import annotations

import sys

STDOUT = "-"
#: A new file that holds payload content (an image, an OVF or domain XML with content) is
#: readable by its owner alone; an existing file keeps its mode.
CONTENT_MODE = 0o600


class _Stdout:
    """Standard output as a stream for the image writers: its descriptor, which they write
    to piece by piece, each in full (and a streamed input file by sendfile, as into a pipe);
    no seek (a pipe cannot)."""

    def fileno(self) -> int:
        return 1

    def write(self, data) -> int:
        from ..fileio import write_all
        return write_all(1, data)


def write_output(path: str, write, *, mode: int | None = None, sync: bool = True):
    """``write(stream)`` into ``path`` (see the module doc); returns what ``write`` returned.
    ``mode`` is a new file's (default: 0644 less the umask); an existing one keeps its own.
    ``sync`` False: no fsync, for an image a user can build again (as cp or genisoimage)."""
    if path == STDOUT:
        sys.stdout.flush()
        return write(_Stdout())
    from .paths import write_file
    if mode is None:
        import os
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o644 & ~mask
    return write_file(path, write, mode=mode, sync=sync)

