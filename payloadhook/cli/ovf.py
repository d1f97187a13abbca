"""``payloadhook ovf export|merge|import``: carry payloads to and from OVF."""

from __future__ import annotations

import os

from .common import EXIT_CODES, EXIT_OK, Formatter, count, edit_definition, load

HELP = "carry payloads to and from OVF (content left out unless --with-content)"


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="ovf_verb", metavar="ACTION", required=True)

    def action(name, help_text):
        return actions.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES,
                                  formatter_class=Formatter)

    export = action("export", "write an OVF envelope that carries the domain's payloads")
    export.add_argument("source", metavar="DOMAIN|XMLFILE", help="a domain, or a domain XML file")
    export.add_argument("-o", "--output", required=True, metavar="FILE.ovf")
    export.add_argument("--with-content", action="store_true", help="include file contents (base64); "
                        "default: names, sizes and SHA-256 only, as contents may be secret")
    merge = action("merge", "add the domain's payloads to an existing OVF, leaving everything else in it as is")
    merge.add_argument("source", metavar="DOMAIN|XMLFILE", help="a domain, or a domain XML file")
    merge.add_argument("into", metavar="INTO.ovf", help="the OVF to add the payload devices to")
    merge.add_argument("-o", "--output", metavar="OUT.ovf", help="where to write (default: INTO.ovf in place)")
    merge.add_argument("--with-content", action="store_true", help="include file contents (base64)")
    imp = action("import", "read the payloads an OVF carries into a domain, or into a domain XML file")
    imp.add_argument("ovf", metavar="FILE.ovf")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--domain", metavar="DOMAIN", help="attach them to this domain's definition")
    where.add_argument("-o", "--output", metavar="XMLFILE", help="attach them to this domain XML file (edited in place)")
    imp.add_argument("--files-from", metavar="DIR", help="contents for files the OVF carries without content "
                     "(by path below DIR; size and SHA-256 must match)")


#: A new file that holds content is readable by its owner alone; one without, as usual.
CONTENT_MODE = 0o600


def read_xml_file(path: str) -> bytes:
    from ..domain.xmlsafe import MAX_XML_BYTES
    from .inputs import read_file
    return read_file(path, "domain XML file", limit=MAX_XML_BYTES + 1)


def read_ovf_file(path: str) -> bytes:
    from ..ovf import MAX_OVF_BYTES
    from .inputs import read_file
    return read_file(path, "OVF", limit=MAX_OVF_BYTES + 1)


def _source_payloads(args):
    """Payloads of DOMAIN|XMLFILE: a file if one exists at that path, else a domain."""
    from dataclasses import replace

    from ..domain import disks, metadata, xmlsafe
    from . import virt
    if os.path.isfile(args.source):
        root = xmlsafe.parse_xml(read_xml_file(args.source))
    else:
        dom = virt.lookup(virt.connect(args.connect, read_only=True), args.source)
        root = xmlsafe.parse_xml(virt.inactive_xml(dom))
    domain_disks = disks.read_disks(root)
    # record the disk each payload binds to, so that an import puts it back there
    return disks.domain_name(root), [replace(p, target=disks.target_of(p, domain_disks))
                                     for p in metadata.read_payloads(root)]


def _export(args) -> int:
    from .. import ovf
    from .output import report, write_output
    name, payloads = _source_payloads(args)
    document = ovf.export(payloads, name, args.with_content)
    write_output(args.output, lambda stream: stream.write(document),
                 mode=CONTENT_MODE if args.with_content else None)
    report(args.output, f"wrote {args.output}: {count(payloads, 'payload')} of {name}"
           + ("" if args.with_content else " (names, sizes and SHA-256; no content)"))
    return EXIT_OK


def _merge(args) -> int:
    from .. import ovf
    from .output import report, write_output
    name, payloads = _source_payloads(args)
    merged = ovf.merge(read_ovf_file(args.into), payloads, args.with_content)
    output = args.output or args.into
    write_output(output, lambda stream: stream.write(merged), mode=CONTENT_MODE if args.with_content else None)
    report(output, f"merged {count(payloads, 'payload')} of {name} into {output}")
    return EXIT_OK


def _import(args) -> int:
    from .. import ovf
    from ..domain import xmlsafe
    from ..domain.edit import attach
    from .output import write_output
    payloads = ovf.read_payloads(read_ovf_file(args.ovf), args.files_from)
    config = load()
    for payload in payloads:
        payload.check_limits(config.max_file_size, config.max_payload_size)

    def attach_all(root):
        return [attach(root, payload, config.image_dir) for payload in payloads]

    if args.domain:
        dom, attached = edit_definition(args.connect, args.domain, attach_all)
        where = dom.name()
    else:
        root = xmlsafe.parse_xml(read_xml_file(args.output))
        attached = attach_all(root)
        document = xmlsafe.serialize(root) + b"\n"
        write_output(args.output, lambda stream: stream.write(document), mode=CONTENT_MODE)
        where = args.output
    for payload in attached:
        print(f"imported {payload.type} payload ({count(payload.files, 'file')}) into {where} on {payload.target}")
    return EXIT_OK


ACTIONS = {"export": _export, "merge": _merge, "import": _import}


def handle(args) -> int:
    return ACTIONS[args.ovf_verb](args)
