"""Documents a command line names: a domain XML file, an OVF, and the contents
``--files-from DIR`` supplies for an OVF's files. Each read as root, by the rule of
:mod:`payloadhook.local.paths`, bounded before it is parsed.
"""

from __future__ import annotations

import os


def names_a_file(source: str) -> bool:
    """Whether a DOMAIN|FILE.xml argument names a file: it holds a '/' or ends in '.xml'.
    One rule, whatever lies in the working directory: a file planted under a domain's
    name never stands in for the domain (give ./NAME for a file named otherwise)."""
    return "/" in source or source.endswith(".xml")


def read_xml_file(path: str) -> bytes:
    from ..xmlsafe import MAX_XML_BYTES
    from .files import read_file
    return read_file(path, "domain XML file", limit=MAX_XML_BYTES + 1)


def read_ovf_file(path: str) -> bytes:
    from ..ovf import MAX_OVF_BYTES
    from .files import read_file
    return read_file(path, "OVF", limit=MAX_OVF_BYTES + 1)


class FilesFrom:
    """Contents from ``--files-from DIR``: each file opened from DIR's descriptor one
    component at a time, following no symbolic link; regular files only, within the limits."""

    def __init__(self, directory: str, config, allow_unverified: bool) -> None:
        from .files import open_input_dir
        self.fd = open_input_dir(directory, False, "--files-from", follow_hint=False)
        self.directory = directory
        self.config = config
        self.allow_unverified = allow_unverified
        self.total = 0

    def close(self) -> None:
        os.close(self.fd)

    def __call__(self, item) -> bytes:
        from .. import fileio
        from ..errors import PayloadError, quote
        from ..model import check_name
        from .files import read_regular
        check_name(item.name, "cdrom")    # relative, no '.' or '..', no control character: before any open
        if not item.verifiable and not self.allow_unverified:
            raise PayloadError(f"OVF file {quote(item.name)} declares neither size nor SHA-256; refusing to take "
                               "it from --files-from unchecked (give --allow-unverified to accept it)")
        parent, _, base = item.name.rpartition("/")
        try:
            dir_fd = fileio.open_dir(parent, dir_fd=self.fd) if parent else os.dup(self.fd)
        except OSError as exc:
            if fileio.is_link_error(exc):
                raise PayloadError(f"OVF file {quote(item.name)}: a directory on its path below --files-from is a "
                                   "symbolic link or not a directory; refused") from None
            raise PayloadError(f"OVF file {quote(item.name)}: cannot be read from --files-from: "
                               f"{exc.strerror}") from None
        try:
            content = read_regular(os.path.join(self.directory, item.name), None, dir_fd=dir_fd, name=base,
                                   follow=False, limit=self.config.max_file_size, what="OVF file")
        finally:
            os.close(dir_fd)
        self.total += len(content)
        from ..config import content_limit
        if self.total > content_limit(self.config):
            raise PayloadError("files from --files-from add up to more than the payload limits allow")
        return content
