"""``payloadhook uninstall-hook``: remove what install-hook placed."""

from __future__ import annotations

from .install_hook import report

HELP = "remove what install-hook placed (an edited configuration is kept)"


def add_arguments(parser) -> None:
    parser.add_argument("--root", default="/", help="remove below this directory (default /)")
    parser.add_argument("--no-reload", action="store_true", help="do not reload libvirt")


def handle(args) -> int:
    from ..install import uninstall
    return report(uninstall(args.root), args)
