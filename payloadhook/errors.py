"""The kinds of failure, each with a message a user can act on, and the exit status it means.

As in pycdlib, the type says whose fault it is; as in click, each class carries its
``exit_code``. Entry points (the hook, the command) turn any exception into one line,
``payloadhook: <message>``, and :func:`exit_status`: one mapping for both.
No message ever contains payload content; a value taken from input appears only
through :func:`quote`, escaped and bounded.

Imported by the hook on every call: nothing is imported here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sized

#: Exit statuses, the command's and the hook's (the hook uses 0 and 1 only, as libvirt reads
#: any non-zero status as a refusal; 2 for a hook called with too few arguments).
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_LIBVIRT = 3
EXIT_INTERRUPTED = 130

#: What every line the hook and the command print about a failure or a warning starts with.
PREFIX = "payloadhook: "


#: The most bytes a line printed through :func:`one_line` holds, its newline included.
LINE_LIMIT = 1023


def one_line(message: str) -> str:
    """``message`` as the hook and the command print it on stderr: after :data:`PREFIX`, on
    one line of its own, under 1 KiB. Callers build messages from :func:`quote` and
    :func:`shown`; whatever is left unprintable (a value a caller forgot to quote) is escaped
    here, and a line over the limit (several quoted values) is cut with '…', so no message
    forges a second line or floods a log, whatever its caller did."""
    if not message.isprintable():
        message = "".join(ch if ch.isprintable() else _escaped(ch) for ch in message)
    budget = LINE_LIMIT - len(PREFIX) - 1
    data = message.encode("utf-8")
    if len(data) > budget:
        message = data[:budget - len("…".encode())].decode("utf-8", "ignore") + "…"
    return f"{PREFIX}{message}\n"


class PayloadhookError(Exception):
    """Base of every error the library raises on purpose: a refusal, status 1."""

    exit_code = EXIT_REFUSED


class PayloadError(PayloadhookError):
    """The payload metadata is invalid: a bad name, bad content, over a limit."""


class XMLError(PayloadhookError):
    """A document (domain XML, OVF) is not acceptable XML."""


class BindingError(PayloadhookError):
    """A payload cannot be bound to a disk of the domain."""


class ConfigError(PayloadhookError):
    """The configuration file cannot be read or holds a bad value."""


class StoreError(PayloadhookError):
    """An image cannot be written, recorded or removed in the image directory."""


class SealError(PayloadhookError):
    """Sealed content cannot be sealed or opened: no key, a wrong key, a tampered, renamed or
    transplanted blob (README, "Sealed content")."""


class SeedError(PayloadhookError):
    """The network seed cannot be served: its service is not running, or cannot start."""


class GuestError(PayloadhookError):
    """A domain's own disk cannot be opened, read or written by injection (``inject``): the
    domain or disk is in use, the guest's file system is not what the injection needs, or
    libguestfs's appliance failed."""


class UsageError(PayloadhookError):
    """The command line is wrong (status 2, as click's UsageError)."""

    exit_code = EXIT_USAGE


class LibvirtError(PayloadhookError):
    """A libvirt call made by the command failed (status 3)."""

    exit_code = EXIT_LIBVIRT


def exit_status(exc: BaseException) -> int:
    """The exit status an exception ends a hook call or a command with."""
    if isinstance(exc, PayloadhookError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_REFUSED    # MemoryError, or a bug: a refusal all the same, never a success


def error_line(exc: BaseException, doing: str) -> str:
    """What follows ``payloadhook: `` for ``exc``, raised while ``doing`` (a verb or an
    operation). A bug's own message is left out: it might quote input."""
    if isinstance(exc, PayloadhookError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"out of memory in {doing}"
    return f"internal error ({type(exc).__name__}) in {doing}; please report it"


#: Escapes that read better than a code point.
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escaped(ch: str) -> str:
    """One character as an escape: a named one, a byte that is not UTF-8 (a surrogate escape)
    as ``\\xNN``, else its code point."""
    if ch in _NAMED:
        return _NAMED[ch]
    if "\udc80" <= ch <= "\udcff":
        return f"\\x{ord(ch) - 0xdc00:02x}"
    if ord(ch) < 0x100:
        return f"\\x{ord(ch):02x}"
    if ord(ch) < 0x10000:
        return f"\\u{ord(ch):04x}"
    return f"\\U{ord(ch):08x}"


def _escape(value: str | bytes | None, limit: int, quote_mark: str) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    cut = len(value) > limit
    text = value[:limit]
    not_utf8 = False
    if not text.isprintable() or "\\" in text or (quote_mark and quote_mark in text):
        parts = []
        for ch in text:
            if ch == quote_mark:
                parts.append("\\" + ch)
            elif ch.isprintable() and ch != "\\":
                parts.append(ch)
            else:
                not_utf8 = not_utf8 or "\udc80" <= ch <= "\udcff"
                parts.append(_escaped(ch))
        text = "".join(parts)
    if not not_utf8 and cut and any("\udc80" <= ch <= "\udcff" for ch in value[limit:]):
        not_utf8 = True
    return f"{quote_mark}{text}{'…' if cut else ''}{quote_mark}" + (" (not UTF-8)" if not_utf8 else "")


def quote(value: str | bytes | None, limit: int = 80) -> str:
    """A value taken from input, as it may appear in a one-line message: in quotes, with
    readable escapes for anything unprintable (so no newline forges a second line), cut to
    ``limit`` characters with '…', and a byte that is not UTF-8 (a surrogate escape, as
    ``os.fsdecode`` and ``surrogateescape`` leave it) shown as ``\\xNN`` and said to be so."""
    return _escape(value, limit, "'")


def shown(value: str | bytes | None, limit: int = 80) -> str:
    """:func:`quote` without the quotes, for values messages have always shown bare (a disk
    source, a target): a benign value reads as it did, a hostile one as escaped and bounded."""
    return _escape(value, limit, "")


def shown_path(path: str) -> str:
    """A path a user named, for a message: as it is when it is printable and short, else as
    :func:`quote` gives it."""
    return path if path.isprintable() and len(path) <= 200 else quote(path, 200)


#: The characters a shell word may hold and still be read as itself, unquoted (as shlex.quote).
_SHELL_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./_-")


def command(*words: str) -> str:
    """A command line a message suggests that an administrator run, as text a shell reads back
    as exactly these words: each word escaped and bounded as :func:`shown` shows it (no newline
    or terminal escape), then in single quotes unless it is plainly one word. A message names a
    domain here by its UUID, never by its definer's name; every suggested command that holds a
    value from input (a path, a name) goes through here, so none can run a second command."""
    out = []
    for word in words:
        text = shown(word, 200)
        if not text or not set(text) <= _SHELL_PLAIN:
            text = "'" + text.replace("'", "'\"'\"'") + "'"
        out.append(text)
    return " ".join(out)


def count(items: Sized, noun: str) -> str:
    """'1 file', '3 files': how many ``items`` there are, for a message."""
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")
