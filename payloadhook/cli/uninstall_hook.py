"""``payloadhook uninstall-hook``: remove what install-hook placed, and say what stays on purpose."""

from __future__ import annotations

from .install_hook import report

HELP = "remove what install-hook placed (an edited configuration and the sealing keys are kept)"


def add_arguments(parser) -> None:
    parser.add_argument("--root", default="/", help="remove below this directory (default /)")
    parser.add_argument("--no-reload", action="store_true", help="do not reload libvirt")


def handle(args) -> int:
    from ..install import kept_keys, uninstall
    key_dir = _configured_key_dir() if args.root == "/" else None
    status = report(uninstall(args.root), args)
    note = kept_keys(args.root, key_dir)
    if note:
        print(note)
    return status


def _configured_key_dir() -> str | None:
    """The key directory of this host's configuration (read before uninstall may remove it)."""
    from ..config import load_config
    from ..errors import PayloadhookError
    try:
        return load_config().key_dir
    except PayloadhookError:
        return None
