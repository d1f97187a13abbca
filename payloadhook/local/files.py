"""Files named on the command line, read as root from paths that other users may control.

The rule for an argument, which nothing on disk can change:

- an argument that starts with ``/`` or ``./`` is a PATH: a file (named on the medium by
  its base name) or a directory (every file below it, named by its path relative to it);
- any other argument holding ``=`` is ``NAME=PATH``, split at the first ``=`` (so a NAME
  cannot hold ``=``: give such a file through a directory or ``--files-json``);
- anything else is a PATH.

So a path holding ``=`` is given as ``./a=b`` or ``/dir/a=b``; a file planted under the
name ``user-data=x`` is never read in place of ``x``.

Only regular files are read: a FIFO, a socket or a device is refused without being read
(a FIFO is opened non-blocking, so it cannot hang the command), and a file's size is checked
against the limits with fstat before a byte of it is read. Below a directory, a symbolic link
is refused unless ``--follow-symlinks`` is given; then a link that leads back into the tree
(a loop) is refused too. Directories are walked by descriptor, so a directory swapped for a
link halfway is not followed.

A path named on the command line (NAME=PATH, PATH, a directory, ``--files-json FILE``, an OVF
or a domain XML file, ``--files-from DIR``) is reached by the rule of
:mod:`payloadhook.local.paths`: one component at a time, a symbolic link followed only when root or
the caller owns it, so a link another user planted (``/tmp/alice/ud -> /root/secret``) is
refused unless ``--follow-symlinks`` is given (commands without that option always refuse
it). The file is then opened relative to its directory with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import errno
import os
import stat

from ..config import Budget
from ..errors import PayloadError
from ..errors import shown_path as show
from ..fileio import DIR_FLAGS
from ..model import PayloadFile, Source
from . import paths
from .paths import Resolved
from .sources import InputFile

#: Flags for an input file: non-blocking, so opening a FIFO returns at once (and fstat
#: then refuses it); no controlling terminal from a tty.
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _refuse_os(path: str, exc: OSError, follow: bool) -> PayloadError:
    if exc.errno == errno.ELOOP:
        if follow:
            return PayloadError(f"input {show(path)} is a symbolic link loop")
        return PayloadError(f"input {show(path)} is a symbolic link; give --follow-symlinks to follow links")
    if exc.errno == errno.ENOENT:
        return PayloadError(f"input {show(path)} does not exist")
    return PayloadError(f"input file {show(path)} cannot be read: {exc.strerror}")


def read_regular(path: str, budget: Budget | None, *, dir_fd: int | None = None, name: str | None = None,
                 follow: bool = False, limit: int | None = None, what: str = "input",
                 listed_regular: bool = False, follow_hint: bool = True,
                 parents: Parents | None = None) -> bytes:
    """The bytes of the regular file ``path``, its size checked first against ``budget`` (or
    ``limit``); anything else is refused. Named by a user (no ``dir_fd``): reached by the
    rule of :mod:`payloadhook.local.paths`, a link another user owns followed only with ``follow``
    (``follow_hint``: the message names --follow-symlinks; ``parents``: directories already
    reached, see :class:`Parents`). Relative to ``dir_fd`` as ``name``
    (below a directory input): a link followed only with ``follow``. ``listed_regular``: the
    directory listing said it is a regular file, so it is opened without a stat first (fstat
    still checks what was opened)."""
    data = _content(path, budget, dir_fd=dir_fd, name=name, follow=follow, limit=limit, what=what,
                    listed_regular=listed_regular, follow_hint=follow_hint, parents=parents, hold=0)
    assert isinstance(data, bytes)    # hold=0: nothing is held open
    return data


def _content(path: str, budget: Budget | None, *, dir_fd: int | None = None, name: str | None = None,
             follow: bool = False, limit: int | None = None, what: str = "input", listed_regular: bool = False,
             follow_hint: bool = True, parents: Parents | None = None, hold: int = 0) -> bytes | Source:
    """:func:`read_regular`, or with ``hold`` the file's source (:func:`_content_at`)."""
    if dir_fd is None:
        with resolve_input(path, follow, what, follow_hint, parents) as found:
            if found.st is None:
                raise PayloadError(f"{what} {show(path)} does not exist")
            return _content_at(path, budget, found.dir_fd, found.name, found.st, False, limit, what, hold)
    where = name if name is not None else path
    st = None
    if not listed_regular:
        try:    # refused before it is opened: opening a device or a socket can act, or fail obscurely
            st = os.stat(where, dir_fd=dir_fd, follow_symlinks=follow)
        except OSError as exc:
            raise _refuse_os(path, exc, follow) from None
    return _content_at(path, budget, dir_fd, where, st, follow, limit, what, hold)


