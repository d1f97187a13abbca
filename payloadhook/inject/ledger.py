"""This host's own copy of each injection record: what ``inject`` wrote, kept where only root
reaches, so that ``inject --remove`` acts on nothing a domain definer wrote by hand.

The record in the domain's metadata (record.py) is what ``show`` reads; anyone who may define
the domain can also write it. ``inject`` therefore keeps the same record in
``inject_record_dir`` (``/var/lib/payloadhook/injected``: root, 0700; one 0600 file
``UUID-DISK.json`` per disk, written through a temporary file and a rename), and
:func:`proven` is the one rule of what may be acted on: the entries that the definition's
record and this host's copy both hold, identical, under the same disk, volume and time.
The copy is validated as the definition's record is, every time it is read.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

from .. import fileio
from ..errors import GuestError, PayloadhookError, shown
from . import record

#: A copy larger than this is refused rather than read (a record of 10,000 files is ~2 MiB).
_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Proof:
    """What of the definition's record this host's copy proves, and what it does not."""

    injection: record.Injection | None     # the proven entries (None: nothing is)
    unproven: tuple[str, ...]              # paths (files and directories) the copy does not hold
    why: str | None = None                 # why nothing is proven, where that is so


def proven(defined: record.Injection, kept: record.Injection | None) -> Proof:
    """The entries of ``defined`` that ``kept`` (this host's copy) holds identically."""
    every = tuple(item.path for item in defined.files) + defined.directories
    if kept is None:
        return Proof(None, every, "this host's inject has no record of it")
    if (kept.disk, kept.volume, kept.when) != (defined.disk, defined.volume, defined.when):
        return Proof(None, every, "it differs from this host's record of the injection")
    files = tuple(item for item in defined.files if item in set(kept.files))
    directories = tuple(d for d in defined.directories if d in set(kept.directories))
    unproven = tuple(item.path for item in defined.files if item not in files) + tuple(
        d for d in defined.directories if d not in directories)
    return Proof(record.Injection(disk=defined.disk, when=defined.when, files=files,
                                  directories=directories, volume=defined.volume), unproven)


def _name(uuid: str, disk: str) -> str:
    from ..uuids import canonical_uuid
    canonical = canonical_uuid(uuid)
    if canonical is None or canonical != uuid:
        raise GuestError(f"domain UUID {shown(uuid, 40)} is not a canonical UUID")
    return f"{canonical}-{record.check_target(disk)}.json"


def _check_dir(fd: int, where: str) -> None:
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise GuestError(f"the injection record directory {shown(where)} is not this user's alone (owner "
                         f"{st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}); refused")


def _open_dir(where: str, create: bool) -> int | None:
    parent, _, _ = where.rstrip("/").rpartition("/")
    try:
        if create:
            os.makedirs(parent or "/", 0o755, exist_ok=True)
            fd = fileio.open_dir(where, create_mode=0o700)
        else:
            fd = fileio.open_dir(where)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise GuestError(f"the injection record directory {shown(where)} cannot be opened: {exc.strerror}") from None
    try:
        _check_dir(fd, where)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _document(uuid: str, injection: record.Injection) -> dict:
    return {"domain": uuid, "disk": injection.disk, "when": injection.when, "volume": injection.volume,
            "directories": list(injection.directories),
            "files": [{"path": f.path, "size": f.size, **({"key": f.key, "mac": f.mac} if f.sealed
                                                         else {"sha256": f.sha256})} for f in injection.files]}


def _injection_of(document: object, uuid: str, disk: str) -> record.Injection:
    """The copy read back, checked by the same rules as the definition's record (record.py)."""
    from lxml import etree

    def text(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("a value is not a string")
        return value

    if not isinstance(document, dict) or document.get("domain") != uuid or document.get("disk") != disk:
        raise ValueError("it is not the record of this domain's disk")
    element = etree.Element(record.INJECTED, disk=text(document.get("disk")), when=text(document.get("when")))
    volume = document.get("volume")
    if volume is not None:
        if not isinstance(volume, int) or isinstance(volume, bool):
            raise ValueError("volume is not a number")
        element.set("volume", str(volume))
    directories, files = document.get("directories"), document.get("files")
    if not isinstance(directories, list) or not isinstance(files, list):
        raise ValueError("directories or files are missing")
    for directory in directories:
        etree.SubElement(element, record.DIRECTORY, path=text(directory))
    for item in files:
        if not isinstance(item, dict) or not isinstance(item.get("size"), int):
            raise ValueError("a file is malformed")
        child = etree.SubElement(element, record.FILE, path=text(item.get("path")), size=str(item["size"]))
        for name in ("sha256", "key", "mac"):
            if name in item:
                child.set(name, text(item[name]))
    return record._injection(element)


def read(where: str, uuid: str, disk: str) -> record.Injection | None:
    """This host's copy of the record of ``disk`` of domain ``uuid`` (None: there is none)."""
    name = _name(uuid, disk)
    fd = _open_dir(where, create=False)
    if fd is None:
        return None
    try:
        data = fileio.read_private(fd, name, _MAX_BYTES, os.geteuid(), lambda: GuestError(
            f"this host's injection record {shown(name)} is not a file of this user's alone"))
    except OSError as exc:
        raise GuestError(f"this host's injection record {shown(name)} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if data is None:
        return None
    try:
        if len(data) > _MAX_BYTES:
            raise ValueError(f"it is over {_MAX_BYTES} bytes")
        return _injection_of(json.loads(data.decode("utf-8")), uuid, disk)
    except (ValueError, UnicodeDecodeError, PayloadhookError) as exc:
        raise GuestError(f"this host's injection record {shown(name)} is malformed ({exc}); refused") from None


def write(where: str, uuid: str, disk: str, injection: record.Injection | None) -> None:
    """Keep ``injection`` as this host's copy (None: remove the copy), atomically."""
    name = _name(uuid, disk)
    fd = _open_dir(where, create=injection is not None)
    if fd is None:
        return
    try:
        if injection is None:
            fileio.unlink_file(fd, name)
            os.fsync(fd)
            return
        data = json.dumps(_document(uuid, injection), sort_keys=True).encode("utf-8")
        fileio.atomic_write(fd, name, lambda stream: stream.write(data), 0o600)
    except OSError as exc:
        raise GuestError(f"this host's injection record {shown(name)} cannot be written: {exc.strerror}") from None
    finally:
        os.close(fd)
