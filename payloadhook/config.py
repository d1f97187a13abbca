"""The configuration file (CONTRACT.md section 3).

Read at every ``release`` of every domain, so it imports nothing: configparser, re
and dataclasses would cost about 10 ms of each domain stop. The format is the
INI subset the contract needs: ``[section]`` headers, ``key = value`` lines, and
comment lines starting with ``#`` or ``;``. Anything else is refused as malformed,
with its line number.
"""

import os

from .errors import ConfigError

DEFAULT_PATH = "/etc/payloadhook/payloadhook.conf"
ENV_VAR = "PAYLOADHOOK_CONF"
SECTION = "payloadhook"

MiB = 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": MiB, "mb": MiB, "mib": MiB,
          "g": 1024 * MiB, "gb": 1024 * MiB, "gib": 1024 * MiB}


class Config:
    """The settings; equal when every field is."""

    __slots__ = ("image_dir", "max_file_size", "max_payload_size", "source")

    def __init__(self, image_dir: str = "/run/payloadhook", max_file_size: int = 16 * MiB,
                 max_payload_size: int = 64 * MiB, source: "str | None" = None):
        #: Where images are written; a disk source must lie directly in it.
        self.image_dir = image_dir
        #: Largest decoded content of one file, in bytes.
        self.max_file_size = max_file_size
        #: Largest sum of decoded contents of one payload, in bytes.
        self.max_payload_size = max_payload_size
        #: Where the configuration was read from (None: defaults only).
        self.source = source

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._fields() == other._fields()

    def __repr__(self) -> str:
        return "Config(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"


def parse_size(text: str) -> int:
    """``16777216``, ``16M``, ``16MiB`` -> bytes (binary units)."""
    text = text.strip()
    digits = len(text) - len(text.lstrip("0123456789"))
    unit = text[digits:].strip().lower()
    if digits == 0 or unit not in _UNITS or not text[:digits].isascii():
        raise ValueError("not a size in bytes (examples: 1048576, 512K, 16M)")
    return int(text[:digits]) * _UNITS[unit]


def config_path(environ=None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(ENV_VAR) or DEFAULT_PATH


def load_config(path: "str | None" = None, *, environ=None) -> Config:
    """Read the configuration; a missing file means the defaults.

    ``path`` None means ``$PAYLOADHOOK_CONF`` or the default path. A file named
    explicitly (argument or environment) must exist.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get(ENV_VAR))
    path = path or config_path(environ)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read(1 << 20)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"configuration file {path} does not exist") from None
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
        raise ConfigError(f"configuration file {path} cannot be read: {reason}") from None

    values: dict = {"source": path}
    section = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0] in " \t":
            raise ConfigError(f"configuration file {path} is malformed: line {number}: "
                              "indented line (continuation lines are not supported)")
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise ConfigError(f"configuration file {path} is malformed: line {number}: bad section header")
            section = stripped[1:-1].strip()
            if section != SECTION:
                raise ConfigError(f"configuration file {path}: unknown section [{section}]")
            continue
        key, equals, raw = stripped.partition("=")
        key = key.strip().lower()
        if not equals or not key:
            raise ConfigError(f"configuration file {path} is malformed: line {number}: expected key = value")
        if section is None:
            raise ConfigError(f"configuration file {path} is malformed: line {number}: "
                              f"{key} comes before the [{SECTION}] section")
        if key in values:
            raise ConfigError(f"configuration file {path} is malformed: line {number}: {key} is set twice")
        values[key] = _parse_value(path, key, raw)
    return Config(**values)


def _parse_value(path: str, key: str, raw: str):
    if key == "image_dir":
        value = raw.strip()
        if not value.startswith("/"):
            raise ConfigError(f"configuration file {path}: image_dir must be an absolute path")
        normal = os.path.normpath(value)
        if normal in ("/", "//"):
            raise ConfigError(f"configuration file {path}: image_dir must not be /")
        return normal
    if key in ("max_file_size", "max_payload_size"):
        try:
            size = parse_size(raw)
        except ValueError as exc:
            raise ConfigError(f"configuration file {path}: {key} is {exc}") from None
        if size <= 0:
            raise ConfigError(f"configuration file {path}: {key} must be positive")
        return size
    raise ConfigError(f"configuration file {path}: unknown key {key!r} in [{SECTION}]")
