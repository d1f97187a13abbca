"""The record book: what each domain's prepare built, as typed records read back as input.

A record is one JSON file in ``IMAGE_DIR/.payloadhook/`` (names in :mod:`.records`)::

    {"domain": NAME, "uuid": UUID, "host": NODENAME, "image_dir": DIR,
     "images": [{"name": FILE, "dev": N, "ino": N}, ...], "pending": [TMPNAME, ...]}

A name may appear in ``images`` more than once while a prepare replaces an image (the old
and the new inode): release removes the file when its inode is any one recorded for it.

Anyone who could write there is root already (the directory is checked to be root's and
0700), but what is read back is checked as input all the same: a record that is not a
regular file, is over ``MAX_RECORD`` bytes, is not the JSON above, names a file that is not
a plain name directly in image_dir, or claims another domain's name, is *corrupt*: it is
reported and nothing in it is acted on. It affects its own domain only.
"""

from __future__ import annotations

import errno
import os
import stat

from .. import fileio
from ..errors import StoreError
from ..filenames import tmp_name
from ..frozen import Frozen, assign
from ..uuids import is_canonical_uuid
from . import jsontext
from .paths import RECORD_MODE, is_image_name, is_tmp_name
from .records import RECORDS, record_name

#: A record lists a domain's few images; anything larger is not one of ours.
MAX_RECORD = 1 << 20


class CorruptRecord(StoreError):
    """A record that cannot be trusted: reported, never acted on."""


class ImageEntry(Frozen):
    """One image file a prepare wrote: its name in image_dir, and the inode it was."""

    __slots__ = ("name", "dev", "ino")
    name: str
    dev: int
    ino: int

    def __init__(self, name: str, dev: int, ino: int) -> None:
        assign(self, "name", name)
        assign(self, "dev", dev)
        assign(self, "ino", ino)


class Record(Frozen):
    """What one domain's prepare recorded."""

    __slots__ = ("domain", "uuid", "host", "image_dir", "images", "pending", "ident")
    _uncompared = ("ident",)
    domain: str
    uuid: str | None
    host: str
    image_dir: str
    images: tuple[ImageEntry, ...]
    pending: tuple[str, ...]
    #: (st_dev, st_ino) of the record file as read: a rewrite gives a new one (it is renamed
    #: into place), so gc can tell the record it checked from one a later prepare wrote.
    ident: tuple[int, int]

    def __init__(self, domain: str, uuid: str | None, host: str, image_dir: str,
                 images: tuple[ImageEntry, ...] = (), pending: tuple[str, ...] = (),
                 ident: tuple[int, int] = (0, 0)) -> None:
        assign(self, "domain", domain)
        assign(self, "uuid", uuid)
        assign(self, "host", host)
        assign(self, "image_dir", image_dir)
        assign(self, "images", images)
        assign(self, "pending", pending)
        assign(self, "ident", ident)

    @property
    def names(self) -> tuple[str, ...]:
        """The image names, each once, in order."""
        return tuple(dict.fromkeys(image.name for image in self.images))

    @property
    def entry(self) -> str:
        return record_name(self.domain)

    def to_json(self) -> bytes:
        return jsontext.dumps({"domain": self.domain, "uuid": self.uuid, "host": self.host,
                               "image_dir": self.image_dir,
                               "images": [{"name": i.name, "dev": i.dev, "ino": i.ino} for i in self.images],
                               "pending": list(self.pending)}).encode("ascii")


def is_uuid(text: object) -> bool:
    return is_canonical_uuid(text)


def _is_text(text: str) -> bool:
    """Whether ``text`` is a name the file system can be given: JSON's \\ud800 escape reads as
    a lone surrogate, which neither UTF-8 nor surrogateescape encodes (a name that was not
    UTF-8 is stored as \\udc80-\\udcff, which surrogateescape gives back as its bytes)."""
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse(data: bytes, entry: str, image_dir: str) -> Record:
    """A record from the bytes of file ``entry``; CorruptRecord (naming it) if anything is off."""
    where = f"{image_dir}/{RECORDS}/{entry}"
    try:
        content = jsontext.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise CorruptRecord(f"record {where} is corrupt (not JSON); nothing in it is acted on: "
                            "check it and remove it by hand") from None
    why = _shape_error(content, entry)
    if why:
        raise CorruptRecord(f"record {where} is corrupt ({why}); nothing in it is acted on: "
                            "check it and remove it by hand")
    return Record(domain=content["domain"], uuid=content.get("uuid"), host=content["host"],
                  image_dir=image_dir,
                  images=tuple(ImageEntry(i["name"], i["dev"], i["ino"]) for i in content["images"]),
                  pending=tuple(content.get("pending", ())))


