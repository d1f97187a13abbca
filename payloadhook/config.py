"""The configuration file (CONTRACT.md, section 3)."""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass

from .errors import ConfigError

DEFAULT_PATH = "/etc/payloadhook/payloadhook.conf"
ENV_VAR = "PAYLOADHOOK_CONF"
SECTION = "payloadhook"

MiB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    #: Where images are written; a disk source must lie directly in it.
    image_dir: str = "/run/payloadhook"
    #: Largest decoded content of one file, in bytes.
    max_file_size: int = 16 * MiB
    #: Largest sum of decoded contents of one payload, in bytes.
    max_payload_size: int = 64 * MiB
    #: Where the configuration was read from (None: defaults only).
    source: str | None = None


_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "M": MiB, "G": 1024 * MiB}


def parse_size(text: str) -> int:
    """``16777216``, ``16M``, ``16MiB`` -> bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError("not a size in bytes (examples: 1048576, 512K, 16M)")
    unit = (match.group(2) or "")[:1].upper()
    return int(match.group(1)) * _UNITS[unit]


def config_path(environ: os._Environ | dict | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(ENV_VAR) or DEFAULT_PATH


def load_config(path: str | None = None, *, environ=None) -> Config:
    """Read the configuration; a missing file means the defaults.

    ``path`` None means ``$PAYLOADHOOK_CONF`` or the default path. A file named
    explicitly (argument or environment) must exist.
    """
    explicit = path is not None or bool((os.environ if environ is None else environ).get(ENV_VAR))
    path = path or config_path(environ)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as stream:
            parser.read_file(stream)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"configuration file {path} does not exist") from None
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
        raise ConfigError(f"configuration file {path} cannot be read: {reason}") from None
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"configuration file {path} is malformed: {first}") from None

    values: dict = {"source": path}
    if parser.has_section(SECTION):
        for key, raw in parser.items(SECTION):
            values[key] = _parse_value(path, key, raw)
    unknown = [s for s in parser.sections() if s != SECTION]
    if unknown:
        raise ConfigError(f"configuration file {path}: unknown section [{unknown[0]}]")
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
