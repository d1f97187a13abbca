"""The environment and the few path operations of the hook's cheap paths, over ``posix``.

libvirt runs the hook at every operation of every domain; on most of them it does nothing,
and at ``release`` of a domain without payload it only reads the configuration and looks
for a record. Python started without ``site`` (as the installed hook is) has not imported
``os``, and importing it (``os``, ``posixpath``, ``stat``, ``_collections_abc``) is about
4 million instructions, a fifth of the interpreter's whole start: the cheap paths
(hook.py, config.py, store/records.py) use these functions over the built-in ``posix``
module instead, and ``os`` is imported only where a payload is built. They behave as the
``os`` functions they name (tests/test_config.py holds :func:`normpath` to
``os.path.normpath``).
"""

from __future__ import annotations

import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_ENCODING = sys.getfilesystemencoding()


def fsdecode(raw: bytes) -> str:
    """``os.fsdecode``: bytes from the system as text, undecodable bytes kept as surrogates."""
    return raw.decode(_ENCODING, "surrogateescape")


def getenv(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``environ.get(name)``; ``environ`` None means the process's environment (os.environ)."""
    if environ is not None:
        return environ.get(name)
    raw = posix.environ.get(name.encode(_ENCODING, "surrogateescape"))
    return None if raw is None else fsdecode(raw)


def lexists(path: str) -> bool:
    """``os.path.lexists``: whether ``path`` names anything, a dangling link included."""
    try:
        posix.lstat(path)
    except (OSError, ValueError):
        return False
    return True


def normpath(path: str) -> str:
    """``os.path.normpath`` of an absolute path: no empty or '.' component, '..' taken
    lexically, no trailing '/'; two leading slashes are kept, as POSIX lets them mean
    something else."""
    assert path.startswith("/")
    lead = "//" if path.startswith("//") and not path.startswith("///") else "/"
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return lead + "/".join(parts)