def _shape_error(content: object, entry: str) -> str | None:
    """Why ``content`` is not a record stored under ``entry``; None when it is one."""
    if not isinstance(content, dict):
        return "not a JSON object"
    domain, host = content.get("domain"), content.get("host")
    if not isinstance(domain, str) or not domain or not _is_text(domain) or record_name(domain) != entry:
        return "its domain is missing or does not match the file name"
    if not isinstance(host, str) or not host or not _is_text(host):
        return "no host"
    if content.get("uuid") is not None and not is_uuid(content["uuid"]):
        return "a bad uuid"
    images, pending = content.get("images"), content.get("pending", [])
    if not isinstance(images, list) or not isinstance(pending, list):
        return "images or pending is not a list"
    for image in images:
        if not (isinstance(image, dict) and is_image_name(image.get("name"))
                and _int(image.get("dev")) and _int(image.get("ino"))):
            return "an image that is not a plain file name in the image directory"
    if not all(is_tmp_name(name) for name in pending):
        return "a pending name that is not one of payloadhook's temporary names"
    return None


def load(records_fd: int, entry: str, image_dir: str) -> Record | None:
    """The record ``entry``, or None if there is none; CorruptRecord if it cannot be trusted.

    Opened with O_NONBLOCK and O_NOFOLLOW and checked to be a regular file before a byte is
    read: a FIFO or a device planted there can neither hang us (with the lock held) nor be
    read as a record; a symbolic link is never followed."""
    where = f"{image_dir}/{RECORDS}/{entry}"
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC,
                     dir_fd=records_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        what = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise CorruptRecord(f"record {where} is corrupt ({what}); nothing in it is acted on: "
                            "check it and remove it by hand") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CorruptRecord(f"record {where} is corrupt (not a regular file); nothing in it is acted on: "
                                "check it and remove it by hand")
        if st.st_size > MAX_RECORD:
            raise CorruptRecord(f"record {where} is corrupt (over {MAX_RECORD} bytes); nothing in it is "
                                "acted on: check it and remove it by hand")
        data = os.read(fd, MAX_RECORD + 1)
    finally:
        os.close(fd)
    record = parse(data, entry, image_dir)
    return Record(record.domain, record.uuid, record.host, record.image_dir, record.images,
                  record.pending, ident=(st.st_dev, st.st_ino))


def entries(records_fd: int) -> list[str]:
    """The record files in the record directory, sorted (temporary files left out)."""
    return sorted(name for name in os.listdir(records_fd)
                  if name.startswith("dom-") and name.endswith(".json"))


def save(records_fd: int, record: Record, durable: bool = True) -> None:
    """Write ``record`` atomically: after a crash the file holds the previous record or this
    one, never a part (the file is synced before its rename). ``durable``: this one, once
    this returns (the directory is synced too)."""
    data = record.to_json()
    fileio.atomic_write(records_fd, record.entry, lambda out: out.write(data), RECORD_MODE,
                        tmp=tmp_name(record.entry), sync_dir=durable)


def remove(records_fd: int, entry: str, durable: bool = True) -> None:
    """Remove a record and any half-written copy of it; ``durable``: the removal too, once
    this returns (the record directory is synced: a removal a power loss undid would bring
    back a record naming images already gone, whose names and inodes a later image could
    have again; free on the default tmpfs). The images' removal is made durable first
    (store/images.py)."""
    fileio.unlink_file(records_fd, tmp_name(entry))
    if fileio.unlink_file(records_fd, entry) and durable:
        os.fsync(records_fd)