def _content_at(path: str, budget: Budget | None, dir_fd: int, name: str, st: os.stat_result | None,
                follow: bool, limit: int | None, what: str, hold: int = 0) -> bytes | Source:
    """The regular file ``name`` in ``dir_fd``; ``st`` its stat when taken (checked against
    what is opened). With ``hold``, a file with a size whose descriptor is below ``hold`` is
    kept open and returned as its source, to be streamed (local/sources.py); any other file
    is read now (one with no size, as in /proc, is read to its end)."""
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise PayloadError(f"{what} {show(path)} is {_kind(st.st_mode)}, not a regular file")
    try:
        fd = os.open(name, _FILE_FLAGS | (0 if follow else os.O_NOFOLLOW), dir_fd=dir_fd)
    except OSError as exc:
        raise _refuse_os(path, exc, follow) from None
    kept = False
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise PayloadError(f"{what} {show(path)} is {_kind(opened.st_mode)}, not a regular file")
        if st is not None and (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise PayloadError(f"{what} {show(path)} changed while being opened")
        if budget is not None:
            budget.take_file(path, opened.st_size)
            limit = budget.max_file_size
        elif limit is not None and opened.st_size > limit:
            raise PayloadError(f"{what} {show(path)} is {opened.st_size} bytes, over its limit ({limit})")
        if opened.st_size and fd < hold:
            kept = True
            return InputFile(fd, path, opened.st_size)
        return _read_fd(fd, opened.st_size, limit)
    except OSError as exc:
        raise PayloadError(f"{what} {show(path)} cannot be read: {exc.strerror}") from None
    finally:
        if not kept:
            os.close(fd)


class Parents:
    """Descriptors of the directories that named files sit in, each reached once by the rule
    of :mod:`payloadhook.local.paths`: a thousand ``NAME=/dir/file`` arguments walk ``/dir`` once,
    then cost a look at each file relative to it (a context manager closes them)."""

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}

    def resolve(self, path: str, follow: bool) -> Resolved:
        parent, slash, base = path.rpartition("/")
        if not slash or base in ("", ".", ".."):
            return paths.resolve(path, follow_any=follow, last=True)
        parent = parent or "/"
        fd = self.fds.get(parent)
        if fd is None:
            with paths.resolve(parent, follow_any=follow, last=True) as found:
                if found.st is None:
                    raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
                if not stat.S_ISDIR(found.st.st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                fd = os.open(found.name, DIR_FLAGS, dir_fd=found.dir_fd)
            self.fds[parent] = fd
        try:
            st: os.stat_result | None = os.stat(base, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is None or not stat.S_ISLNK(st.st_mode):    # the common case: one lstat, no walk
            return Resolved(fd, base, path, st, borrowed=True)
        return paths.resolve(base, follow_any=follow, last=True, start=(fd, parent))

    def __enter__(self) -> Parents:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


#: What a missing bare PATH is told: it may have been meant as NAME=PATH.
_MISSING_HINT = " (give NAME=PATH, a file or a directory)"


def resolve_input(path: str, follow: bool, what: str = "input", follow_hint: bool = True,
                  parents: Parents | None = None, missing_hint: str = "") -> Resolved:
    """Where the path a user named leads, by the rule of :mod:`payloadhook.local.paths` (a link
    another user owns is followed only with ``follow``); its last component looked at, not
    opened. Refusals are one-line PayloadErrors."""
    try:
        if parents is not None:
            return parents.resolve(path, follow)
        return paths.resolve(path, follow_any=follow, last=True)
    except paths.ForeignOwner as exc:
        hint = "give --follow-symlinks to follow it" if follow_hint else "name the file itself"
        where = "" if exc.where == path else f": {show(exc.where)}"
        raise PayloadError(f"{what} {show(path)}{where} is a symbolic link owned by another user "
                           f"(uid {exc.uid}); {hint}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PayloadError(f"{what} {show(path)}: more than {paths.MAX_LINKS} symbolic links on its path "
                               "(a loop?)") from None
        if exc.errno == errno.ENOENT:
            raise PayloadError(f"{what} {show(path)} does not exist{missing_hint}") from None
        raise PayloadError(f"{what} {show(path)} cannot be read: {exc.strerror}") from None


def open_input_dir(path: str, follow: bool, what: str, follow_hint: bool = True) -> int:
    """A descriptor of the directory a user named, reached by the rule of
    :mod:`payloadhook.local.paths` (see :func:`resolve_input`)."""
    with resolve_input(path, follow, what, follow_hint) as found:
        if found.st is None:
            raise PayloadError(f"{what} {show(path)} does not exist")
        if not stat.S_ISDIR(found.st.st_mode):
            raise PayloadError(f"{what} {show(path)} is {_kind(found.st.st_mode)}, not a directory")
        try:
            fd = os.open(found.name, DIR_FLAGS, dir_fd=found.dir_fd)
        except OSError as exc:
            raise PayloadError(f"{what} {show(path)} cannot be opened: {exc.strerror}") from None
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (found.st.st_dev, found.st.st_ino):
        os.close(fd)
        raise PayloadError(f"{what} {show(path)} changed while being opened")
    return fd


def _read_fd(fd: int, size: int, limit: int | None) -> bytes:
    """Read at the size fstat gave: one allocation, one read. Where fstat knows no size
    (/proc, sysfs) read to the end, never past ``limit``."""
    if size:
        data = os.read(fd, size)
        if len(data) == size:
            return data
        chunks = [data]
        got = len(data)
    else:
        chunks, got = [], 0
    while True:
        more = os.read(fd, 1 << 16)
        if not more:
            return b"".join(chunks)
        got += len(more)
        if limit is not None and got > limit:
            raise PayloadError(f"input grew past its limit ({limit} bytes) while being read")
        chunks.append(more)


def _open_dir(path: str, dir_fd: int | None, name: str, follow: bool) -> int:
    try:
        return os.open(name, _DIR_FLAGS | (0 if follow else os.O_NOFOLLOW), dir_fd=dir_fd)
    except OSError as exc:
        raise _refuse_os(path, exc, follow) from None


def walk(top: str, budget: Budget, follow: bool, found: list[PayloadFile], hold: int = 0) -> None:
    """Every regular file below the directory ``top``, named by its relative path, in name
    order (depth first). Iterative, by descriptor: deep trees need no recursion. ``hold``:
    see :func:`_content_at`."""
    top_fd = open_input_dir(top, follow, "input directory")    # named on the command line: the rule
    top_prefix = top.rstrip("/") + "/"
    before = len(found)
    st = os.fstat(top_fd)
    # each level: (descriptor, relative prefix, entries still to visit, (dev, ino) of the directory)
    stack = [(top_fd, "", _listing(top, top_fd), (st.st_dev, st.st_ino))]
    try:
        while stack:
            dir_fd, prefix, entries, _ = stack[-1]
            if not entries:
                os.close(dir_fd)
                stack.pop()
                continue
            entry = entries.pop()
            relative = prefix + entry.name
            path = top_prefix + relative     # for messages
            if entry.is_file(follow_symlinks=False):    # the listing's file type: no stat, opened as it is
                found.append(PayloadFile(name=relative, content=_content_at(
                    path, budget, dir_fd, entry.name, None, follow, None, "input", hold)))
                continue
            try:
                st = os.stat(entry.name, dir_fd=dir_fd, follow_symlinks=follow)
            except OSError as exc:
                raise _refuse_os(path, exc, follow) from None
            if stat.S_ISLNK(st.st_mode):
                raise PayloadError(f"input {show(path)} is a symbolic link; give --follow-symlinks to follow links")
            if stat.S_ISDIR(st.st_mode):
                if any((st.st_dev, st.st_ino) == level[3] for level in stack):
                    raise PayloadError(f"input {show(path)} is a symbolic link loop (it leads back to a "
                                       "directory above it)")
                budget.take_dir(path)
                child = _open_dir(path, dir_fd, entry.name, follow)
                opened = os.fstat(child)
                if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                    os.close(child)
                    raise PayloadError(f"input {show(path)} changed while being read")
                stack.append((child, relative + "/", _listing(path, child), (st.st_dev, st.st_ino)))
            else:
                found.append(PayloadFile(name=relative, content=_content(
                    path, budget, dir_fd=dir_fd, name=entry.name, follow=follow, hold=hold)))
    finally:
        for level in stack:
            os.close(level[0])
    if len(found) == before:
        raise PayloadError(f"input directory {show(top)} holds no files")


def _listing(path: str, dir_fd: int) -> list[os.DirEntry]:
    """The entries of a directory, last name first (the walk pops from the end)."""
    try:
        with os.scandir(dir_fd) as listing:
            return sorted(listing, key=lambda entry: entry.name, reverse=True)
    except OSError as exc:
        raise PayloadError(f"input directory {show(path)} cannot be read: {exc.strerror}") from None


def split_argument(arg: str) -> tuple[str | None, str]:
    """(NAME, PATH) for ``NAME=PATH``, (None, PATH) for a PATH, by the rule in the module doc."""
    if arg.startswith(("/", "./")) or "=" not in arg:
        return None, arg
    name, _, path = arg.partition("=")
    return name, path


def files_from_args(args: list[str], config, follow_symlinks: bool = False,
                    stream: bool = False) -> tuple[PayloadFile, ...]:
    """The files the arguments name (see the module doc), within the configuration's limits.
    ``stream``: each file is kept open, as the source its content is streamed from into an
    image (local/sources.py), rather than read now; as many as descriptors allow."""
    budget = Budget(config)
    hold = 0
    if stream:
        from .sources import descriptors_to_hold
        hold = descriptors_to_hold()
    files: list[PayloadFile] = []
    with Parents() as parents:
        for arg in args:
            name, path = split_argument(arg)
            if name is not None:
                if name == "":
                    raise PayloadError(f"input {show(arg)} has an empty NAME (give NAME=PATH)")
                files.append(PayloadFile(name=name, content=_content(path, budget, follow=follow_symlinks,
                                                                     parents=parents, hold=hold)))
                continue
            with resolve_input(path, follow_symlinks, parents=parents, missing_hint=_MISSING_HINT) as at:
                if at.st is None:
                    raise PayloadError(f"input {show(path)} does not exist{_MISSING_HINT}")
                if not stat.S_ISDIR(at.st.st_mode):
                    files.append(PayloadFile(name=os.path.basename(path.rstrip("/")), content=_content_at(
                        path, budget, at.dir_fd, at.name, at.st, False, None, "input", hold)))
                    continue
            walk(path, budget, follow_symlinks, files, hold)
    return tuple(files)


def read_file(path: str, what: str, limit: int | None = None) -> bytes:
    """A document named on the command line (an OVF, a domain XML file): a regular file, at
    most ``limit`` bytes."""
    return read_regular(path, None, limit=limit, what=what, follow_hint=False)
