"""``payloadhook run-once``: start an inactive domain once with a payload."""

from __future__ import annotations

from .common import EXIT_OK, INPUTS, OVIRT, add_domain, add_inputs, add_payload_options, count, payload_from_args

HELP = "start an inactive domain once with a payload; its saved definition is left unchanged"
EPILOG = (OVIRT, INPUTS)


def add_arguments(parser) -> None:
    add_domain(parser)
    add_payload_options(parser)
    add_inputs(parser)


def handle(args) -> int:
    from ..domain import xmlsafe
    from ..domain.edit import attach
    from ..errors import LibvirtError
    from . import virt
    payload, config = payload_from_args(args)
    conn = virt.connect(args.connect)
    dom = virt.lookup(conn, args.domain)
    if dom.isActive():
        raise LibvirtError(f"domain {dom.name()} is running; run-once starts an inactive domain")
    root = xmlsafe.parse_xml(virt.inactive_xml(dom, secure=True))
    attached = attach(root, payload, config.image_dir)
    # A live domain from the definition plus the payload: libvirt keeps the saved
    # definition as it is, so the next plain start has no such payload.
    virt.call(f"cannot start {dom.name()}", conn.createXML, xmlsafe.serialize(root).decode("utf-8"), 0)
    print(f"started {dom.name()} once with a {attached.type} payload on {attached.target} "
          f"({count(attached.files, 'file')}); its saved definition is unchanged")
    return EXIT_OK
