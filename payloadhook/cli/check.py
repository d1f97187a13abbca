"""``payloadhook check DOMAIN | FILE.xml``: validate a domain's payloads as the hook would at
start, without starting it. The hook's own checks (payloadhook/prepare.py)
run on the saved definition; a refusal is the hook's one line, status 1."""

from __future__ import annotations

from ..errors import command, count
from ..local.documents import names_a_file
from .common import EXIT_OK, EXIT_REFUSED, load

HELP = ("validate a domain's payloads as the hook would at start, without starting it; status 1 and the "
        "hook's one-line reason when the start would be refused, or when the domain holds oVirt (VDSM) payload "
        "metadata the hook does not build (payloadhook adopt turns it into payloads)")


def add_arguments(parser) -> None:
    parser.add_argument("source", metavar="DOMAIN|FILE.xml", help="a domain (name, UUID or id), or a domain XML "
                        "file: an argument holding '/' or ending in .xml (./NAME for another file name)")


def handle(args) -> int:
    from ..errors import shown
    from ..ops.define import saved_xml
    from ..prepare import check_domain
    config = load()
    where, xml = saved_xml(args.connect, args.source)
    checked = check_domain(xml, config)
    from ..domain.ovirt import payloads_of
    ovirt = payloads_of(xml, config)
    if not checked and not ovirt:
        print(f"{where}: no payloads; the hook has nothing to build")
        return EXIT_OK
    for item in checked:
        payload = item.binding.payload
        if item.binding.disk is None:    # no device: an fw_cfg entry's file, or the network seed
            print(f"{where}: {payload.type} payload ({count(payload.files, 'file')}): ok, {item.image_size} bytes "
                  f"at {shown(item.binding.source)}")
            continue
        print(f"{where}: {payload.type} payload on {shown(item.binding.disk.target, 40)} "
              f"({count(payload.files, 'file')}, label {shown(payload.label, 40)}): ok, a {item.image_size}-byte "
              f"image at {shown(item.binding.disk.source)}")
    # oVirt's own payloads: the domain would start without them on plain libvirt (status 1)
    todo = "define the domain and run 'payloadhook adopt DOMAIN'" if names_a_file(args.source) else \
        f"run {command('payloadhook', 'adopt', _uuid_of(xml) or args.source)}"
    for found, payload in ovirt:
        print(f"{where}: oVirt payload ({found.form}) on {shown(found.target, 40)}: {payload.type}, label "
              f"{shown(payload.label, 40)}, {count(payload.files, 'file')}; the hook does not build it: {todo}")
    return EXIT_REFUSED if ovirt else EXIT_OK


def _uuid_of(xml: bytes) -> str | None:
    """The domain's UUID, canonical: how a suggested command names it (a definer picks its name,
    and libvirt allows any character but '/' in one)."""
    from ..uuids import canonical_uuid
    from ..xmlsafe import parse_xml
    return canonical_uuid(parse_xml(xml).findtext("uuid"))
