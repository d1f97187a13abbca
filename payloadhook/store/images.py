"""The image store: the only code that writes or deletes images.

Every file operation goes through descriptors (:mod:`.dirs`, :mod:`..fileio`) and the ``*at``
system calls, so no symbolic link can redirect a write or a delete. What a ``prepare`` built
is recorded (:mod:`.book`) *before* it is renamed into place, and ``release`` deletes a file
only when its inode is one the record holds for it, so it never deletes what it did not
build, whatever the disk's source says by then.

A prepare moves a domain's record through these states, each written durably, so that a
kill at any point leaves a record that release can act on:

1. the previous record (if any), plus the temporary names about to be written (``pending``);
2. once every image is written to its temporary name: the previous images and the new ones;
3. after the renames (and the removal of previous images this prepare no longer builds):
   the new images only (and the temporary names, which release removes if present).

A failure before the renames puts the previous record back and removes the temporary
files: an earlier successful prepare of the domain keeps its images and its record.

A kill needs no fsync (the page cache outlives the process); what a power loss needs, on
an image_dir on disk (on the default tmpfs every fsync is free, and nothing outlives a
reboot anyway), is that no image of ours exists that no record names with its inode:
prepare would then refuse the domain ("exists and was not built by payloadhook"). So,
and no more (docs/speed.md has what each costs):

- every record is synced before its rename (old or new, never a part: a corrupt record
  stops its domain), but only state 2 is made durable (its directory synced) before the
  renames it covers, and the renames before state 3 (image_dir synced): losing state 1
  or 3 leaves the state before it, which covers whatever then exists;
- an image is not synced: the next prepare rebuilds it before anything reads it again
  (QEMU only ever opens an image prepare has just written), and its inode is recorded;
- release syncs image_dir after removing the images, before the record goes, and the
  record directory after the record goes (a record a power loss brought back would name
  images already gone, whose names and inodes later images could have again).
"""

from __future__ import annotations

import os
import stat

from .. import fileio, log
from ..errors import StoreError, quote
from ..filenames import tmp_name
from ..frozen import Frozen, assign, replace
from . import book, dirs
from .book import CorruptRecord, ImageEntry, Record
from .paths import IMAGE_MODE, check_image_dir, image_name
from .records import record_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import BinaryIO, Callable


class Image(Frozen):
    """An image to place: the disk's source path, and what writes the image when called.

    The store calls ``write`` for one image at a time, after every source was checked, so
    a domain's images are never all built in memory together."""

    __slots__ = ("source", "write")
    source: str
    write: Callable[[BinaryIO], object]

    def __init__(self, source: str, write: Callable[[BinaryIO], object]) -> None:
        assign(self, "source", source)
        assign(self, "write", write)

    @classmethod
    def of(cls, source: str, data: bytes) -> Image:
        """An image whose bytes are already built."""
        return cls(source, lambda out: out.write(data))


class Collected(Frozen):
    """What gc removed (or, in a dry run, would remove) for one stale record."""

    __slots__ = ("record", "paths")
    record: Record
    paths: tuple[str, ...]

    def __init__(self, record: Record, paths: tuple[str, ...]) -> None:
        assign(self, "record", record)
        assign(self, "paths", paths)


