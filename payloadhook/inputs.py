"""Files named on the command line: inputs (``NAME=PATH``, a plain ``PATH``, a directory)
and the outputs the command writes (images, OVFs, domain XML), replaced atomically."""

from __future__ import annotations

import os
import tempfile

from .errors import PayloadError, StoreError
from .model import PayloadFile


def _read(path: str, name: str) -> PayloadFile:
    try:
        with open(path, "rb") as stream:
            return PayloadFile(name=name, content=stream.read())
    except OSError as exc:
        raise PayloadError(f"input file {path} cannot be read: {exc.strerror}") from None


def files_from_args(args: list[str]) -> tuple[PayloadFile, ...]:
    """A directory contributes every file below it, named by its relative path;
    ``NAME=PATH`` names one file; any other argument is a file named by its base name."""
    files: list[PayloadFile] = []
    for arg in args:
        if os.path.isdir(arg):
            found = []
            for dirpath, dirnames, filenames in os.walk(arg):
                dirnames.sort()
                for filename in sorted(filenames):
                    path = os.path.join(dirpath, filename)
                    found.append((os.path.relpath(path, arg).replace(os.sep, "/"), path))
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
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as exc:
        raise PayloadError(f"{what} {path} cannot be read: {exc.strerror}") from None


def write_atomically(path: str, write):
    """Call ``write(stream)`` on a temporary file beside ``path``, then rename it into place;
    on any failure nothing is left. Returns what ``write`` returned."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".payloadhook-")
        with os.fdopen(fd, "wb") as stream:
            result = write(stream)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o644 & ~mask)
        os.replace(tmp, path)
        tmp = None
        return result
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
