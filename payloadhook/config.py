"""The configuration file (README, "Configuration"), and the limits it sets.

Read at every ``release`` of every domain, so it imports nothing (configparser, re and
dataclasses are dear to import: docs/speed.md), which is why :class:`Config` is a frozen
class written out rather than a dataclass. The format is the INI subset the contract needs:
``[section]`` headers, ``key = value`` lines, and comment lines starting with ``#`` or
``;``. Anything else is refused as malformed, with its line number; so is a file over
:data:`MAX_CONFIG_BYTES`, never read in part.

:func:`check` holds every limit a payload is held to, before any work: the hook's
prepare and migrate filter, the command's attach, run-once, build, ovf import and check,
and the web console all call it, on payloads as declared (content not decoded yet) or
as built from local files. :func:`check_sizes` is its size rule alone, which prepare
applies again once content is decoded; :class:`Budget` is the same limits counted as the
command reads files (before each is read), and :func:`content_limit` the most content a
domain's payloads hold together.
"""

from __future__ import annotations

from .posixenv import getenv, normpath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, Protocol

    class FileLike(Protocol):
        @property
        def name(self) -> str: ...
        @property
        def size(self) -> int: ...

    class PayloadLike(Protocol):
        @property
        def type(self) -> str: ...
        @property
        def files(self) -> Sequence[FileLike]: ...

DEFAULT_PATH = "/etc/payloadhook/payloadhook.conf"
ENV_VAR = "PAYLOADHOOK_CONF"
SECTION = "payloadhook"

MiB = 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": MiB, "mb": MiB, "mib": MiB,
          "g": 1024 * MiB, "gb": 1024 * MiB, "gib": 1024 * MiB}

#: A configuration file larger than this is refused whole (a real one is a few hundred bytes).
MAX_CONFIG_BYTES = MiB

#: A 1.44 MB floppy image, whatever it holds.
FLOPPY_IMAGE_BYTES = 1474560
#: What an ISO image takes beyond its files' sectors, as an upper estimate: the system area
#: and descriptors, a directory's sectors in both trees, a file's records (ISO 9660 with
#: Rock Ridge, Joliet).
ISO_BASE_BYTES = 64 * 1024
ISO_DIRECTORY_BYTES = 4096
ISO_FILE_BYTES = 1024
SECTOR = 2048


