"""``payloadhook install-hook``: the hook and its files on a host without the RPM."""

from __future__ import annotations

from .common import EXIT_OK

HELP = ("install the qemu hook, configuration, stylesheet, tmpfiles entry and the seed service's unit (not "
        "enabled), then make libvirt notice the hook (hosts without the RPM)")


def add_arguments(parser) -> None:
    parser.add_argument("--root", default="/", help="install below this directory (default /)")
    parser.add_argument("--python", help="the interpreter that runs the hook (default: this one)")
    parser.add_argument("--no-reload", action="store_true", help="do not reload libvirt")


def report(changes, args) -> int:
    """Print each change, then reload libvirt when the host's own root was changed."""
    from ..install import reload_libvirt
    for change in changes:
        print(f"{change.action:9} {change.path}")
    if args.root == "/" and not args.no_reload:
        print(reload_libvirt())
    return EXIT_OK


def handle(args) -> int:
    from ..install import install
    status = report(install(args.root, args.python), args)
    print("network payloads need the seed service, not enabled by this: systemctl enable --now payloadhook-seed")
    return status
