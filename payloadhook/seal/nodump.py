"""No core dump of a process that holds plaintext: called before sealed content is opened
or sealed (seal/opening.py, seal/sealing.py), and by the command's main before any verb reads
its input (cli/__init__.py: what a verb reads may be plaintext it is about to seal), so the
hook's prepare, ``check``, ``reseal`` and the command's sealing never leave opened files, or
the keys, or input about to be sealed, in a core file.

Two switches, both for the rest of the process: ``RLIMIT_CORE`` 0 (the soft limit, which is
the one the kernel applies: no core file, whatever ``ulimit -c`` the process was started with;
set by libc's prlimit64 through seal/cfunctions.py, as prctl is, rather than ``resource``)
and ``PR_SET_DUMPABLE`` 0 (no
core at all where ``fs.suid_dumpable`` is 0, the kernel's default; and no ptrace attach by
another process of the same user, nor its /proc/PID/mem). What this cannot stop: root, and a
host that sets ``fs.suid_dumpable = 2`` together with a ``core_pattern`` pipe (systemd-coredump):
the kernel then hands even a non-dumpable process's core to that helper, readable by root.
Neither is ever on the hook's path for a domain without payload: the hook imports this module
only where sealed content is handled (the command imports it for every verb).
"""

from __future__ import annotations

from ..errors import SealError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
RLIMIT_CORE = 4             # the same on every Linux architecture
RLIMIT64_BYTES = 16

_done: list[bool] = []


def forbid_core_dumps() -> None:
    """Turn core dumps off for this process, once; SealError when the kernel refuses."""
    if _done:
        return
    try:
        _no_core_file()
    except (OSError, ValueError) as exc:
        raise SealError(f"cannot turn core dumps off before opening sealed content: {exc}") from None
    prctl, get_errno = _prctl()
    if prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise SealError("cannot turn core dumps off before opening sealed content: prctl(PR_SET_DUMPABLE) "
                        f"failed ({get_errno()})")
    _done.append(True)


def _no_core_file() -> None:
    """RLIMIT_CORE's soft limit 0, its hard limit kept: by libc's prlimit64(2) through
    seal/cfunctions.py (importing ``resource`` would cost the sealed prepare 300,000
    instructions more), by ``resource`` where that cannot be had. OSError as the kernel's."""
    from . import cfunctions as c
    try:
        prlimit = c.function(c.library((None,)), "prlimit64", c.INT, None)
    except c.Unavailable:   # pragma: no cover - every glibc since 2.13 has prlimit64
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
        return
    # struct rlimit64: two 64-bit rlim64_t, the soft limit then the hard one, in this CPU's order
    old = c.buffer(RLIMIT64_BYTES)
    if prlimit(0, RLIMIT_CORE, None, c.pointer(old)) != 0:
        _raise_errno(c.get_errno())
    new = bytes(RLIMIT64_BYTES // 2) + old[RLIMIT64_BYTES // 2:]
    if prlimit(0, RLIMIT_CORE, new, None) != 0:
        _raise_errno(c.get_errno())


def _raise_errno(number: int) -> None:
    """The OSError ``resource`` raises for errno ``number`` (``[Errno N] message``)."""
    import os
    raise OSError(number, os.strerror(number))


def is_dumpable() -> bool:
    """Whether this process may dump core (PR_GET_DUMPABLE), for tests and checks."""
    return int(_prctl()[0](PR_GET_DUMPABLE, 0, 0, 0, 0)) != 0


def _prctl() -> tuple[Any, Callable[[], int]]:
    """libc's prctl(2) and the errno it set: through seal/cfunctions.py (the hook's sealed path
    without ``ctypes``' import), or ctypes where that cannot be had."""
    from . import cfunctions
    try:
        return cfunctions.function(cfunctions.library((None,)), "prctl", cfunctions.INT, None), cfunctions.get_errno
    except cfunctions.Unavailable:   # pragma: no cover - every CPython on Linux has _ctypes
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl, ctypes.get_errno
