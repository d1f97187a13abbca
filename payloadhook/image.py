"""One entry to both image builders, by payload type."""

from __future__ import annotations

from .model import CDROM, Payload


def build_image(payload: Payload) -> bytes:
    """The bytes of the payload's image: ISO 9660 for a cdrom, FAT12 for a floppy."""
    if payload.type == CDROM:
        from .iso import build_iso
        return build_iso(payload)
    from .floppy import build_floppy
    return build_floppy(payload)


def image_suffix(payload_type: str) -> str:
    return ".iso" if payload_type == CDROM else ".img"
