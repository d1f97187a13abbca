"""The rule for a path a user names on the command line, for the command's inputs and outputs.

The command runs as root, and other users may own parts of a path it is given: this module
walks such a path by one rule, and writes the command's outputs by it (through the atomic
writer of :mod:`payloadhook.fileio`).

API
===

``resolve(path, *, follow_any=False, owned_dirs=False, last=False, start=None) -> Resolved``
    Walks a path a user named on the command line, by the one rule below (a relative one
    from ``start``, a ``(descriptor, path)`` pair, when given), and returns where
    it led: ``dir_fd`` (the directory holding the last component; the caller closes it, or
    uses the result as a context manager), ``name`` (the last component, ``"."`` when the
    path ends at a directory such as ``/`` or ``a/..``), ``where`` (the path as walked, for
    messages) and ``st`` (with ``last``, the last component's ``lstat``; None when missing).
    Raises :class:`ForeignOwner` (``kind`` "link" or "directory", ``where``, ``uid``) or
    ``OSError`` (``ENOENT``, ``ENOTDIR``, ``ELOOP`` past :data:`MAX_LINKS` links).

``write_file(path, write, *, mode=None, keep=True) -> T``
    The command's outputs: :func:`atomic_write` into the directory :func:`resolve` reaches
    with ``owned_dirs``. Refuses (with ``StoreError``, one line) to replace anything that is
    not a regular file (a device, a FIFO, a symbolic link, a directory) or a file that
    belongs to another user. With ``keep``, an existing file's mode and owner carry over
    (``fchmod``, ``fchown``); a new file gets ``mode`` (default ``0o666`` less the umask, as
    ``open`` would). ``OSError`` becomes ``StoreError("cannot write PATH: reason")``.

The rule for a path a user names (the command runs as root; other users may own parts of it)
================================================================================================

A path is walked one component at a time from ``/`` (absolute) or from the current directory
(relative: the caller's working directory is trusted), each directory opened with
``O_NOFOLLOW|O_DIRECTORY`` relative to the previous one. A symbolic link met on the way is
followed only when it belongs to root or to the effective user, as Linux's
``fs.protected_symlinks`` would have it: a link another user planted is never followed
(inputs follow it only when the user asks, ``--follow-symlinks``). Its target goes through
the same walk; ``..`` is the directory's real parent; after :data:`MAX_LINKS` links the walk
fails with ``ELOOP``.

For an output, every directory reached after the first must belong to root or the effective
user (a sticky root directory such as ``/tmp`` does): another user's directory can have its
entries swapped under the writer, so nothing is written there. An existing target that
belongs to another user is never written over; an existing file of root's or the effective
user's keeps its mode and owner; a new one gets the mode it is given.

For an input, the last component is followed under the same rule; the file is then opened
relative to its directory's descriptor with ``O_NOFOLLOW``, so it is the file the walk found.
"""

from __future__ import annotations

import errno
import os
import stat

from ..fileio import DIR_FLAGS, atomic_write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Callable, TypeVar

    T = TypeVar("T")

#: The most symbolic links followed on one path, as the kernel's MAXSYMLINKS.
MAX_LINKS = 40
_LINK_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class ForeignOwner(Exception):
    """A symbolic link or a directory met on a path belongs to another user. ``where`` is the
    path as far as it was walked (link targets substituted; raw: the caller escapes it)."""

    def __init__(self, kind: str, where: str, uid: int) -> None:
        super().__init__(kind, where, uid)
        self.kind, self.where, self.uid = kind, where, uid

    def __str__(self) -> str:
        if self.kind == "link":
            return f"{self.where} is a symbolic link owned by another user (uid {self.uid})"
        return f"{self.where} belongs to another user (uid {self.uid})"


class Resolved:
    """Where a path led (see :func:`resolve`); closes ``dir_fd`` as a context manager."""

    __slots__ = ("dir_fd", "name", "where", "st", "borrowed")

    def __init__(self, dir_fd: int, name: str, where: str, st: os.stat_result | None,
                 borrowed: bool = False) -> None:
        self.dir_fd, self.name, self.where, self.st = dir_fd, name, where, st
        self.borrowed = borrowed    # dir_fd is the caller's, left open

    def close(self) -> None:
        if not self.borrowed:
            os.close(self.dir_fd)

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def trusted_owner(uid: int) -> bool:
    """Root or the effective user: the owners whose links are followed and whose directories
    and files the command writes in."""
    return uid == 0 or uid == os.geteuid()


def _show_path(parts: list[str], absolute: bool) -> str:
    text = "/".join(parts)
    return "/" + text if absolute else text or "."