class Config:
    """The settings, frozen; equal when every field is. Defaults are the README's."""

    __slots__ = ("image_dir", "max_file_size", "max_payload_size", "max_payloads", "max_files",
                 "max_directories", "max_image_size", "key_dir", "inject_record_dir", "source")

    image_dir: str
    max_file_size: int
    max_payload_size: int
    max_payloads: int
    max_files: int
    max_directories: int
    max_image_size: int
    key_dir: str
    inject_record_dir: str
    source: str | None

    def __init__(self, image_dir: str = "/run/payloadhook", max_file_size: int = 16 * MiB,
                 max_payload_size: int = 64 * MiB, max_payloads: int = 8, max_files: int = 10000,
                 max_directories: int = 1000, max_image_size: int = 256 * MiB,
                 key_dir: str = "/etc/payloadhook/keys",
                 inject_record_dir: str = "/var/lib/payloadhook/injected", source: str | None = None) -> None:
        values = locals()
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])
        # image_dir: where images are written; a disk source must lie directly in it.
        # max_file_size: largest decoded content of one file. max_payload_size: largest sum
        # of one payload's files. max_payloads: payloads in one domain. max_files and
        # max_directories: in one payload. max_image_size: the images of one domain together
        # (estimated before building). key_dir: the sealing keys (seal/keys.py).
        # inject_record_dir: this host's own copy of what inject wrote (inject/ledger.py).
        # source: the file read (None: defaults only).

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Config is frozen; use replace() to change {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Config is frozen")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "Config(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"

    def check(self, payloads: Sequence[PayloadLike]) -> None:
        """:func:`check` under these limits."""
        check(payloads, self)

    def replace(self, **changes: Any) -> Config:
        return Config(**{**{name: getattr(self, name) for name in self.__slots__}, **changes})


#: The keys holding a count, and those holding a size in bytes.
_COUNTS = ("max_payloads", "max_files", "max_directories")
_SIZES = ("max_file_size", "max_payload_size", "max_image_size")


def parse_size(text: str) -> int:
    """``16777216``, ``16M``, ``16MiB`` -> bytes (binary units)."""
    text = text.strip()
    digits = len(text) - len(text.lstrip("0123456789"))
    unit = text[digits:].strip().lower()
    if digits == 0 or unit not in _UNITS or not text[:digits].isascii():
        raise ValueError("not a size in bytes (examples: 1048576, 512K, 16M)")
    return int(text[:digits]) * _UNITS[unit]


def config_path(environ: Mapping[str, str] | None = None) -> str:
    return getenv(ENV_VAR, environ) or DEFAULT_PATH


def load_config(path: str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration; a missing file means the defaults.

    ``path`` None means ``$PAYLOADHOOK_CONF`` or the default path. A file named
    explicitly (argument or environment) must exist.
    """
    explicit = path is not None or bool(getenv(ENV_VAR, environ))
    path = path or config_path(environ)
    try:
        data = _read(path)
        text = data.decode("utf-8")
    except FileNotFoundError:
        if explicit:
            raise _refused(path, " does not exist") from None
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
        raise _refused(path, f" cannot be read: {reason}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise _refused(path, f" is over {MAX_CONFIG_BYTES} bytes; refused rather than read in part")
    return Config(**_parse(path, text))


def _read(path: str) -> bytes:
    """Up to MAX_CONFIG_BYTES + 1 bytes of the file, by posix calls: no io stream and no
    1 MiB buffer for a file of a few lines (the hook reads it at every release)."""
    import posix
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks, size = [], 0
        while size <= MAX_CONFIG_BYTES:
            chunk = posix.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        posix.close(fd)
    return b"".join(chunks)


def _refused(path: str, what: str) -> Exception:
    """The ConfigError for the file ``path``: errors.py is imported only when something is
    refused (a release that reads a sound file, at every domain stop, never is)."""
    from .errors import ConfigError, shown
    return ConfigError(f"configuration file {shown(path)}{what}")


def _shown(value: str, limit: int) -> str:
    from .errors import shown
    return shown(value, limit)


def _quoted(value: str, limit: int) -> str:
    from .errors import quote
    return quote(value, limit)


def _parse(path: str, text: str) -> dict[str, Any]:
    values: dict[str, Any] = {"source": path}
    section = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0] in " \t":
            raise _refused(path, f" is malformed: line {number}: indented line (continuation lines "
                              "are not supported)")
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise _refused(path, f" is malformed: line {number}: bad section header")
            section = stripped[1:-1].strip()
            if section != SECTION:
                raise _refused(path, f": unknown section [{_shown(section, 40)}]")
            continue
        key, equals, raw = stripped.partition("=")
        key = key.strip().lower()
        if not equals or not key:
            raise _refused(path, f" is malformed: line {number}: expected key = value")
        if section is None:
            raise _refused(path, f" is malformed: line {number}: {_shown(key, 40)} comes before "
                              f"the [{SECTION}] section")
        if key in values:
            raise _refused(path, f" is malformed: line {number}: {_shown(key, 40)} is set twice")
        values[key] = _parse_value(path, key, raw)
    return values


def _parse_value(path: str, key: str, raw: str) -> str | int:
    if key in ("image_dir", "key_dir", "inject_record_dir"):
        value = raw.strip()
        if not value.startswith("/"):
            raise _refused(path, f": {key} must be an absolute path")
        normal = normpath(value)
        if normal in ("/", "//"):
            raise _refused(path, f": {key} must not be /")
        return normal
    if key in _SIZES:
        try:
            number = parse_size(raw)
        except ValueError as exc:
            raise _refused(path, f": {key} is {exc}") from None
    elif key in _COUNTS:
        if not (raw.strip().isascii() and raw.strip().isdigit()):
            raise _refused(path, f": {key} is not a whole number")
        number = int(raw.strip())
    else:
        raise _refused(path, f": unknown key {_quoted(key, 40)} in [{SECTION}]")
    if number <= 0:
        raise _refused(path, f": {key} must be positive")
    return number


def image_bytes(payload: PayloadLike, directories: int | None = None, data: int | None = None) -> int:
    """An upper estimate of the image a payload becomes, from its files' names and sizes
    (``directories`` and ``data``, the sectors its files take, when already counted)."""
    if payload.type == "floppy":
        return FLOPPY_IMAGE_BYTES
    files = payload.files
    if data is None:
        data = sum(-(-item.size // SECTOR) * SECTOR for item in files)
    if directories is None:
        directories = _directories(files, None)
    return ISO_BASE_BYTES + data + ISO_FILE_BYTES * len(files) + ISO_DIRECTORY_BYTES * directories


def _directories(files: Iterable[FileLike], stop: int | None) -> int:
    """How many directories the names make (``a/b/c`` makes ``a`` and ``a/b``); counting
    stops past ``stop``. Linear in the names' length: each directory is a (parent, name) key."""
    ids: dict[tuple[int, str], int] = {}
    walked: set[str] = set()    # directory paths whose directories are counted: most files' is
    for item in files:
        path = item.name.rpartition("/")[0]
        if not path or path in walked:
            continue
        walked.add(path)
        parent = 0
        for part in path.split("/"):
            key = (parent, part)
            found = ids.get(key)
            if found is None:
                found = ids[key] = len(ids) + 1
                if stop is not None and len(ids) > stop:
                    return len(ids)
            parent = found
    return len(ids)


def check_sizes(payload: PayloadLike, max_file_size: int, max_payload_size: int) -> int:
    """Each file of ``payload`` and their sum held to the size limits; return the bytes of
    the ISO sectors the files take (for image_bytes: each size is worked out once)."""
    size = sectors = 0
    for item in payload.files:
        file_size = item.size
        if file_size > max_file_size:
            from .errors import PayloadError, quote
            raise PayloadError(f"file {quote(item.name)} is {file_size} bytes, over max_file_size "
                               f"({max_file_size})")
        size += file_size
        sectors += -(-file_size // SECTOR)
    if size > max_payload_size:
        from .errors import PayloadError, quote
        raise PayloadError(f"{quote(payload.type, 20)} payload is {size} bytes, over max_payload_size "
                           f"({max_payload_size})")
    return sectors * SECTOR


def content_limit(config: Config) -> int:
    """The most content a domain's payloads hold together: max_payloads of max_payload_size."""
    return config.max_payloads * config.max_payload_size


class Budget:
    """The limits, counted as the command reads the files of one payload: each file's size
    (its fstat, before it is read), their total, and the number of files and directories.
    ``path`` is what a message names (shown: printable and short as it is, else escaped)."""

    def __init__(self, config: Config) -> None:
        self.max_file_size = config.max_file_size
        self.max_payload_size = config.max_payload_size
        self.max_files = config.max_files
        self.max_directories = config.max_directories
        self.total = self.files = self.directories = 0

    def take_file(self, path: str, size: int) -> None:
        # errors imported only to refuse: an import in a function costs a call of importlib's
        # each time, and this runs once a file
        self.total += size
        self.files += 1
        if size > self.max_file_size or self.total > self.max_payload_size or self.files > self.max_files:
            from .errors import PayloadError, shown_path
            if size > self.max_file_size:
                raise PayloadError(f"input {shown_path(path)} is {size} bytes, over max_file_size "
                                   f"({self.max_file_size})")
            if self.total > self.max_payload_size:
                raise PayloadError(f"inputs add up to more than max_payload_size ({self.max_payload_size} bytes) "
                                   f"at {shown_path(path)}")
            raise PayloadError(f"inputs hold more than max_files ({self.max_files}) files")

    def take_dir(self, path: str) -> None:
        self.directories += 1
        if self.directories > self.max_directories:
            from .errors import PayloadError, shown_path
            raise PayloadError(f"inputs hold more than max_directories ({self.max_directories}) directories "
                               f"at {shown_path(path)}")


def check(payloads: Sequence[PayloadLike], config: Config) -> None:
    """Hold a domain's payloads (or the one payload a command builds) to the limits, before
    any content is decoded or any image built: counts first, then sizes, then the images'
    total. ``payloads`` are metadata.Declared (as read from XML) or model.Payload."""
    from .errors import PayloadError, quote
    if len(payloads) > config.max_payloads:
        raise PayloadError(f"the domain declares {len(payloads)} payloads, over max_payloads ({config.max_payloads})")
    total = 0
    for index, payload in enumerate(payloads, 1):
        # the type as declared, not yet checked: quoted, as any value from input
        kind = quote(payload.type, 20)
        where = f"payload {index} ({kind})" if len(payloads) > 1 else f"{kind} payload"
        files = payload.files
        if len(files) > config.max_files:
            raise PayloadError(f"{where} has {len(files)} files, over max_files ({config.max_files})")
        directories = _directories(files, config.max_directories)
        if directories > config.max_directories:
            raise PayloadError(f"{where} has more than {config.max_directories} directories, over "
                               "max_directories")
        data = check_sizes(payload, config.max_file_size, config.max_payload_size)
        total += image_bytes(payload, directories, data)
    if total > config.max_image_size:
        raise PayloadError(f"the domain's images would take about {total} bytes, over max_image_size "
                           f"({config.max_image_size})")
