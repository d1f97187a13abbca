"""``payloadhook run-once``: start an inactive domain once with a payload."""

from __future__ import annotations

from .common import (EXIT_OK, INPUTS, OVIRT, add_domain, add_inputs, add_payload_options, add_seal_options, count,
                     plan_and_attach)
from .presets import PRESETS, add_preset_options, payload_maker

HELP = "start an inactive domain once with a payload; its saved definition is left unchanged"
EPILOG = (OVIRT, INPUTS, PRESETS)


def add_arguments(parser) -> None:
    add_domain(parser)
    add_payload_options(parser)
    add_preset_options(parser)
    add_seal_options(parser)
    add_inputs(parser)


def handle(args) -> int:
    from ..domain import xmlsafe
    from ..errors import PayloadhookError
    from . import virt
    make, config, label_given = payload_maker(args)
    conn = virt.connect(args.connect)
    dom = virt.lookup(conn, args.domain)
    if dom.isActive():
        # a refusal (status 1), not a libvirt failure: nothing was attempted
        raise PayloadhookError(f"domain {dom.name()} is running; run-once starts an inactive domain "
                               "(shut it down first, or use attach for its next start)")
    root = xmlsafe.parse_xml(virt.inactive_xml(dom, secure=True))
    plan = plan_and_attach(root, make(root), config, label_given, args.seal)
    # A live domain from the definition plus the payload: libvirt keeps the saved
    # definition as it is, so the next plain start has no such payload.
    virt.call(f"cannot start {dom.name()}", conn.createXML, xmlsafe.serialize(root).decode("utf-8"), 0)
    print(f"started {dom.name()} once with a {plan.payload.type} payload on {plan.target} "
          f"({count(plan.payload.files, 'file')}, label {plan.payload.label}"
          f"{', sealed' if any(f.sealed for f in plan.payload.files) else ''}); its saved definition is unchanged")
    return EXIT_OK
