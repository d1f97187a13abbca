"""One entry to both image builders, by payload type."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is never imported at run time on prepare's path (docs/speed.md)
    from typing import BinaryIO

from ..errors import PayloadError, SealError, quote
from ..model import CDROM, Payload


def _require_medium(payload: Payload) -> None:
    if not payload.is_medium:
        raise PayloadError(f"a {payload.type} payload has no image")


def _require_opened(payload: Payload) -> None:
    """A sealed file reaches a builder only opened (seal/opening.py): its content is b"" until
    then, and an image must never hold an empty file in its place."""
    for item in payload.files:
        if item.sealed is not None:
            raise SealError(f"sealed file {quote(item.name)} was not opened before the image was built")


def build_image(payload: Payload) -> bytes:
    """The bytes of the payload's image: ISO 9660 for a cdrom, FAT12 for a floppy."""
    _require_medium(payload)
    _require_opened(payload)
    if payload.type == CDROM:
        from .iso import build_iso
        return build_iso(payload)
    from .floppy import build_floppy
    return build_floppy(payload)


def write_image(payload: Payload, out: BinaryIO) -> int:
    """Write the payload's image to ``out`` as it is built; return the bytes written."""
    _require_medium(payload)
    _require_opened(payload)
    if payload.type == CDROM:
        from .iso import write_iso
        return write_iso(payload, out)
    from .floppy import write_floppy
    return write_floppy(payload, out)
