"""``payloadhook ovf export|merge|import|show``: carry payloads to and from OVF.

An OVF is downloaded from the internet: it is parsed by the hardened parser, held to the
configuration's limits as declared (before any content is decoded or read), and the files
``--files-from DIR`` supplies are opened below DIR following no symbolic link anywhere on
their path, regular files only, each checked against the size or SHA-256 the OVF declares.
"""

from __future__ import annotations

from ..errors import count
from ..local.documents import FilesFrom, read_ovf_file, read_xml_file
from ..ops import virt
from ..ops.define import edit_definition, saved_xml
from ..ops.sealed import sealed_for
from .common import EXIT_CODES, EXIT_OK, add_seal_options, load, report
from .parsers import Formatter

HELP = "carry payloads to and from OVF (content left out unless --with-content)"

def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="ovf_verb", metavar="ACTION", required=True)

    def action(name, help_text):
        return actions.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES,
                                  formatter_class=Formatter)

    def content_options(sub):
        sub.add_argument("--with-content", action="store_true", help="include file contents (base64), with "
                         "their SHA-256; a new output file is then made 0600")
        sub.add_argument("--with-digests", action="store_true", help="without content, include each file's "
                         "SHA-256 all the same (default: names and sizes only, as a digest gives a short "
                         "secret away)")

    export = action("export", "write an OVF envelope that carries the domain's payloads")
    export.add_argument("source", metavar="DOMAIN|XMLFILE", help="a domain, or a domain XML file "
                        "(an argument holding '/' or ending in .xml)")
    export.add_argument("-o", "--output", required=True, metavar="FILE.ovf", help="where to write ('-': "
                        "standard output); an existing file keeps its mode and owner")
    content_options(export)
    merge = action("merge", "add the domain's payloads to an existing OVF, leaving everything else in it as is")
    merge.add_argument("source", metavar="DOMAIN|XMLFILE", help="a domain, or a domain XML file "
                       "(an argument holding '/' or ending in .xml)")
    merge.add_argument("into", metavar="INTO.ovf", help="the OVF to add the payload devices to")
    merge.add_argument("-o", "--output", metavar="OUT.ovf", help="where to write (default: INTO.ovf in place, "
                       "keeping its mode and owner; '-': standard output)")
    content_options(merge)
    imp = action("import", "read the payloads an OVF carries into a domain, or into a domain XML file")
    imp.add_argument("ovf", metavar="FILE.ovf")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--domain", metavar="DOMAIN", help="attach them to this domain's definition")
    where.add_argument("-o", "--output", metavar="XMLFILE", help="attach them to this domain XML file (edited in "
                       "place, keeping its mode and owner)")
    imp.add_argument("--files-from", metavar="DIR", help="contents for files the OVF carries without content, by "
                     "path below DIR: regular files only, reached through no symbolic link; each must match "
                     "the size and SHA-256 the OVF declares")
    imp.add_argument("--allow-unverified", action="store_true", help="take a file from DIR even when the OVF "
                     "declares neither its size nor its SHA-256")
    add_seal_options(imp)
    show = action("show", "list the payload items of an OVF, exactly as import would take them, without "
                  "content (safe on untrusted OVFs, unlike xsltproc)")
    show.add_argument("ovf", metavar="FILE.ovf")


def _source_payloads(args):
    """Payloads of DOMAIN|XMLFILE (a file when the argument names one, else a domain), each
    with the disk it binds to recorded, so that an import puts it back there."""
    from .. import xmlsafe
    from ..domain.view import view_of
    view = view_of(xmlsafe.parse_xml(saved_xml(args.connect, args.source)[1]))
    return view.require_name(), list(view.targeted())


def _what(args) -> str:
    if args.with_content:
        return ""
    return " (names, sizes and SHA-256; no content)" if args.with_digests else " (names and sizes; no content)"


