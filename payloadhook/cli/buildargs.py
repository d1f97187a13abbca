"""A plain ``build`` command line read without argparse, which with ``re``, ``gettext`` and
``locale`` costs a build more than its own work on a hundred files (docs/speed.md).

:func:`parse` takes only what it can read exactly as the command's argparse parser reads
it: the verb ``build`` after ``-c URI`` and ``--debug`` at most, then build's options by
their whole names (``--name VALUE``, ``--name=VALUE``, ``-o VALUE``) with a value that is
not an option, and inputs that do not start with '-'. On anything else (``--help``, an
abbreviation, a preset, ``--``, a missing ``-o``, a value argparse would refuse) it gives
None and the command parses with argparse, whose help and messages stay the only ones.
tests/test_cli_offline.py holds the two to the same result, and this table to build's
parser.
"""

from __future__ import annotations

from .common import TYPES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: build's options that take a value, by option string: their attribute (argparse's dest)
#: and the values allowed (None: any).
VALUES: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "--type": ("type", TYPES), "--label": ("label", None), "-o": ("output", None), "--output": ("output", None),
    "--files-json": ("files_json", None),
}
#: build's flags (store_true), by option string: their attribute.
FLAGS = {"--follow-symlinks": "follow_symlinks", "--debug": "debug"}
#: build's options left to argparse (the presets, their mutually exclusive group, and
#: --net's append), and argparse's own.
DECLINED = ("--cloud-init", "--config-drive", "--sysprep", "--ovf-env", "--instance-id", "--net", "--ignition",
            "-h", "--help")
#: The attributes argparse gives a build command line, with their defaults.
DEFAULTS: dict[str, Any] = {
    "connect": None, "debug": False, "verb": "build", "type": None, "label": None, "output": None, "files_json": None,
    "follow_symlinks": False, "inputs": None, "cloud_init": None, "config_drive": None, "sysprep": None,
    "ovf_env": None, "instance_id": None, "net": None, "ignition": None}


class Arguments:
    """What argparse's Namespace gives a verb: the parsed values as attributes."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:   # to mypy, any attribute, as argparse's Namespace
        def __getattr__(self, name: str) -> Any: ...

    def __eq__(self, other: object) -> bool:
        return vars(self) == getattr(other, "__dict__", None)

    def __repr__(self) -> str:
        return f"Arguments({vars(self)!r})"


def parse(argv: list[str]) -> Arguments | None:
    """``argv`` read as argparse reads it, or None where only argparse can tell."""
    values = dict(DEFAULTS)
    inputs: list[str] = []
    index = 0
    while index < len(argv):          # the command's own options, then the verb
        arg = argv[index]
        if arg == "--debug":
            values["debug"] = True
        elif arg in ("-c", "--connect") and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            index += 1
            values["connect"] = argv[index]
        elif arg == "build":
            break
        else:
            return None
        index += 1
    else:
        return None
    index += 1
    while index < len(argv):
        arg = argv[index]
        index += 1
        if not arg.startswith("-"):
            inputs.append(arg)
            continue
        name, equals, value = arg.partition("=")
        if name in FLAGS and not equals:
            values[FLAGS[name]] = True
            continue
        if name not in VALUES or (equals and not name.startswith("--")):
            return None
        if not equals:
            if index == len(argv):
                return None
            value = argv[index]
            index += 1
            if value.startswith("-") and value != "-":
                return None
        attribute, allowed = VALUES[name]
        if allowed is not None and value not in allowed:
            return None
        values[attribute] = value
    if values["output"] is None:
        return None
    values["inputs"] = inputs
    return Arguments(values)
