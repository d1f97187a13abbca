"""The ``payloadhook`` command (README, "The command"): one module per verb, as
cloud-init's ``cloudinit/cmd/``. A verb's module (its name with '-' as '_') has ``HELP``,
``add_arguments(parser)`` and ``handle(args) -> int``, and may have ``EPILOG``, texts
its help ends with (before the exit statuses), and ``HOLDS_SEALED = False`` where it never
holds sealed content or plaintext to seal (build). This module only builds the named verb's
parser (none for a plain build: cli/buildargs.py reads it without argparse), turns core dumps
off (seal/nodump.py) before any other verb reads its input, and dispatches; errors become one line on
stderr and a status through errors.exit_status, the mapping the hook uses too.
"""

from __future__ import annotations

import os
import sys

from .. import __version__
from .common import EXIT_CODES

#: The verbs, in the order the top-level help lists them.
VERBS = ("build", "attach", "detach", "show", "list", "check", "run-once", "dumpxml", "ovf", "key", "reseal",
         "adopt", "inject", "gc", "serve", "install-hook", "uninstall-hook")

DEBUG_ENV = "PAYLOADHOOK_DEBUG"


def verb_module(verb: str):
    name = f"{__name__}.{verb.replace('-', '_')}"
    __import__(name)    # not importlib's import_module: importlib itself is an import
    return sys.modules[name]


def _verb_in(argv: list[str]) -> str | None:
    """The verb a command line names, if it can be told before parsing (else None)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-c", "--connect"):
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in VERBS else None
    return None


def parser(verb: str | None = None):
    """The command's parser; given ``verb``, with that verb alone: the top help, which
    lists every verb, imports every verb's module, a cost a build should not pay."""
    import argparse

    from .parsers import Formatter, Parser
    top = Parser(
        prog="payloadhook", formatter_class=Formatter,
        description="Files for libvirt domains at start-up, on a CD-ROM or floppy built by the qemu hook.",
        epilog=EXIT_CODES)
    top.add_argument("-c", "--connect", metavar="URI", help="libvirt URI (default: libvirt's default URI)")
    top.add_argument("--debug", action="store_true",
                     help=f"on an internal error, print its traceback for a bug report (also {DEBUG_ENV}=1); "
                     "never content")
    top.add_argument("--version", action="version", version=f"payloadhook {__version__}")
    verbs = top.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in VERBS:
        if verb is not None and name != verb:
            continue
        module = verb_module(name)
        epilog = "\n\n".join((*getattr(module, "EPILOG", ()), EXIT_CODES))
        sub = verbs.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=Formatter,
                               epilog=epilog)
        # after the verb too; SUPPRESS keeps a --debug given before it
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.add_arguments(sub)
    return top


def parse_args(top, argv: list[str]):
    """Parse ``argv`` with ``top``. Inputs may follow options (``attach vm --type cdrom DIR``):
    argparse gives a positional of any count (``*``) only the arguments before the first
    option, so what it leaves over becomes inputs, unless it looks like an option."""
    args, extra = top.parse_known_args(argv)
    if extra:
        if getattr(args, "inputs", None) is None or any(e.startswith("-") and e != "-" for e in extra):
            top.error("unrecognized arguments: " + " ".join(extra))
        args.inputs = args.inputs + extra
    return args


def _print_traceback(exc: BaseException | None) -> None:
    """Where a bug happened, for a bug report: files, lines and exception types, without
    any exception's message or local value (those can quote a payload)."""
    import traceback

    from ..errors import one_line
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        sys.stderr.write(one_line(f"debug: {type(exc).__module__}.{type(exc).__qualname__}, raised at:"))
        for frame in traceback.extract_tb(exc.__traceback__):
            print(f"  {frame.filename}:{frame.lineno} in {frame.name}", file=sys.stderr)
        exc = exc.__cause__ or exc.__context__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from .buildargs import parse
    args = parse(argv) or parse_args(parser(_verb_in(argv)), argv)
    from .. import log
    from ..errors import PayloadhookError, error_line, exit_status, one_line
    previous, log.stream = log.stream, sys.stderr    # warnings: one line each, like errors
    try:
        module = verb_module(args.verb)
        # before a verb reads its input: a document read for sealing (attach --seal
        # --files-json -, ovf import), or opened sealed content, is plaintext in memory;
        # a verb that never holds either says so (build)
        if getattr(module, "HOLDS_SEALED", True):
            from ..seal.nodump import forbid_core_dumps
            forbid_core_dumps()
        return module.handle(args)
    except (Exception, KeyboardInterrupt) as exc:
        if not isinstance(exc, KeyboardInterrupt):
            debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
            if debug and not isinstance(exc, PayloadhookError):
                _print_traceback(exc)
            sys.stderr.write(one_line(error_line(exc, args.verb)))
        return exit_status(exc)
    finally:
        log.stream = previous


if __name__ == "__main__":
    sys.exit(main())
