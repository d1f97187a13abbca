"""Files named on the command line: inputs (``NAME=PATH``, a plain ``PATH``, a directory)
and the outputs the command writes (images, OVFs, domain XML), replaced atomically."""

from __future__ import annotations

import os

from ..errors import PayloadError, StoreError
from ..model import PayloadFile


def _read(path: str, name: str) -> PayloadFile:
    try:
        return PayloadFile(name=name, content=_read_all(path))
    except OSError as exc:
        raise PayloadError(f"input file {path} cannot be read: {exc.strerror}") from None


def _read_all(path: str) -> bytes:
    """A file's bytes, read at the size fstat gives: one allocation, four system calls.
    Only where fstat knows no size (a pipe, /proc) is the file read to its end."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size) if size else b""
        if len(data) == size and size:
            return data
        chunks = [data]
        while True:
            more = os.read(fd, 1 << 16)
            if not more:
                return b"".join(chunks)
            chunks.append(more)
    finally:
        os.close(fd)


def _walk(directory: str, prefix: str, found: list[tuple[str, str]]) -> None:
    """Every file below ``directory`` as (name, path), sorted by name. As with os.walk, a
    link to a file is read and a link to a directory is not followed (no loops)."""
    with os.scandir(directory) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        if entry.is_dir():
            if not entry.is_symlink():
                _walk(entry.path, prefix + entry.name + "/", found)
        else:
            found.append((prefix + entry.name, entry.path))


def files_from_args(args: list[str]) -> tuple[PayloadFile, ...]:
    """A directory contributes every file below it, named by its relative path;
    ``NAME=PATH`` names one file; any other argument is a file named by its base name."""
    files: list[PayloadFile] = []
    for arg in args:
        if os.path.isdir(arg):
            found: list[tuple[str, str]] = []
            _walk(arg, "", found)
            if not found:
                raise PayloadError(f"input directory {arg} holds no files")
            files.extend(_read(path, name) for name, path in found)
        elif "=" in arg and not os.path.exists(arg):
            name, _, path = arg.partition("=")
            files.append(_read(path, name))
        elif os.path.exists(arg):
            files.append(_read(arg, os.path.basename(arg.rstrip("/"))))
        else:
            raise PayloadError(f"input {arg} does not exist (give NAME=PATH, a file or a directory)")
    return tuple(files)


def read_file(path: str, what: str) -> bytes:
    try:
        return _read_all(path)
    except OSError as exc:
        raise PayloadError(f"{what} {path} cannot be read: {exc.strerror}") from None


def write_atomically(path: str, write, mode: int | None = None):
    """Call ``write(stream)`` on a temporary file beside ``path``, then rename it into place
    with ``mode`` (default: 0644 less the umask); on any failure nothing is left. Returns
    what ``write`` returned."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        # (not tempfile: its import costs 2 ms of every build)
        name = os.path.join(directory, f".payloadhook-{os.getpid()}-{os.urandom(6).hex()}")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        tmp = name
        with os.fdopen(fd, "wb") as stream:
            result = write(stream)
        if mode is None:
            mask = os.umask(0)
            os.umask(mask)
            mode = 0o644 & ~mask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
        return result
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
