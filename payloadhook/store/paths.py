"""Path policy: which names the store may create or delete, and which directories it trusts.

A name the store acts on is a plain file name directly inside ``image_dir``: no ``/``, not
``.`` or ``..``, within NAME_MAX. Images never start with ``.`` (those are ours: the record
directory and temporary files); temporary names always do, and end in ``TMP_SUFFIX``.
"""

from __future__ import annotations

import os
import stat

from ..errors import StoreError, command, quote
from ..filenames import NAME_MAX, TMP_SUFFIX

#: image_dir: qemu's user must traverse it to open an image; nobody but root may list it.
IMAGE_DIR_MODE = 0o711
#: The record directory and the index: root's alone.
PRIVATE_DIR_MODE = 0o700
#: An image: root's alone, until libvirt relabels it for qemu.
IMAGE_MODE = 0o600
RECORD_MODE = 0o600


def _plain(name: str) -> bool:
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        return False
    try:       # a lone surrogate (JSON's "\ud800" in a record) names no file
        return len(name.encode("utf-8", "surrogateescape")) <= NAME_MAX
    except UnicodeEncodeError:
        return False


def is_image_name(name: object) -> bool:
    """A name an image may have: plain, and not one of ours (a leading dot)."""
    return isinstance(name, str) and _plain(name) and not name.startswith(".")


def is_plain_image_name(name: object) -> bool:
    """A name a disk source in image_dir may end in: an image's name, and printable. Prepare
    builds only these; the migrate filter moves a source into image_dir under one only."""
    return is_image_name(name) and isinstance(name, str) and name.isprintable()


def is_tmp_name(name: object) -> bool:
    """A name a file has while the store writes it."""
    return (isinstance(name, str) and _plain(name) and name.startswith(".")
            and name.endswith(TMP_SUFFIX) and len(name) > len(TMP_SUFFIX) + 1)


def check_image_dir(image_dir: str) -> str:
    if not image_dir.startswith("/") or os.path.normpath(image_dir) != image_dir or image_dir == "/":
        raise StoreError(f"image_dir {quote(image_dir)} must be an absolute, normalized path other than /")
    return image_dir


def image_name(image_dir: str, source: str) -> str:
    """The file name of a disk source, which must lie directly in image_dir."""
    if not source.startswith("/") or os.path.normpath(source) != source:
        raise StoreError(f"disk source {quote(source)} is not an absolute, normalized path")
    parent, name = os.path.split(source)
    if parent != image_dir:
        raise StoreError(f"disk source {quote(source)} is outside the image directory {image_dir}")
    if not is_plain_image_name(name):
        if name.startswith(".") or not name.isprintable():
            raise StoreError(f"disk source {quote(source)} has a name reserved or unprintable")
        raise StoreError(f"disk source {quote(source)} has a name longer than {NAME_MAX} bytes")
    return name


def check_owner(fd: int, path: str, mode: int) -> None:
    """Refuse a directory that someone other than us (root) could write into or own."""
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022 or not stat.S_ISDIR(st.st_mode):
        owner = "root:root" if os.geteuid() == 0 else f"{os.geteuid()}:{os.getegid()}"
        raise StoreError(f"directory {path} (owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}) may be "
                         f"written by someone other than {owner.partition(':')[0]}; refused "
                         f"(fix: {command('chown', owner, path)} && {command('chmod', f'{mode:04o}', path)})")
