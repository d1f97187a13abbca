"""The rule for a path in the guest: an absolute POSIX path (``/var/lib/x``; on a Windows
system volume ``/Windows/Panther``), components separated by '/', none empty, '.' or '..',
none holding a control character or a byte that is not UTF-8, none over 255 bytes, at most
64 deep; a file's name under ``--into`` (it may hold '/') by the same rule."""

from __future__ import annotations

from ..errors import UsageError, quote

COMPONENT_MAX_BYTES = 255
MAX_DEPTH = 64


def components(path: str, what: str = "--into") -> tuple[str, ...]:
    """The components of the absolute guest path ``path`` ('/' alone: none)."""
    if not path.startswith("/"):
        raise UsageError(f"{what} {quote(path)} is not an absolute path in the guest (start it with /)")
    path = path.rstrip("/") or "/"     # /var/lib/cloud/ as typed
    parts = tuple(part for part in path.split("/")[1:])
    if parts == ("",):
        return ()
    for part in parts:
        if part in ("", ".", ".."):
            raise UsageError(f"{what} {quote(path)} has an empty, '.' or '..' component")
        if not part.isprintable():
            raise UsageError(f"{what} {quote(path)} holds a control or unprintable character")
        try:
            part.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"{what} {quote(path)} is not UTF-8") from None
    if len(parts) > MAX_DEPTH:
        raise UsageError(f"{what} {quote(path)} is deeper than {MAX_DEPTH} components")
    for part in parts:
        if len(part.encode("utf-8")) > COMPONENT_MAX_BYTES:
            raise UsageError(f"{what} {quote(path)} has a component over {COMPONENT_MAX_BYTES} bytes")
    return parts


def join(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(parts)


def under(directory: tuple[str, ...], name: str) -> tuple[str, ...]:
    """The components of file ``name`` (a payload name, may hold '/') under ``directory``."""
    if name.startswith("/"):
        raise UsageError(f"file name {quote(name)} is absolute; names are relative to --into")
    return components(join(directory + tuple(name.split("/"))), "file")
