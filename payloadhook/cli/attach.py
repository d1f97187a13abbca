"""``payloadhook attach``: add or replace a payload in a domain's saved definition."""

from __future__ import annotations

from ..local.payload import payload_maker
from ..ops import virt
from ..ops.attach import describe_attach, plan_and_attach
from ..ops.define import edit_definition
from .common import EXIT_OK, INPUTS, OVIRT, PRESETS, add_domain_payload_arguments

HELP = ("add or replace a payload in a domain's definition, with the disk it binds to "
        "(takes effect at the next start); a replaced payload keeps its label unless --label is given")
EPILOG = (OVIRT, INPUTS, PRESETS)


def add_arguments(parser) -> None:
    add_domain_payload_arguments(parser)


def handle(args) -> int:
    make, config, label_given = payload_maker(args)
    dom, plan = edit_definition(args.connect, args.domain,
                                lambda root: plan_and_attach(root, make(root), config, label_given, args.seal),
                                config)
    note = " (the running domain keeps its media until it is restarted)" if dom.isActive() else ""
    print(describe_attach(plan, virt.name_of(dom), label_given) + note)
    return EXIT_OK