def _export(args) -> int:
    from .. import ovf
    from ..local.output import CONTENT_MODE, write_output
    name, payloads = _source_payloads(args)
    document = ovf.export(payloads, name, args.with_content, args.with_digests)
    write_output(args.output, lambda stream: stream.write(document),
                 mode=CONTENT_MODE if args.with_content else None)
    report(args.output, f"wrote {args.output}: {count(payloads, 'payload')} of {name}{_what(args)}")
    return EXIT_OK


def _merge(args) -> int:
    from .. import ovf
    from ..local.output import CONTENT_MODE, write_output
    name, payloads = _source_payloads(args)
    merged = ovf.merge(read_ovf_file(args.into), payloads, args.with_content, args.with_digests)
    output = args.output or args.into
    write_output(output, lambda stream: stream.write(merged), mode=CONTENT_MODE if args.with_content else None)
    report(output, f"merged {count(payloads, 'payload')} of {name} into {output}{_what(args)}")
    return EXIT_OK


def _import(args) -> int:
    from .. import ovf, xmlsafe
    from ..domain.plan import apply_attach, plan_attach
    from ..domain.view import view_of
    from ..local.output import CONTENT_MODE, write_output
    config = load()
    declared = ovf.read_declared(read_ovf_file(args.ovf))
    config.check(declared)           # counts and declared sizes, before anything is decoded or read
    files_from = FilesFrom(args.files_from, config, args.allow_unverified) if args.files_from else None
    try:
        payloads = ovf.to_payloads(declared, files_from)
    finally:
        if files_from is not None:
            files_from.close()
    config.check(payloads)

    def attach(root, payload):
        view = view_of(root)
        plan = plan_attach(view, sealed_for(root, payload, config, args.seal), config.image_dir)
        apply_attach(view, plan)
        return plan.payload

    def attach_all(root):
        return [attach(root, payload) for payload in payloads]

    if args.domain:
        dom, attached = edit_definition(args.connect, args.domain, attach_all, config)
        where = virt.name_of(dom)
    else:
        root = xmlsafe.parse_xml(read_xml_file(args.output))
        attached = attach_all(root)
        document = xmlsafe.serialize(root) + b"\n"
        write_output(args.output, lambda stream: stream.write(document), mode=CONTENT_MODE)
        where = args.output
    for payload in attached:
        sealed = ", sealed" if any(f.sealed is not None for f in payload.files) else ""
        print(f"imported {payload.type} payload ({count(payload.files, 'file')}{sealed}) into {where} "
              f"on {payload.target}")
    return EXIT_OK


def _show(args) -> int:
    """The items import takes, as declared; every value from the OVF escaped and bounded."""
    from .. import ovf
    from ..errors import shown
    declared = ovf.read_declared(read_ovf_file(args.ovf))
    if not declared:
        print(f"{args.ovf}: no payload items")
        return EXIT_OK
    for payload in declared:
        inline = sum(1 for f in payload.files if f.inline)
        label = shown(payload.volume_id, 40) if payload.volume_id is not None else "PAYLOAD (default)"
        target = shown(payload.target, 20) if payload.target is not None else "(the domain's drive)"
        print(f"{payload.type} on {target}, label {label}, {count(payload.files, 'file')}, "
              f"{inline} with content in the OVF")
        sizes = [str(f.declared_size) if f.declared_size is not None else "-" for f in payload.files]
        width = max([len(s) for s in sizes] + [4])
        print(f"  {'SIZE':>{width}}  {'SHA256':64}  {'CONTENT':8}  NAME")
        for item, size in zip(payload.files, sizes):
            print(f"  {size:>{width}}  {item.sha256 or '-':64}  {'inline' if item.inline else 'missing':8}  "
                  f"{shown(item.name, 200)}")
    return EXIT_OK


ACTIONS = {"export": _export, "merge": _merge, "import": _import, "show": _show}


def handle(args) -> int:
    return ACTIONS[args.ovf_verb](args)
