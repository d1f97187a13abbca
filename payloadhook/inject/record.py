"""``<pl:injected>``: what ``inject`` wrote into a domain's disk, kept in the domain's payload
metadata beside the payloads, never the content:

    <pl:injected disk="vda" when="2026-12-01T12:00:00Z">
      <pl:directory path="/var/lib/cloud/seed"/>           <!-- made by the injection -->
      <pl:file path="/var/lib/cloud/seed/nocloud/user-data" size="120" sha256="…"/>
      <pl:file path="/var/lib/cloud/seed/nocloud/meta-data" size="61" key="KEYID" mac="…"/>
    </pl:injected>

A file injected while sealing is on (as ``attach`` seals: by default when the host has a key)
is recorded by its size and an HMAC-SHA256 under a key derived from the host key ``KEYID``:
``show`` prints no hash of it (of a short secret a hash is the secret), and ``inject
--remove`` can still tell whether the guest's file is the one written. Where the key is no
longer on the host, such a file is left in place and said to be unverifiable.

``volume`` (a partition number, 0 for a disk without partitions) is there when the file
system was named with ``--volume`` rather than found by inspection. One element per disk.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from ..domain.metadata import INJECTED, PL, PREFIX, payloads_root
from ..errors import PayloadError, PayloadhookError, quote
from ..model import check_key_id
from . import paths

FILE = PL + "file"
DIRECTORY = PL + "directory"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_WHEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_TARGET = re.compile(r"^[a-z][a-z0-9]{0,31}$")
#: What the MAC key is derived with from the host key (never the AES key itself).
_MAC_CONTEXT = b"payloadhook:inject-record:1"


@dataclass(frozen=True)
class InjectedFile:
    path: str
    size: int
    sha256: str | None = None
    key: str | None = None
    mac: str | None = None

    @property
    def sealed(self) -> bool:
        return self.key is not None


@dataclass(frozen=True)
class Injection:
    disk: str
    when: str
    files: tuple[InjectedFile, ...]
    directories: tuple[str, ...] = ()
    volume: int | None = None


def mac_key(host_key: bytes) -> bytes:
    return hmac.new(host_key, _MAC_CONTEXT, hashlib.sha256).digest()


def mac_of(host_key: bytes, path: str, content: bytes) -> str:
    """The record's MAC of a sealed file: bound to its path in the guest."""
    return hmac.new(mac_key(host_key), path.encode("utf-8") + b"\0" + content, hashlib.sha256).hexdigest()


def file_record(path: str, content: bytes, key_id: str | None, host_key: bytes | None) -> InjectedFile:
    if key_id is None or host_key is None:
        return InjectedFile(path=path, size=len(content), sha256=hashlib.sha256(content).hexdigest())
    return InjectedFile(path=path, size=len(content), key=key_id, mac=mac_of(host_key, path, content))


def check_target(disk: str) -> str:
    if not _TARGET.match(disk):
        raise PayloadError(f"injection record: disk {quote(disk, 40)} is not a disk target (vda, sda...)")
    return disk


def _path(element, where: str) -> str:
    text = element.get("path") or ""
    try:
        paths.components(text, where)
    except PayloadhookError as exc:
        raise PayloadError(f"injection record: {exc}") from None
    if text in ("/", ) or text != text.rstrip("/"):
        raise PayloadError(f"injection record: {where} {quote(text)} is not a file's path")
    return text


def _file(element) -> InjectedFile:
    path = _path(element, "file")
    size_text = element.get("size") or ""
    if not size_text.isdigit() or len(size_text) > 15:
        raise PayloadError(f"injection record: file {quote(path)} has no size")
    sha256, key, mac = element.get("sha256"), element.get("key"), element.get("mac")
    if key is not None:
        check_key_id(key)
        if mac is None or not _HEX64.match(mac) or sha256 is not None:
            raise PayloadError(f"injection record: sealed file {quote(path)} needs a mac and no sha256")
    elif sha256 is None or not _HEX64.match(sha256):
        raise PayloadError(f"injection record: file {quote(path)} has no sha256")
    return InjectedFile(path=path, size=int(size_text), sha256=sha256, key=key, mac=mac)


def _injection(element) -> Injection:
    disk = check_target(element.get("disk") or "")
    when = element.get("when") or ""
    if not _WHEN.match(when):
        raise PayloadError(f"injection record of disk {disk}: when= is not a UTC time (YYYY-MM-DDTHH:MM:SSZ)")
    volume_text = element.get("volume")
    if volume_text is not None and (not volume_text.isdigit() or len(volume_text) > 3):
        raise PayloadError(f"injection record of disk {disk}: volume= is not a partition number")
    files, directories = [], []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag == FILE:
            files.append(_file(child))
        elif child.tag == DIRECTORY:
            directories.append(_path(child, "directory"))
        else:
            raise PayloadError(f"injection record of disk {disk}: unexpected element")
    return Injection(disk=disk, when=when, files=tuple(files), directories=tuple(directories),
                     volume=int(volume_text) if volume_text is not None else None)


def read_injections(domain) -> tuple[Injection, ...]:
    """The injection records of a parsed domain (none: ``()``); a disk recorded twice is refused."""
    root = payloads_root(domain)
    if root is None:
        return ()
    found = tuple(_injection(element) for element in root.findall(INJECTED))
    disks = [item.disk for item in found]
    if len(set(disks)) != len(disks):
        raise PayloadError("injection record: a disk has more than one <pl:injected>")
    return found


def element_of(injection: Injection):
    from lxml import etree
    element = etree.Element(INJECTED, nsmap={PREFIX: PL[1:-1]}, disk=injection.disk, when=injection.when)
    if injection.volume is not None:
        element.set("volume", str(injection.volume))
    for directory in injection.directories:
        etree.SubElement(element, DIRECTORY, path=directory)
    for item in injection.files:
        child = etree.SubElement(element, FILE, path=item.path, size=str(item.size))
        if item.sealed:
            child.set("key", item.key or "")
            child.set("mac", item.mac or "")
        else:
            child.set("sha256", item.sha256 or "")
    return element


def set_injection(domain, disk: str, injection: Injection | None) -> None:
    """Put ``injection`` as the record of ``disk`` in the parsed domain (None: remove it),
    creating ``<metadata>`` and ``<pl:payloads>`` where needed, and removing them when
    nothing else is left in them."""
    from lxml import etree

    from ..domain import layout
    from ..domain.metadata import PAYLOADS
    root = payloads_root(domain)
    old = [e for e in root.findall(INJECTED) if e.get("disk") == disk] if root is not None else []
    if injection is None:
        for element in old:
            layout.remove(element)
        if root is not None and not any(isinstance(c.tag, str) for c in root):
            metadata = root.getparent()
            layout.remove(root)
            if metadata is not None and len(metadata) == 0 and not (metadata.text or "").strip():
                layout.remove(metadata)
        return
    element = element_of(injection)
    if old:
        layout.replace(old[0], element)
        for extra in old[1:]:
            layout.remove(extra)
        return
    if root is None:
        metadata = domain.find("metadata")
        if metadata is None:
            metadata = etree.Element("metadata")
            anchor = domain.find("uuid")
            if anchor is None:
                anchor = domain.find("name")
            layout.insert(domain, domain.index(anchor) + 1 if anchor is not None else 0, metadata)
        root = etree.Element(PAYLOADS, nsmap={PREFIX: PL[1:-1]})
        layout.insert(metadata, len(metadata), root)
    layout.insert(root, len(root), element)