def resolve(path: str, *, follow_any: bool = False, owned_dirs: bool = False, last: bool = False,
            start: tuple[int, str] | None = None) -> Resolved:
    """Walk the path a user named, by the rule in the module doc. ``start``: a relative
    ``path`` is walked from this directory descriptor instead of the working directory (one
    the caller reached by this rule; the string is what it stands for, in messages)."""
    if not path:
        raise OSError(errno.ENOENT, "empty path")
    absolute = path.startswith("/")
    if start is not None and not absolute:
        fd = os.dup(start[0])
        absolute = start[1].startswith("/")
        shown = [part for part in start[1].split("/") if part]
    else:
        fd = os.open("/" if absolute else ".", DIR_FLAGS)
        shown = []
    pending = [part for part in reversed(path.split("/")) if part not in ("", ".")]
    links = 0
    try:
        while pending:
            part = pending.pop()
            if not pending and part != "..":    # the last component
                where = _show_path(shown + [part], absolute)
                if not last:
                    return Resolved(fd, part, where, None)
                try:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    return Resolved(fd, part, where, None)
                if not stat.S_ISLNK(st.st_mode):
                    return Resolved(fd, part, where, st)
                child = None
            else:
                try:
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR) or part == "..":
                        raise
                    child = None
            if child is None:    # a symbolic link (or, on the way, not a directory)
                target = _link_target(fd, part, _show_path(shown + [part], absolute), follow_any)
                if target is None:
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, f"more than {MAX_LINKS} symbolic links on the path")
                if not target:
                    raise OSError(errno.ENOENT, "an empty symbolic link")
                if target.startswith("/"):
                    child = os.open("/", DIR_FLAGS)
                    os.close(fd)
                    fd, shown, absolute = child, [], True
                pending.extend(part for part in reversed(target.split("/")) if part not in ("", "."))
                continue
            if part != "..":
                shown.append(part)
            elif shown and shown[-1] != "..":
                shown.pop()
            elif not absolute:
                shown.append("..")
            if owned_dirs:
                owner = os.fstat(child).st_uid
                if not trusted_owner(owner):
                    os.close(child)
                    raise ForeignOwner("directory", _show_path(shown, absolute), owner)
            os.close(fd)
            fd = child
        # the path ends at a directory: "/", "a/..", or a link to one
        return Resolved(fd, ".", _show_path(shown, absolute), os.fstat(fd) if last else None)
    except BaseException:
        os.close(fd)
        raise


def _link_target(dir_fd: int, name: str, where: str, follow_any: bool) -> str | None:
    """The target of the symbolic link ``name`` if the rule lets it be followed; None when
    ``name`` is not a link; :class:`ForeignOwner` when another user owns it. Read through one
    descriptor of the link, so the link whose owner is checked is the link read."""
    try:
        link_fd = os.open(name, _LINK_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(link_fd)
        if not stat.S_ISLNK(st.st_mode):
            return None
        if not follow_any and not trusted_owner(st.st_uid):
            raise ForeignOwner("link", where, st.st_uid)
        return os.readlink("", dir_fd=link_fd)
    finally:
        os.close(link_fd)


def write_file(path: str, write: Callable[[BinaryIO], T], *, mode: int | None = None,
               keep: bool = True, sync: bool = True) -> T:
    """Replace the regular file ``path`` (or create it) atomically; see module doc."""
    from ..errors import StoreError, shown_path

    def refused(why: str) -> StoreError:
        return StoreError(f"cannot write {shown_path(path)}: {why}")

    try:
        target = resolve(path, owned_dirs=True)
    except ForeignOwner as exc:
        where = shown_path(exc.where)
        if exc.kind == "link":
            why = f"{where} is a symbolic link owned by another user (uid {exc.uid}); write it elsewhere"
        else:
            why = (f"{where} belongs to another user (uid {exc.uid}); write it elsewhere, "
                   "or run the command as that user")
        raise refused(why) from None
    except OSError as exc:
        raise refused(exc.strerror or str(exc)) from None
    with target:
        dir_fd, name = target.dir_fd, target.name
        try:
            try:
                old: os.stat_result | None = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                old = None
            if old is not None and not stat.S_ISREG(old.st_mode):
                raise refused("it exists and is not a regular file; refusing to replace it")
            if old is not None and not trusted_owner(old.st_uid):
                raise refused(f"it belongs to another user (uid {old.st_uid}); refusing to write over it "
                              "(remove it, or write elsewhere)")
            if old is not None and keep:
                new_mode = stat.S_IMODE(old.st_mode)
            elif mode is not None:
                new_mode = mode
            else:
                mask = os.umask(0)
                os.umask(mask)
                new_mode = 0o666 & ~mask

            def write_keeping_owner(stream: BinaryIO) -> T:
                if old is not None and keep and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                    os.fchown(stream.fileno(), old.st_uid, old.st_gid)
                return write(stream)

            return atomic_write(dir_fd, name, write_keeping_owner, new_mode, sync=sync)
        except OSError as exc:
            raise refused(exc.strerror or str(exc)) from None

