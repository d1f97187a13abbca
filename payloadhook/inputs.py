"""Files named on the command line: ``NAME=PATH``, a plain ``PATH``, or a directory."""

from __future__ import annotations

import os

from .errors import PayloadError
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
