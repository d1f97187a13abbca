"""The payloads an OVF declares, as declared: what ``ovf import`` takes and ``ovf show`` lists.

Reading is pure: each file comes back with its name, its declared size and SHA-256, and its
inline content not yet decoded (or none). Limits are checked on that, before any content
is decoded; the caller fills in what the OVF leaves out (``ovf import --files-from DIR``
reads it from a directory) through :func:`to_payloads`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PayloadError, quote, shown
from ..model import FWCFG, NETWORK, Payload, PayloadFile, Sealed, check_key_id, decode_content
from .envelope import OTHER_RESOURCE, TYPES_BY_RESOURCE, children, hardware_section, parse_ovf, rasd, text, vm_payload

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

#: Longest size an OVF may declare, in digits (a 64-bit count of bytes).
_SIZE_DIGITS = 20


@dataclass(frozen=True)
class OvfFile:
    """One ``vmPayload/file`` as declared: ``path``, optional ``size`` and ``sha256``, and an
    optional ``content`` (its text, not decoded, and its ``encoding``)."""

    name: str
    declared_size: int | None
    sha256: str | None
    encoding: str | None
    content: str | None          # None: the OVF carries no content for this file
    key: str | None = None       # the key id of sealed content (encoding "sealed")

    @property
    def inline(self) -> bool:
        return self.content is not None

    @property
    def verifiable(self) -> bool:
        """Whether the OVF declares something to check content from elsewhere against."""
        return self.declared_size is not None or self.sha256 is not None

    @property
    def size(self) -> int:
        """The size limits are checked on before anything is decoded or read: the declared
        one, else the inline content's decoded size, else 0 (checked again once read)."""
        if self.declared_size is not None:
            return self.declared_size
        if self.content is None:
            return 0
        from ..domain.metadata import DeclaredFile
        return DeclaredFile(self.name, self.encoding, self.content, self.key).size

    def check(self, entry: PayloadFile) -> PayloadFile:
        """``entry`` if its content matches what is declared, else a refusal."""
        if self.declared_size is not None and self.declared_size != entry.size:
            raise PayloadError(f"OVF file {quote(self.name)}: {entry.size} bytes, but the OVF records "
                               f"{self.declared_size}")
        if self.sha256 is not None and (entry.sha256 is None or self.sha256.lower() != entry.sha256):
            raise PayloadError(f"OVF file {quote(self.name)}: SHA-256 differs from the one the OVF records")
        return entry


@dataclass(frozen=True)
class OvfPayload:
    """One payload item as declared."""

    type: str
    target: str | None
    volume_id: str | None
    files: tuple[OvfFile, ...]


def _size(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > _SIZE_DIGITS:
        raise PayloadError(f"OVF file {quote(name)}: size {quote(value, 30)} is not a number of bytes")
    return int(value)


def _digest(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) != 64 or not all(ch in "0123456789abcdefABCDEF" for ch in value):
        raise PayloadError(f"OVF file {quote(name)}: sha256 is not 64 hexadecimal digits")
    return value.lower()


def read_declared(data: bytes) -> tuple[OvfPayload, ...]:
    """The payload items of an OVF, in document order, as declared (one pass)."""
    section = hardware_section(parse_ovf(data))
    payloads = []
    for item in children(section, "Item"):
        payload = vm_payload(item)
        if payload is None:
            continue
        resource = rasd(item, "ResourceType")
        payload_type = TYPES_BY_RESOURCE.get((resource or "").strip())
        if (resource or "").strip() == OTHER_RESOURCE and text(item, "Device") in (NETWORK, FWCFG):
            payload_type = text(item, "Device")
        if payload_type is None or (text(item, "Device") or payload_type) != payload_type:
            raise PayloadError(f"OVF payload item has ResourceType {quote(resource, 20)}; expected 15 (cdrom) "
                               "or 14 (floppy), or 1 with Device network or fwcfg")
        files = []
        for element in children(payload, "file"):
            name = text(element, "path") or ""
            content = [c for c in children(element, "content")]
            files.append(OvfFile(name=name, declared_size=_size(text(element, "size"), name),
                                 sha256=_digest(text(element, "sha256"), name),
                                 encoding=content[0].get("encoding") if content else None,
                                 content=(content[0].text or "") if content else None,
                                 key=content[0].get("key") if content else None))
        payloads.append(OvfPayload(type=payload_type, target=text(payload, "target"),
                                   volume_id=text(payload, "volId"), files=tuple(files)))
    return tuple(payloads)


def to_payloads(declared: tuple[OvfPayload, ...] | list[OvfPayload],
                content_for: Callable[[OvfFile], bytes] | None = None) -> list[Payload]:
    """Payloads from what an OVF declares: inline content decoded, the rest from
    ``content_for(file)``; every file checked against its declared size and SHA-256. Without
    ``content_for``, files without content are an error that names them."""
    missing = [f.name for p in declared for f in p.files if not f.inline]
    if missing and content_for is None:
        shown_names = ", ".join(quote(m) for m in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise PayloadError(f"OVF carries no content for {shown_names}{more}; give --files-from DIR")
    payloads = []
    for payload in declared:
        files = []
        for item in payload.files:
            if item.inline and item.encoding == "sealed":
                blob = decode_content(item.content or "", item.encoding, item.name)
                entry = PayloadFile(name=item.name, content=b"", sealed=Sealed(check_key_id(item.key), blob))
            elif item.inline:
                entry = PayloadFile(name=item.name, content=decode_content(item.content or "", item.encoding,
                                                                           item.name))
            else:
                entry = PayloadFile(name=item.name, content=content_for(item))   # type: ignore[misc]
            files.append(item.check(entry))
        payloads.append(Payload(type=payload.type, files=tuple(files), target=payload.target,
                                volume_id=payload.volume_id))
    return payloads


def read_payloads(data: bytes, content_for: Callable[[OvfFile], bytes] | None = None) -> list[Payload]:
    """:func:`read_declared` then :func:`to_payloads`."""
    return to_payloads(read_declared(data), content_for)


def describe_target(payload: OvfPayload) -> str:
    return shown(payload.target, 20) if payload.target else "(any)"
