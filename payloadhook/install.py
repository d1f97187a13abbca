"""Placing the hook and its files on a host without an RPM: ``install-hook``, ``uninstall-hook``.

:data:`FILES` is the one list of what is installed, and from where in the source tree: the
RPM spec (packaging/payloadhook.spec) and setup.cfg's data_files are checked against it
(tests/test_installed_files.py). install-hook places :data:`FILES` under an optional root (for
staging and tests); the RPM adds :data:`RPM_ONLY`. Idempotent both ways. Run as root into directories libvirtd trusts,
so: every directory is reached from the root's descriptor one component at a time,
following no symbolic link (nothing is written outside the root, whatever links are
planted below it); directories are made with explicit modes whatever the umask (0755: a
``qemu.d`` others could write would let any user add a hook that libvirtd runs as root);
files go through the one atomic writer; ``uninstall`` removes a file only when it holds
what ``install`` writes.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass

from . import fileio
from .errors import StoreError, UsageError, quote

HOOK = "etc/libvirt/hooks/qemu.d/50-payloadhook"
CONF = "etc/payloadhook/payloadhook.conf"
XSL = "usr/share/payloadhook/redact.xsl"
OVF_XSL = "usr/share/payloadhook/ovf-payloads.xsl"
SCHEMA = "usr/share/payloadhook/payloads.rng"
TMPFILES = "usr/lib/tmpfiles.d/payloadhook.conf"
#: The network seed service's unit; installed, never enabled (the administrator enables it).
SEED_UNIT = "usr/lib/systemd/system/payloadhook-seed.service"
#: The web console: a Cockpit package, as packaging/build-cockpit builds it from cockpit/ into
#: build/cockpit/ (the page's files, and PatternFly's stylesheet and icon font).
COCKPIT_DIR = "usr/share/cockpit/payloadhook"
COCKPIT_BUILD = "build/cockpit"
COCKPIT_FILES = ("manifest.json", "index.html", "payloadhook.js", "validate.js", "theme.js", "payloadhook.css",
                 "patternfly.css", "fa-solid-900.woff2")
COCKPIT = tuple(f"{COCKPIT_DIR}/{name}" for name in COCKPIT_FILES)


@dataclass(frozen=True)
class Installed:
    """One installed file: where (below the root), made from what in the source tree (None:
    written by :func:`hook_script` or :func:`command_script`), its mode, and whether an edited
    copy is kept (the configuration: the RPM's ``%config(noreplace)``)."""

    path: str
    source: str | None
    mode: int = 0o644
    config: bool = False


#: Everything install-hook places, in the order it places them.
FILES: tuple[Installed, ...] = (
    Installed(HOOK, None, 0o755),
    Installed(CONF, "payloadhook/data/payloadhook.conf", config=True),
    Installed(XSL, "xsl/redact.xsl"),
    Installed(OVF_XSL, "xsl/ovf-payloads.xsl"),
    Installed(TMPFILES, "payloadhook/data/tmpfiles.conf"),
    Installed(SCHEMA, "schema/payloads.rng"),
    Installed(SEED_UNIT, None),
    *(Installed(path, f"{COCKPIT_BUILD}/{name}") for path, name in zip(COCKPIT, COCKPIT_FILES)),
)
#: What the RPM installs besides: the command's script (pip makes its own) and gc's unit.
RPM_ONLY: tuple[Installed, ...] = (
    Installed("usr/bin/payloadhook", None, 0o755),
    Installed("usr/lib/systemd/system/payloadhook-gc.service", "packaging/payloadhook-gc.service"),
)
#: The order uninstall-hook removes in: the hook first, so that libvirt stops calling it.
_REMOVAL_ORDER = (HOOK, XSL, OVF_XSL, SCHEMA, TMPFILES, CONF, SEED_UNIT) + COCKPIT
#: Directories install makes, and uninstall removes when they are left empty (the deepest
#: first; usr/share/cockpit itself is Cockpit's).
OWN_DIRS = ("etc/payloadhook", "usr/share/payloadhook", COCKPIT_DIR)
DIR_MODE = 0o755

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


#: What the hook imports from outside the standard library: itself, lxml (the migrate and
#: restore filter), defusedxml (prepare's reader), cryptography (sealed content).
HOOK_IMPORTS = ("payloadhook", "lxml", "defusedxml", "cryptography")
#: What the command imports besides: libvirt's bindings, and YAML for the presets' checks.
COMMAND_IMPORTS = HOOK_IMPORTS + ("libvirt", "yaml")

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
    try:
        found = json.loads(result.stdout)
    except ValueError:
        return None    # not a Python at all (/bin/true answers nothing)
    return found if isinstance(found, list) and all(isinstance(entry, str) for entry in found) else None


#: How both scripts end: flush, then skip CPython's finalization (module teardown and a last
#: garbage collection; docs/speed.md has its cost). Everything the process wrote is flushed
#: and closed by then, and the kernel releases the rest (locks, sockets). The scripts' own
#: comments are part of what uninstall-hook recognises as ours: they stay as they are.
_EXIT = "sys.stdout.flush()\nsys.stderr.flush()\nposix._exit(status)\n"


def _script(python: str, path: list[str] | None, what: str, call: str) -> str:
    if path is None:
        head = f"#!{python} -I\n"
        where = ""
    else:
        head = f"#!{python} -IS\n"   # one word: the kernel passes a shebang's options as one argument
        where = ("# Without site (-S: 2 ms less on every call), from these directories only, found at install:\n"
                 f"sys.path += {path!r}\n")
    # posix, not os: without site, os is not imported yet, and the hook's cheap paths never need it
    # (payloadhook/posixenv.py)
    return (head + what + "import posix\nimport sys\n\n" + where + call +
            "# posix._exit: CPython's finalization would add 3-4 ms (see payloadhook/install.py)\n" + _EXIT)


def hook_script(python: str, path: list[str] | None = None) -> str:
    """The text of the hook run by ``python``, isolated (no PYTHON* variables, no user site).

    Given ``path``, the directories its imports come from, the script starts Python
    without ``site`` (-S), a quarter of Python's start-up saved on every hook call
    (docs/speed.md): it then imports only from the standard library and from ``path``."""
    return _script(python, path, "# libvirt qemu hook of payloadhook: see README.md, \"The hook\". Only dispatches.\n",
                   _NO_GC + "from payloadhook.hook import run\n\n"
                   "status = run(sys.argv, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)\n")


#: The hook is a process of a few milliseconds that makes no cycles of note: the cyclic
#: collector only walks its objects (a fifth of a prepare of 80,000 files, 0.4 s).
_NO_GC = "import gc\n\ngc.disable()    # a short process (see payloadhook/install.py)\n"


def command_script(python: str, path: list[str] | None = None) -> str:
    """The text of the ``payloadhook`` command as the RPM installs it: like :func:`hook_script`."""
    return _script(python, path, "# The payloadhook command: see README.md, \"The command\".\n",
                   "from payloadhook.cli import main\n\n"
                   "status = main()\n")


def data_file(name: str) -> str:
    return os.path.join(PACKAGE_DIR, "data", name)


def xsl_file(name: str, tree_dir: str = "xsl") -> str:
    """A stylesheet (or the schema): installed beside the interpreter's prefix, or in the
    source tree's ``tree_dir``."""
    for candidate in (os.path.join(sys.prefix, "share", "payloadhook", name),
                      os.path.join(os.path.dirname(PACKAGE_DIR), tree_dir, name)):
        if os.path.exists(candidate):
            return candidate
    raise StoreError(f"{name} is not installed with this package")


def cockpit_file(name: str) -> str:
    """A file of the Cockpit package: installed beside the interpreter's prefix (setup.cfg's
    data_files), or built in the source tree's build/cockpit/."""
    for candidate in (os.path.join(sys.prefix, "share", "payloadhook", "cockpit", name),
                      os.path.join(os.path.dirname(PACKAGE_DIR), COCKPIT_BUILD, name)):
        if os.path.exists(candidate):
            return candidate
    raise StoreError(f"the web console's {name} is not built: run packaging/build-cockpit in the source tree "
                     "(it needs node and npm)")


def check_python(python: str) -> None:
    """Refuse an interpreter the hook could not run on: a relative path (libvirtd runs hooks
    from its own directory) or one that cannot import payloadhook (every domain's start would
    fail, payload or not). Checked before anything is written."""
    if not os.path.isabs(python):
        raise UsageError(f"--python {quote(python)} is not an absolute path; the hook needs one "
                         "(example: --python /usr/bin/python3)")
    if import_path(python, ("payloadhook",)) is None:
        raise UsageError(f"--python {quote(python)} cannot run or cannot import payloadhook; the hook would "
                         "fail every domain's start")


@dataclass
class Change:
    path: str
    action: str   # installed, updated, unchanged, kept, removed, secured


def _root_fd(root: str, create: bool = False) -> int:
    """The root named on the command line (followed as given); a missing one is made 0755
    when installing."""
    try:
        if create and not os.path.isdir(root):
            os.makedirs(root, DIR_MODE)
            os.chmod(root, DIR_MODE)
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StoreError(f"cannot use root {root}: {exc.strerror}") from None


def _refuse_link(root: str, relative: str, exc: OSError) -> StoreError:
    if fileio.is_link_error(exc):
        return StoreError(f"{os.path.join(root, relative)}: a component is a symbolic link or not a directory; "
                          f"refusing to follow it out of {root}")
    return StoreError(f"cannot install {os.path.join(root, relative)}: {exc.strerror}")


def _make_dirs(root_fd: int, root: str, relative: str, changes: list[Change]) -> int:
    """A descriptor of ``relative`` below the root, each missing directory made 0755 whatever
    the umask, no symbolic link followed. One of our own directories (OWN_DIRS and the
    hook's) that group or others may write is made 0755 and reported."""
    fd = os.dup(root_fd)
    done = ""
    try:
        for part in relative.split("/"):
            done = done + "/" + part if done else part
            try:
                child = os.open(part, fileio.DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                created = True
                try:
                    os.mkdir(part, DIR_MODE, dir_fd=fd)
                except FileExistsError:
                    created = False    # made meanwhile: opened as found (no link followed)
                child = os.open(part, fileio.DIR_FLAGS, dir_fd=fd)
                if created:
                    os.fchmod(child, DIR_MODE)    # mkdir's mode went through the umask
            os.close(fd)
            fd = child
            st = os.fstat(fd)
            if (done in OWN_DIRS or done.startswith("etc/libvirt/hooks")) and st.st_mode & 0o022:
                os.fchmod(fd, DIR_MODE)
                changes.append(Change(os.path.join(root, done), "secured"))
        return fd
    except OSError as exc:
        os.close(fd)
        raise _refuse_link(root, done, exc) from None


def _read_installed(dir_fd: int, name: str) -> bytes | None:
    """The content of a regular file ``name`` (no link followed); None if missing or not one."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _write(dir_fd: int, name: str, content: bytes, mode: int, replace: bool) -> str:
    exists = _exists(dir_fd, name)
    if _read_installed(dir_fd, name) == content:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return "unchanged"
    if exists and not replace:
        return "kept"
    fileio.atomic_write(dir_fd, name, lambda stream: stream.write(content), mode)
    return "updated" if exists else "installed"


def source_file(source: str) -> str:
    """Where a source-tree file of :data:`FILES` is on this host: in the package (its data/),
    or beside the interpreter's prefix as setup.cfg's data_files put it, or in the tree."""
    directory, name = os.path.split(source)
    if directory == "payloadhook/data":
        return data_file(name)
    if directory == COCKPIT_BUILD:
        return cockpit_file(name)
    return xsl_file(name, directory)


def _content(item: Installed) -> bytes:
    assert item.source is not None
    return _read(source_file(item.source))


def _plan(python: str) -> list[tuple[str, bytes, int, bool]]:
    return [(item.path, _generated(item.path, python) if item.source is None else _content(item),
             item.mode, not item.config) for item in FILES]


def _generated(path: str, python: str) -> bytes:
    """The files install-hook writes for the interpreter it installs for."""
    if path == HOOK:
        return hook_script(python, import_path(python)).encode()
    assert path == SEED_UNIT, path
    return seed_unit(python).encode()


def seed_unit(python: str) -> str:
    """The seed service's unit, running ``payloadhook serve`` on ``python`` (isolated)."""
    from .seed.unit import unit_text
    return unit_text(f"{python} -I -m payloadhook")


def _read(path: str) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


#: dpkg's list of the Debian package's files: where it exists, dpkg owns these files.
DPKG_LIST = "var/lib/dpkg/info/payloadhook.list"


def refuse_packaged(root: str, verb: str) -> None:
    """install-hook and uninstall-hook leave a root where the Debian package is installed to
    dpkg: writing or removing its files behind dpkg's back would break its records."""
    if os.path.exists(os.path.join(root, DPKG_LIST)):
        from .errors import shown
        raise UsageError(f"{verb}: {shown(root)} has the Debian package installed, whose files apt manages "
                         "(apt remove payloadhook)")


def install(root: str = "/", python: str | None = None) -> list[Change]:
    refuse_packaged(root, "install-hook")
    python = python or sys.executable
    check_python(python)
    plan = _plan(python)
    changes: list[Change] = []
    root_fd = _root_fd(root, create=True)
    try:
        for relative, content, mode, replace in plan:
            directory, name = os.path.split(relative)
            dir_fd = _make_dirs(root_fd, root, directory, changes)
            try:
                changes.append(Change(os.path.join(root, relative), _write(dir_fd, name, content, mode, replace)))
            except OSError as exc:
                raise StoreError(f"cannot install {os.path.join(root, relative)}: {exc.strerror}") from None
            finally:
                os.close(dir_fd)
    finally:
        os.close(root_fd)
    return changes


def _is_our_hook(content: bytes) -> bool:
    """Whether ``content`` is a hook :func:`hook_script` writes, for the interpreter and the
    import path it names: the same text, re-made from those two."""
    import ast
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    first = text.split("\n", 1)[0]
    for suffix, with_path in ((" -IS", True), (" -I", False)):
        if first.startswith("#!") and first.endswith(suffix):
            python = first[2:-len(suffix)]
            path = None
            if with_path:
                line = next((line for line in text.splitlines() if line.startswith("sys.path += ")), None)
                try:
                    path = ast.literal_eval(line[len("sys.path += "):]) if line else None
                except (ValueError, SyntaxError):
                    return False
                if not isinstance(path, list):
                    return False
            return hook_script(python, path) == text
    return False


def uninstall(root: str = "/") -> list[Change]:
    """Remove what :func:`install` placed: each file only while it holds what install writes
    (an edited configuration, or a file someone else put there, is kept)."""
    refuse_packaged(root, "uninstall-hook")
    expected = {item.path: _content(item) for item in FILES if item.source is not None}
    changes = []
    root_fd = _root_fd(root)
    try:
        for relative in _REMOVAL_ORDER:
            directory, name = os.path.split(relative)
            path = os.path.join(root, relative)
            try:
                dir_fd = fileio.open_dir(directory, dir_fd=root_fd)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    continue
                raise _refuse_link(root, directory, exc) from None
            try:
                if not _exists(dir_fd, name):
                    continue
                content = _read_installed(dir_fd, name)
                if relative == SEED_UNIT:
                    from .seed.unit import command_of
                    ours = content is not None and command_of(content.decode("utf-8", "replace")) is not None
                else:
                    ours = _is_our_hook(content) if relative == HOOK and content is not None \
                        else content is not None and content == expected.get(relative)
                if not ours:
                    changes.append(Change(path, "kept"))    # edited, or not what install wrote
                    continue
                os.unlink(name, dir_fd=dir_fd)
                changes.append(Change(path, "removed"))
            except OSError as exc:
                raise StoreError(f"cannot remove {path}: {exc.strerror}") from None
            finally:
                os.close(dir_fd)
        for relative in OWN_DIRS:
            parent, name = os.path.split(relative)
            try:
                parent_fd = fileio.open_dir(parent, dir_fd=root_fd)
            except OSError:
                continue
            try:
                os.rmdir(name, dir_fd=parent_fd)
            except OSError:
                pass    # not empty (a kept file), or already gone
            finally:
                os.close(parent_fd)
    finally:
        os.close(root_fd)
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


KEY_DIR = "etc/payloadhook/keys"


def kept_keys(root: str = "/", key_dir: str | None = None) -> str | None:
    """What uninstall leaves on purpose and must say: the sealing keys. ``key_dir`` is the
    configured one (under ``root`` when a root is given); None when there are none."""
    path = os.path.join(root, (key_dir or "/" + KEY_DIR).lstrip("/"))
    try:
        names = os.listdir(path)
    except OSError:
        return None
    keys = sum(1 for name in names if name.endswith(".key"))
    if not keys:
        return None
    from .errors import command as command_line
    from .errors import shown
    where = shown(path, 200)
    command = command_line("rm", "-r", path)
    return (f"kept      {where} ({keys} sealing key{'s' if keys != 1 else ''}: they open every sealed file in "
            f"definitions, backups and exports; '{command}' removes them, and with them every "
            "way to open those files)")
