"""Where the tests, the benchmarks and the demo keep what QEMU must read.

QEMU runs as ``libvirt-qemu``, not root. A clone under /root (mode 0700) is closed to it, so
the guest's kernel and initramfs, console logs and the XML files handed to libvirt live
outside the clone, in directories of mode 0755 whose every parent QEMU can traverse:

- ``/var/cache/payloadhook-guest``: the tiny guest (tinyguest.py), shared by the tests, the
  benchmarks and the demo (``PAYLOADHOOK_GUEST_CACHE`` names another directory);
- ``/var/cache/payloadhook-tests/libvirt``: the test libvirtd's cache of QEMU's capabilities
  (read by libvirtd only, kept here so that a clone holds no state);
- ``/var/tmp/payloadhook-tests``: one directory per test session for what a test hands to
  QEMU (``workdir``), removed when the session passes.
"""

from __future__ import annotations

import os
import stat

GUEST_CACHE = os.environ.get("PAYLOADHOOK_GUEST_CACHE", "/var/cache/payloadhook-guest")
LIBVIRT_CACHE = "/var/cache/payloadhook-tests/libvirt"
WORK_ROOT = "/var/tmp/payloadhook-tests"


def qemu_readable_dir(path: str) -> str:
    """Create ``path`` (mode 0755, as are the directories created above it) and check that
    QEMU's user can reach it. Existing parents are not changed: one closed to others is an
    error that names it, rather than a chmod of a directory that is not ours."""
    path = os.path.abspath(path)
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    for directory in reversed(missing):
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o755)
    if missing == [] and not os.stat(path).st_mode & stat.S_IROTH:
        raise RuntimeError(f"{path} is not readable by others (mode {os.stat(path).st_mode & 0o7777:o}); "
                           "QEMU, running as libvirt-qemu, must read it")
    for parent in [path, *_parents(path)]:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            raise RuntimeError(f"{parent} is closed to other users (mode {os.stat(parent).st_mode & 0o7777:o}), "
                               f"so QEMU, running as libvirt-qemu, cannot reach {path}; choose another directory")
    return path


def _parents(path: str) -> list[str]:
    parents = []
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        parents.append(path)
    return parents