class _Removal:
    """The half of the store that removes: release, and gc with the listing it needs. Every
    removal is of what a record holds, with the lock held (see the module's docstring)."""

    image_dir: str
    index: str | None

    def release(self, domain: str) -> list[str]:
        """Delete what this host's ``prepare`` recorded for the domain, in image_dir or in
        any image directory the index names (image_dir may have moved since); harmless when
        there is nothing. A record another host wrote (a shared image_dir) is left to it."""
        removed: list[str] = []
        for image_dir in dirs.image_dirs(self.image_dir, self.index):
            try:
                removed += self._release_in(image_dir, domain)
            except StoreError as exc:
                if image_dir == self.image_dir:
                    raise
                log.warning(__name__, "%s", str(exc))
        return removed

    def _release_in(self, image_dir: str, domain: str) -> list[str]:
        try:
            with dirs.locked(image_dir, create=False) as (dir_fd, records_fd):
                entry = record_name(domain)
                fileio.unlink_file(records_fd, tmp_name(entry))   # left by a prepare killed mid-write
                record = book.load(records_fd, entry, image_dir)
                if record is None or record.host != _hostname():
                    return []
                return self._drop(image_dir, dir_fd, records_fd, record)
        except dirs.Missing:
            return []

    def _drop(self, image_dir: str, dir_fd: int, records_fd: int, record: Record) -> list[str]:
        """Remove a record's images and then the record (with the lock held)."""
        removed = _remove(image_dir, dir_fd, record.images, record.pending)
        if removed or record.pending:
            os.fsync(dir_fd)    # the images gone for good before their record goes
        book.remove(records_fd, record.entry)
        if self.index is not None and not book.entries(records_fd):
            dirs.unregister(self.index, image_dir)
        return [f"{image_dir}/{name}" for name in removed]

    def records(self) -> list[Record]:
        """What every domain's prepare recorded, on any host, in every image directory in use;
        a corrupt record is reported and left out."""
        return [record for image_dir in dirs.image_dirs(self.image_dir, self.index)
                for record in self._records_in(image_dir)]

    def collect(self, is_running: Callable[[Record], bool], dry_run: bool = False) -> list[Collected]:
        """``payloadhook gc``: release every domain this host recorded that is not running.

        ``is_running(record)`` is asked without the lock: it calls libvirt, which may be
        waiting, with that domain locked, for a prepare that waits for our lock. The record
        is then removed under the lock only if it is still the very record that was checked
        (same file, same content): a domain that started in between wrote a new one."""
        host = _hostname()
        collected = []
        for image_dir in dirs.image_dirs(self.image_dir, self.index):
            for record in self._records_in(image_dir):
                if record.host != host or is_running(record):
                    continue
                if dry_run:
                    collected.append(Collected(record, tuple(f"{image_dir}/{n}" for n in record.names)))
                    continue
                paths = self._collect_one(image_dir, record)
                if paths is not None:
                    collected.append(Collected(record, tuple(paths)))
        return collected

    def _collect_one(self, image_dir: str, checked: Record) -> list[str] | None:
        try:
            with dirs.locked(image_dir, create=False) as (dir_fd, records_fd):
                try:
                    current = book.load(records_fd, checked.entry, image_dir)
                except CorruptRecord:
                    return None
                if current != checked or current.ident != checked.ident:
                    return None    # rewritten since it was checked: not what we checked
                return self._drop(image_dir, dir_fd, records_fd, current)
        except dirs.Missing:
            return None

    def _records_in(self, image_dir: str) -> list[Record]:
        try:
            with dirs.locked(image_dir, create=False) as (_, records_fd):
                return list(_each_record(records_fd, image_dir))
        except dirs.Missing:
            return []
        except StoreError as exc:
            if image_dir == self.image_dir:
                raise
            log.warning(__name__, "%s", str(exc))
            return []


