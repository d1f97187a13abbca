"""``payloadhook detach``: remove a payload, and the disk attach added, from a domain's definition."""

from __future__ import annotations

from ..ops import virt
from ..ops.define import edit_definition
from .common import EXIT_OK, add_domain, load

HELP = "remove a payload from a domain's definition, and the disk attach added"


def add_arguments(parser) -> None:
    add_domain(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--type", choices=("cdrom", "floppy", "network", "fwcfg"),
                       help="remove the payload of this type")
    which.add_argument("--target", metavar="DEV", help="remove the payload on this disk")


def handle(args) -> int:
    from ..domain.plan import apply_detach, plan_detach
    from ..domain.view import view_of
    config = load()

    def edit(root):
        view = view_of(root)
        plan = plan_detach(view, config.image_dir, args.type, args.target)
        return plan.removed, apply_detach(view, plan)

    dom, (removed, changes) = edit_definition(args.connect, args.domain, edit)
    for payload in removed:
        print(f"detached {payload.describe()} from {virt.name_of(dom)}")
    for change in changes:
        print(f"  {change}")
    return EXIT_OK
