"""``payloadhook attach``: add or replace a payload in a domain's saved definition."""

from __future__ import annotations

from .common import EXIT_OK, INPUTS, OVIRT, add_domain, add_inputs, add_payload_options, count, edit_definition, payload_from_args

HELP = ("add or replace a payload in a domain's definition, with the disk it binds to "
        "(takes effect at the next start)")
EPILOG = (OVIRT, INPUTS)


def add_arguments(parser) -> None:
    add_domain(parser)
    add_payload_options(parser)
    add_inputs(parser)


def handle(args) -> int:
    from ..domain.edit import attach
    payload, config = payload_from_args(args)
    dom, attached = edit_definition(args.connect, args.domain, lambda root: attach(root, payload, config.image_dir))
    note = " (the running domain keeps its media until it is restarted)" if dom.isActive() else ""
    print(f"attached {attached.type} payload ({count(attached.files, 'file')}, label {attached.label}) "
          f"to {dom.name()} on {attached.target}{note}")
    return EXIT_OK