class ImageStore(_Removal):
    """The image directory: images written for a domain's prepare (here), and removed at its
    release or by gc (:class:`_Removal`)."""

    def __init__(self, image_dir: str, index: str | None = None):
        """``index``: the directory naming every image_dir in use (records.INDEX_DIR for
        the hook and the command); None keeps to ``image_dir`` alone."""
        self.image_dir = check_image_dir(image_dir)
        self.index = index

    def image_name(self, source: str) -> str:
        """The file name of a disk source, which must lie directly in image_dir."""
        return image_name(self.image_dir, source)

    # -- prepare ---------------------------------------------------------------

    def prepare(self, domain: str, uuid: str | None, images: Sequence[Image]) -> list[str]:
        """Write every image atomically and record it; all or nothing. Every source is
        checked before the first image is built."""
        if uuid is not None and not book.is_uuid(uuid):
            raise StoreError(f"domain UUID {quote(uuid)} is not a UUID")
        names = [self.image_name(image.source) for image in images]
        if len(set(names)) != len(names):
            raise StoreError("two payloads of the domain point at the same image file")
        with dirs.locked(self.image_dir, create=True) as (dir_fd, records_fd):
            if self.index is not None:
                dirs.register(self.index, self.image_dir)
            previous = book.load(records_fd, record_name(domain), self.image_dir)
            _check_same_domain(self.image_dir, domain, uuid, previous)
            _check_free(self.image_dir, records_fd, record_name(domain), names)
            _check_targets(self.image_dir, dir_fd, names, previous)
            self._place(dir_fd, records_fd, Record(domain, uuid, _hostname(), self.image_dir),
                        previous, list(zip(images, names)))
        return [f"{self.image_dir}/{name}" for name in names]

    def add(self, domain: str, uuid: str | None, image: Image) -> str:
        """Write one more file for a domain whose prepare recorded its images here, keeping
        those (the seed's record of the domain's taps, written at ``started``)."""
        name = self.image_name(image.source)
        with dirs.locked(self.image_dir, create=False) as (dir_fd, records_fd):
            previous = book.load(records_fd, record_name(domain), self.image_dir)
            if previous is None or previous.host != _hostname():
                raise StoreError(f"domain {quote(domain)} has no record of a prepare in {self.image_dir}")
            _check_same_domain(self.image_dir, domain, uuid, previous)
            _check_free(self.image_dir, records_fd, record_name(domain), [name])
            _check_targets(self.image_dir, dir_fd, [name], previous)
            self._place(dir_fd, records_fd, Record(domain, uuid, _hostname(), self.image_dir),
                        previous, [(image, name)], keep=True)
        return f"{self.image_dir}/{name}"

    def _place(self, dir_fd: int, records_fd: int, new: Record, previous: Record | None,
               images: list[tuple[Image, str]], keep: bool = False) -> None:
        """Write, record, rename: the three states of the module's docstring (``keep``: the
        previous images stay, but for those replaced)."""
        base = previous.images if previous else ()
        tmps = tuple(tmp_name(name) for _, name in images)
        staged = replace(new, images=base,
                         pending=tuple(dict.fromkeys((previous.pending if previous else ()) + tmps)))
        self._save(records_fd, staged, durable=False)
        written: list[ImageEntry] = []
        renamed = False
        doing = "the images"
        try:
            for (image, name), tmp in zip(images, tmps):
                doing = f"the image {name}"
                _, st = fileio.write_temp(dir_fd, tmp, image.write, IMAGE_MODE, sync=False)
                written.append(ImageEntry(name, st.st_dev, st.st_ino))
            self._save(records_fd, replace(staged, images=base + tuple(written)))
            renamed = True
            doing = "the images"
            for (_, name), tmp in zip(images, tmps):
                os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except BaseException as exc:
            self._undo(dir_fd, records_fd, staged, previous, tmps, keep_record=renamed)
            if isinstance(exc, OSError):
                raise dirs.failure(exc, self.image_dir, doing) from None
            raise
        kept = {name for _, name in images}
        others = tuple(i for i in base if i.name not in kept)
        if not keep:
            _remove(self.image_dir, dir_fd, others, ())
        try:
            self._save(records_fd, replace(staged, images=(others if keep else ()) + tuple(written), pending=tmps),
                       durable=False)
        except StoreError as exc:    # state 2 stays, and covers every image: release still works
            log.warning(__name__, "%s", str(exc))

    def _undo(self, dir_fd: int, records_fd: int, staged: Record, previous: Record | None,
              tmps: tuple[str, ...], keep_record: bool) -> None:
        """After a failed write: no temporary file left, and the record as it was."""
        for tmp in tmps:
            try:
                fileio.unlink_file(dir_fd, tmp)
            except OSError as exc:
                log.warning(__name__, "could not remove %s/%s: %s", self.image_dir, tmp, exc.strerror)
        if keep_record:
            return    # some renames happened: state 2 names both the old and the new images
        try:
            if previous is None:
                book.remove(records_fd, staged.entry)
            else:
                book.save(records_fd, previous)
        except OSError as exc:   # state 1 stays: it names only the previous images
            log.warning(__name__, "could not restore the record of %s: %s", quote(staged.domain), exc.strerror)

    def _save(self, records_fd: int, record: Record, durable: bool = True) -> None:
        try:
            book.save(records_fd, record, durable)
        except OSError as exc:
            raise dirs.failure(exc, self.image_dir, "the domain's record") from None

