"""Placing the hook and its files on a host without an RPM: ``install-hook``, ``uninstall-hook``.

The same files as packaging/payloadhook.spec installs, under an optional root (for
staging and tests). Idempotent both ways.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

from .errors import StoreError
from .cli.inputs import write_atomically

HOOK = "etc/libvirt/hooks/qemu.d/50-payloadhook"
CONF = "etc/payloadhook/payloadhook.conf"
XSL = "usr/share/payloadhook/redact.xsl"
OVF_XSL = "usr/share/payloadhook/ovf-payloads.xsl"
TMPFILES = "usr/lib/tmpfiles.d/payloadhook.conf"

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


#: What the hook imports from outside the standard library: itself, pyfatfs (floppies),
#: lxml (the migrate and restore filter).
HOOK_IMPORTS = ("payloadhook", "pyfatfs", "lxml")
#: What the command imports besides: libvirt's bindings.
COMMAND_IMPORTS = HOOK_IMPORTS + ("libvirt",)

_FIND_PATH = """
import importlib.util, json, os, sys
found = []
for name in sys.argv[1:]:
    spec = importlib.util.find_spec(name)
    if spec is None:
        sys.exit(1)
    where = spec.submodule_search_locations[0] if spec.submodule_search_locations else spec.origin
    entry = os.path.dirname(os.path.abspath(where))
    if entry not in found:
        found.append(entry)
print(json.dumps(found))
"""


def import_path(python: str, modules: tuple[str, ...] | None = None) -> list[str] | None:
    """The directories ``python`` imports ``modules`` (default: HOOK_IMPORTS) from; None if
    it cannot import one of them."""
    import json
    try:
        result = subprocess.run([python, "-I", "-c", _FIND_PATH, *(modules or HOOK_IMPORTS)],
                                capture_output=True, text=True)
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


#: How both scripts end: flush, then skip CPython's finalization (module teardown and a last
#: garbage collection: 3-4 ms here, a sixth of a CD-ROM prepare). Everything the process
#: wrote is flushed and closed by then, and the kernel releases the rest (locks, sockets).
_EXIT = "sys.stdout.flush()\nsys.stderr.flush()\nos._exit(status)\n"


def _script(python: str, path: list[str] | None, what: str, call: str) -> str:
    if path is None:
        head = f"#!{python} -I\n"
        where = ""
    else:
        head = f"#!{python} -IS\n"   # one word: the kernel passes a shebang's options as one argument
        where = ("# Without site (-S: 2 ms less on every call), from these directories only, found at install:\n"
                 f"sys.path += {path!r}\n")
    return (head + what + "import os\nimport sys\n\n" + where + call +
            "# os._exit: CPython's finalization would add 3-4 ms (see payloadhook/install.py)\n" + _EXIT)


def hook_script(python: str, path: list[str] | None = None) -> str:
    """The text of the hook run by ``python``, isolated (no PYTHON* variables, no user site).

    Given ``path``, the directories its imports come from, the script starts Python
    without ``site`` (-S), which saves 2 ms of every hook call (a quarter of Python's
    start-up): it then imports only from the standard library and from ``path``."""
    return _script(python, path, "# libvirt qemu hook of payloadhook: see README.md, \"The hook\". Only dispatches.\n",
                   "from payloadhook.hook import run\n\n"
                   "status = run(sys.argv, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)\n")


def command_script(python: str, path: list[str] | None = None) -> str:
    """The text of the ``payloadhook`` command as the RPM installs it: like :func:`hook_script`."""
    return _script(python, path, "# The payloadhook command: see README.md, \"The command\".\n",
                   "from payloadhook.cli import main\n\n"
                   "status = main()\n")


def data_file(name: str) -> str:
    return os.path.join(PACKAGE_DIR, "data", name)


def xsl_file(name: str) -> str:
    """A stylesheet: installed beside the interpreter's prefix, or in the source tree."""
    for candidate in (os.path.join(sys.prefix, "share", "payloadhook", name),
                      os.path.join(os.path.dirname(PACKAGE_DIR), "xsl", name)):
        if os.path.exists(candidate):
            return candidate
    raise StoreError(f"{name} is not installed with this package")


@dataclass
class Change:
    path: str
    action: str   # installed, updated, unchanged, kept, removed


def _write(path: str, content: bytes, mode: int, replace: bool = True) -> str:
    try:
        with open(path, "rb") as stream:
            if stream.read() == content:
                os.chmod(path, mode)
                return "unchanged"
        if not replace:
            return "kept"
        action = "updated"
    except FileNotFoundError:
        action = "installed"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, lambda stream: stream.write(content), mode)
    return action


def _read(path: str) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


def install(root: str = "/", python: str | None = None) -> list[Change]:
    python = python or sys.executable
    plan = [
        (HOOK, hook_script(python, import_path(python)).encode(), 0o755, True),
        (CONF, _read(data_file("payloadhook.conf")), 0o644, False),   # like %config(noreplace)
        (XSL, _read(xsl_file("redact.xsl")), 0o644, True),
        (OVF_XSL, _read(xsl_file("ovf-payloads.xsl")), 0o644, True),
        (TMPFILES, _read(data_file("tmpfiles.conf")), 0o644, True),
    ]
    changes = []
    try:
        for relative, content, mode, replace in plan:
            path = os.path.join(root, relative)
            changes.append(Change(path, _write(path, content, mode, replace)))
    except OSError as exc:
        raise StoreError(f"cannot install {exc.filename}: {exc.strerror}") from None
    return changes


def uninstall(root: str = "/") -> list[Change]:
    changes = []
    template = _read(data_file("payloadhook.conf"))
    for relative in (HOOK, XSL, OVF_XSL, TMPFILES, CONF):
        path = os.path.join(root, relative)
        if not os.path.lexists(path):
            continue
        if relative == CONF and _read(path) != template:
            changes.append(Change(path, "kept"))    # edited by the administrator
            continue
        try:
            os.unlink(path)
        except OSError as exc:
            raise StoreError(f"cannot remove {path}: {exc.strerror}") from None
        changes.append(Change(path, "removed"))
    for relative in (os.path.dirname(CONF), os.path.dirname(XSL)):
        try:
            os.rmdir(os.path.join(root, relative))
        except OSError:
            pass
    return changes


def reload_libvirt() -> str:
    """Make libvirt notice a new hook: systemd's reload where it runs, else SIGHUP to libvirtd."""
    if os.path.isdir("/run/systemd/system") and shutil.which("systemctl"):
        units = [u for u in ("libvirtd.service", "virtqemud.service")
                 if subprocess.run(["systemctl", "is-active", "--quiet", u]).returncode == 0]
        if units:
            subprocess.run(["systemctl", "reload-or-restart", *units], check=False)
            return "reloaded " + ", ".join(units)
        return "no libvirt daemon is running; it will find the hook when it starts"
    for daemon in ("virtqemud", "libvirtd"):
        try:
            with open(f"/run/{daemon}.pid") as stream:
                pid = int(stream.read().strip())
            os.kill(pid, signal.SIGHUP)
            return f"sent SIGHUP to {daemon} ({pid})"
        except (OSError, ValueError):
            continue
    return "no libvirt daemon is running; it will find the hook when it starts"
