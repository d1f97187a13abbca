"""argparse, in the command's look: the formatter its help is written with and the parser
that says a usage error in one line. Imported only where a parser is built (cli/__init__.py,
and the verbs with parsers of their own), never by a plain build (cli/buildargs.py)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import EXIT_USAGE, one_line


class Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, told the terminal's width as shutil would tell it, without
    importing shutil (and with it bz2 and lzma) on every command."""

    def __init__(self, prog: str, **kwargs):
        if kwargs.get("width") is None:
            try:
                columns = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                try:
                    columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
                except (AttributeError, ValueError, OSError):
                    columns = 80
            kwargs["width"] = (columns or 80) - 2
        super().__init__(prog, **kwargs)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line as every other refusal is, pointing at
    --help instead of printing the usage."""

    def error(self, message: str):
        verb = self.prog.partition(" ")[2]
        self.exit(EXIT_USAGE, one_line(f"{verb + ': ' if verb else ''}{message}; see '{self.prog} --help'"))
