"""``payloadhook attach``: add or replace a payload in a domain's saved definition."""

from __future__ import annotations

from .common import (EXIT_OK, INPUTS, OVIRT, add_domain, add_inputs, add_payload_options, add_seal_options,
                     describe_attach, edit_definition, plan_and_attach)
from .presets import PRESETS, add_preset_options, payload_maker

HELP = ("add or replace a payload in a domain's definition, with the disk it binds to "
        "(takes effect at the next start); a replaced payload keeps its label unless --label is given")
EPILOG = (OVIRT, INPUTS, PRESETS)


def add_arguments(parser) -> None:
    add_domain(parser)
    add_payload_options(parser)
    add_preset_options(parser)
    add_seal_options(parser)
    add_inputs(parser)


def handle(args) -> int:
    make, config, label_given = payload_maker(args)
    dom, plan = edit_definition(args.connect, args.domain,
                                lambda root: plan_and_attach(root, make(root), config, label_given, args.seal))
    note = " (the running domain keeps its media until it is restarted)" if dom.isActive() else ""
    print(describe_attach(plan, dom.name(), label_given) + note)
    return EXIT_OK
