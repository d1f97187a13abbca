"""``payloadhook run-once``: start an inactive domain once with a payload."""

from __future__ import annotations

from ..errors import count
from ..local.payload import payload_maker
from ..ops.attach import plan_and_attach
from .common import EXIT_OK, INPUTS, OVIRT, PRESETS, add_domain_payload_arguments

HELP = "start an inactive domain once with a payload; its saved definition is left unchanged"
EPILOG = (OVIRT, INPUTS, PRESETS)


def add_arguments(parser) -> None:
    add_domain_payload_arguments(parser)


def handle(args) -> int:
    from ..errors import PayloadhookError
    from ..ops import virt
    from ..ops.define import start_edited
    make, config, label_given = payload_maker(args)
    conn = virt.connect(args.connect)
    dom = virt.lookup(conn, args.domain)
    if dom.isActive():
        # a refusal (status 1), not a libvirt failure: nothing was attempted
        raise PayloadhookError(f"domain {virt.name_of(dom)} is running; run-once starts an inactive domain "
                               "(shut it down first, or use attach for its next start)")
    # A live domain from the definition plus the payload: libvirt keeps the saved
    # definition as it is, so the next plain start has no such payload.
    plan = start_edited(conn, dom, lambda root: plan_and_attach(root, make(root), config, label_given, args.seal))
    where = f" on {plan.target}" if plan.target else ""
    label = f", label {plan.payload.label}" if plan.payload.label else ""
    print(f"started {virt.name_of(dom)} once with a {plan.payload.type} payload{where} "
          f"({count(plan.payload.files, 'file')}{label}"
          f"{', sealed' if any(f.sealed for f in plan.payload.files) else ''}); its saved definition is unchanged")
    return EXIT_OK