def _check_same_domain(image_dir: str, domain: str, uuid: str | None, previous: Record | None) -> None:
    """In a shared image_dir, a record another host wrote is taken over only by the same
    domain (a migration keeps its UUID), never by another domain that has its name."""
    if (previous is None or previous.host == _hostname() or not previous.images
            or previous.uuid is None or uuid is None or previous.uuid.lower() == uuid.lower()):
        return
    raise StoreError(f"the images of {quote(domain)} in {image_dir} belong to another domain of that "
                     f"name (UUID {previous.uuid}) on host {quote(previous.host)}, which has not "
                     "released them; give this domain another name, or stop that one first")

def _check_free(image_dir: str, records_fd: int, own: str, names: list[str]) -> None:
    """No other domain's record may hold one of ``names``."""
    wanted = set(names)
    for other in _each_record(records_fd, image_dir, skip=own):
        for name in other.names:
            if name in wanted:
                raise StoreError(f"image {image_dir}/{name} belongs to domain {quote(other.domain)}, "
                                 "which has not released it (if that domain is not running, "
                                 "'payloadhook gc' removes it)")

def _check_targets(image_dir: str, dir_fd: int, names: list[str], previous: Record | None) -> None:
    """Only a file this domain's last prepare built may be replaced."""
    ours = {(image.name, image.dev, image.ino) for image in previous.images} if previous else set()
    for name in names:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise StoreError(f"disk source {image_dir}/{name} is a symbolic link")
        if not stat.S_ISREG(st.st_mode) or (name, st.st_dev, st.st_ino) not in ours:
            raise StoreError(f"{image_dir}/{name} exists and was not built by payloadhook for this "
                             "domain; remove it or point the disk elsewhere")


def _each_record(records_fd: int, image_dir: str, skip: str | None = None) -> Iterator[Record]:
    """Every sound record; a corrupt one is reported in one line and skipped."""
    for entry in book.entries(records_fd):
        if entry == skip:
            continue
        try:
            record = book.load(records_fd, entry, image_dir)
        except CorruptRecord as exc:
            log.warning(__name__, "%s", str(exc))
            continue
        if record is not None:
            yield record


def _remove(image_dir: str, dir_fd: int, images: tuple[ImageEntry, ...], tmps: tuple[str, ...]) -> list[str]:
    """Unlink the temporary files, and each image whose inode is one recorded for its name."""
    problems = []
    for tmp in tmps:
        try:
            fileio.unlink_file(dir_fd, tmp)
        except OSError as exc:
            problems.append(f"{tmp}: {exc.strerror}")
    inodes: dict[str, set[tuple[int, int]]] = {}
    for image in images:
        inodes.setdefault(image.name, set()).add((image.dev, image.ino))
    removed = []
    for name, recorded in inodes.items():
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) not in recorded:
            log.warning(__name__, "%s/%s was replaced since it was built; left in place", image_dir, name)
            continue
        try:
            os.unlink(name, dir_fd=dir_fd)
            removed.append(name)
        except OSError as exc:
            problems.append(f"{name}: {exc.strerror}")
    if problems:
        raise StoreError(f"could not remove from {image_dir}: {'; '.join(problems)}")
    return removed


def _hostname() -> str:
    """This host's name, as records carry it."""
    return os.uname().nodename
