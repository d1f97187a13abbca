"""``payloadhook attach``: add or replace a payload in a domain's saved definition."""

from __future__ import annotations

from .common import (EXIT_OK, INPUTS, OVIRT, add_domain, add_inputs, add_payload_options, add_seal_options,
                     describe_attach, edit_definition, payload_from_args, plan_and_attach)

HELP = ("add or replace a payload in a domain's definition, with the disk it binds to "
        "(takes effect at the next start); a replaced payload keeps its label unless --label is given")
EPILOG = (OVIRT, INPUTS)


def add_arguments(parser) -> None:
    add_domain(parser)
    add_payload_options(parser)
    add_seal_options(parser)
    add_inputs(parser)


def handle(args) -> int:
    payload, config = payload_from_args(args)
    label_given = args.label is not None
    dom, plan = edit_definition(args.connect, args.domain,
                                lambda root: plan_and_attach(root, payload, config, label_given, args.seal))
    note = " (the running domain keeps its media until it is restarted)" if dom.isActive() else ""
    print(describe_attach(plan, dom.name(), label_given) + note)
    return EXIT_OK
