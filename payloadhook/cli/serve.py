"""``payloadhook serve``: the network seed service, as its systemd unit runs it."""

from __future__ import annotations

from .common import load

HELP = ("serve network payloads from http://169.254.169.254/ to their own domains only (the systemd unit "
        "payloadhook-seed.service runs this)")


def add_arguments(parser) -> None:
    parser.add_argument("--port", type=int, default=80, help="the TCP port (default 80, where cloud-init asks)")


def handle(args) -> int:
    from ..seed.service import serve
    config = load()
    return serve(config.image_dir, config.key_dir, args.port)
