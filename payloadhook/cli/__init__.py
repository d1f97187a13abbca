"""The ``payloadhook`` command (CONTRACT.md section 5): thin verbs over the library."""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import LibvirtError, PayloadhookError
from .inputs import read_file, write_atomically

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_LIBVIRT = 0, 1, 2, 3

EXIT_CODES = """exit status:
  0  success
  1  refused: bad payload, input file, configuration or image directory (one line on stderr)
  2  usage error
  3  libvirt error: daemon unreachable, domain not found, or a libvirt call failed"""

OVIRT = """oVirt's edit-VM dialog, in this command's words:
  Payload enabled          attach DOMAIN ... (or run-once DOMAIN ... for a single start)
  Payload disabled         detach DOMAIN
  Method: CD-ROM / Floppy  --type cdrom / --type floppy
  Volume ID                --label L
  Path                     NAME in NAME=PATH: the file's name (may hold '/') on the medium
  Content                  PATH in NAME=PATH: a local file whose bytes become the content
A bare PATH is named by its base name; a DIRECTORY adds every file below it."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, told the terminal's width as shutil would tell it, without
    importing shutil (with bz2 and lzma: 1.3 ms of every command, help or not)."""

    def __init__(self, prog: str, **kwargs):
        if kwargs.get("width") is None:
            try:
                columns = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                try:
                    columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
                except (AttributeError, ValueError, OSError):
                    columns = 80
            kwargs["width"] = (columns or 80) - 2
        super().__init__(prog, **kwargs)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line as every other refusal is (CONTRACT.md
    section 5), pointing at --help instead of printing the usage."""

    def error(self, message: str):
        verb = self.prog.partition(" ")[2]
        self.exit(EXIT_USAGE, f"payloadhook: {verb + ': ' if verb else ''}{message}; see '{self.prog} --help'\n")


def _inputs_help(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="NAME=PATH|PATH|DIR",
                        help="files for the medium: NAME=PATH, a file (named by its base name) or a directory")


def _payload_args(parser: argparse.ArgumentParser, target: bool = True) -> None:
    parser.add_argument("--type", required=True, choices=("cdrom", "floppy"), help="the medium (oVirt's Method)")
    if target:
        parser.add_argument("--target", metavar="DEV", help="the disk target (hdc, sda, fda...); default: "
                            "the domain's payload disk of that type, or a new one")
    parser.add_argument("--label", metavar="L", help="volume label (oVirt's Volume ID; ISO up to 32 characters, "
                        "FAT up to 11, upper-cased); default PAYLOAD")


def _build_args(build: argparse.ArgumentParser) -> None:
    _payload_args(build, target=False)
    build.add_argument("-o", "--output", required=True, metavar="IMAGE", help="the image file to write")
    _inputs_help(build)


def _attach_args(attach: argparse.ArgumentParser) -> None:
    attach.add_argument("domain", metavar="DOMAIN", help="name, UUID or id")
    _payload_args(attach)
    _inputs_help(attach)


def _detach_args(detach: argparse.ArgumentParser) -> None:
    detach.add_argument("domain", metavar="DOMAIN", help="name, UUID or id")
    which = detach.add_mutually_exclusive_group()
    which.add_argument("--type", choices=("cdrom", "floppy"), help="remove the payload of this type")
    which.add_argument("--target", metavar="DEV", help="remove the payload on this disk")


def _show_args(show: argparse.ArgumentParser) -> None:
    show.add_argument("domain", metavar="DOMAIN", help="name, UUID or id")
    show.add_argument("--inactive", action="store_true", help="the saved definition, not the running domain")


def _ovf_args(ovf: argparse.ArgumentParser) -> None:
    ovf_verbs = ovf.add_subparsers(dest="ovf_verb", metavar="ACTION", required=True)

    def ovf_verb(name, help_text):
        return ovf_verbs.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES,
                                    formatter_class=_Formatter)

    export = ovf_verb("export", "write an OVF envelope that carries the domain's payloads")
    export.add_argument("source", metavar="DOMAIN|XMLFILE", help="a domain, or a domain XML file")
    export.add_argument("-o", "--output", required=True, metavar="FILE.ovf")
    export.add_argument("--with-content", action="store_true", help="include file contents (base64); "
                        "default: names, sizes and SHA-256 only, as contents may be secret")
    merge = ovf_verb("merge", "add the domain's payloads to an existing OVF, leaving everything else in it as is")
    merge.add_argument("source", metavar="DOMAIN|XMLFILE", help="a domain, or a domain XML file")
    merge.add_argument("into", metavar="INTO.ovf", help="the OVF to add the payload devices to")
    merge.add_argument("-o", "--output", metavar="OUT.ovf", help="where to write (default: INTO.ovf in place)")
    merge.add_argument("--with-content", action="store_true", help="include file contents (base64)")
    imp = ovf_verb("import", "read the payloads an OVF carries into a domain, or into a domain XML file")
    imp.add_argument("ovf", metavar="FILE.ovf")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--domain", metavar="DOMAIN", help="attach them to this domain's definition")
    where.add_argument("-o", "--output", metavar="XMLFILE", help="attach them to this domain XML file (edited in place)")
    imp.add_argument("--files-from", metavar="DIR", help="contents for files the OVF carries without content "
                     "(by path below DIR; size and SHA-256 must match)")


def _gc_args(gc: argparse.ArgumentParser) -> None:
    gc.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")


def _install_args(install: argparse.ArgumentParser) -> None:
    install.add_argument("--root", default="/", help="install below this directory (default /)")
    install.add_argument("--python", help="the interpreter that runs the hook (default: this one)")
    install.add_argument("--no-reload", action="store_true", help="do not reload libvirt")


def _uninstall_args(uninstall: argparse.ArgumentParser) -> None:
    uninstall.add_argument("--root", default="/", help="remove below this directory (default /)")
    uninstall.add_argument("--no-reload", action="store_true", help="do not reload libvirt")


#: Each verb: its help, the function adding its arguments, and whether its epilog explains oVirt's terms.
VERBS = {
    "build": ("build an image locally, without libvirt (like cloud-localds)", _build_args, False),
    "attach": ("add or replace a payload in a domain's definition, with the disk it binds to "
               "(takes effect at the next start)", _attach_args, True),
    "detach": ("remove a payload from a domain's definition, and the disk attach added", _detach_args, False),
    "show": ("list a domain's payloads: type, target, label, and each file's name, size and SHA-256",
             _show_args, False),
    "run-once": ("start an inactive domain once with a payload; its saved definition is left unchanged",
                 _attach_args, True),
    "dumpxml": ("the domain XML with payload contents replaced by their size and SHA-256", _show_args, False),
    "ovf": ("carry payloads to and from OVF (content left out unless --with-content)", _ovf_args, False),
    "gc": ("remove the images and records of domains that are not running (left by a crash of libvirtd or "
           "the host); images other hosts recorded in a shared image_dir are left to them", _gc_args, False),
    "install-hook": ("install the qemu hook, configuration, stylesheet and tmpfiles entry, then make libvirt "
                     "notice the hook (hosts without the RPM)", _install_args, False),
    "uninstall-hook": ("remove what install-hook placed (an edited configuration is kept)", _uninstall_args, False),
}


def _verb_in(argv: list[str]) -> str | None:
    """The verb a command line names, if it can be told before parsing (else None)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-c", "--connect"):
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in VERBS else None
    return None


def parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command's parser; given ``verb``, with that verb alone (the whole parser costs
    4 ms to build, almost a tenth of a 1,000-file build)."""
    top = _Parser(
        prog="payloadhook", formatter_class=_Formatter,
        description="Files for libvirt domains at start-up, on a CD-ROM or floppy built by the qemu hook.",
        epilog=EXIT_CODES)
    top.add_argument("-c", "--connect", metavar="URI", help="libvirt URI (default: libvirt's default URI)")
    top.add_argument("--version", action="version", version=f"payloadhook {__version__}")
    verbs = top.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (help_text, add_arguments, ovirt) in VERBS.items():
        if verb is not None and name != verb:
            continue    # the top help, which lists every verb, is built only when no verb is named
        add_arguments(verbs.add_parser(name, help=help_text, description=help_text,
                                       formatter_class=_Formatter,
                                       epilog=OVIRT + "\n\n" + EXIT_CODES if ovirt else EXIT_CODES))
    return top


def _count(items, noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _payload(args, with_target: bool = True):
    """The payload the command line names, checked against the configuration's limits; and
    that configuration."""
    from .inputs import files_from_args
    from ..model import Payload
    payload = Payload(type=args.type, files=files_from_args(args.inputs),
                      target=args.target if with_target else None, volume_id=args.label)
    config = _config()
    payload.check_limits(config.max_file_size, config.max_payload_size)
    return payload, config


def _config():
    from ..config import load_config
    return load_config()


def cmd_build(args) -> int:
    from ..media import write_image
    payload, _ = _payload(args, with_target=False)
    # straight into the file: memory stays near the payload's size
    size = write_atomically(args.output, lambda stream: write_image(payload, stream))
    print(f"wrote {args.output}: {payload.type}, label {payload.label}, {_count(payload.files, 'file')}, {size} bytes")
    return EXIT_OK


def _edit_definition(args, edit):
    """Read the domain's saved definition, edit it, define it again."""
    from ..domain import xmlsafe
    from . import virt
    conn = virt.connect(args.connect)
    dom = virt.lookup(conn, args.domain)
    root = xmlsafe.parse_xml(virt.inactive_xml(dom, secure=True))
    result = edit(root)
    virt.call(f"cannot define {dom.name()}", conn.defineXML, xmlsafe.serialize(root).decode("utf-8"))
    return dom, result


def cmd_attach(args) -> int:
    from ..domain.edit import attach
    payload, config = _payload(args)
    dom, attached = _edit_definition(args, lambda root: attach(root, payload, config.image_dir))
    note = " (the running domain keeps its media until it is restarted)" if dom.isActive() else ""
    print(f"attached {attached.type} payload ({_count(attached.files, 'file')}, label {attached.label}) "
          f"to {dom.name()} on {attached.target}{note}")
    return EXIT_OK


def cmd_detach(args) -> int:
    from ..domain.edit import detach
    config = _config()
    dom, removed = _edit_definition(args, lambda root: detach(root, config.image_dir, args.type, args.target))
    for payload in removed:
        print(f"detached {payload.describe()} from {dom.name()}")
    return EXIT_OK


def _domain_xml(args) -> tuple[str, bytes]:
    from . import virt
    conn = virt.connect(args.connect, read_only=True)
    dom = virt.lookup(conn, args.domain)
    return dom.name(), (virt.inactive_xml(dom) if args.inactive else virt.live_xml(dom))


def cmd_show(args) -> int:
    from ..domain import disks, metadata, xmlsafe
    name, xml = _domain_xml(args)
    root = xmlsafe.parse_xml(xml)
    payloads = metadata.read_payloads(root)
    if not payloads:
        print(f"{name}: no payloads")
        return EXIT_OK
    domain_disks = disks.read_disks(root)
    sources = {d.target: d.source for d in domain_disks}
    for payload in payloads:
        target = disks.target_of(payload, domain_disks) or "?"
        source = sources.get(target)
        print(f"{payload.type} on {target}, label {payload.label}, {_count(payload.files, 'file')}, "
              f"{payload.size} bytes" + (f", image {source}" if source else ""))
        width = max([len(str(f.size)) for f in payload.files] + [4])
        print(f"  {'SIZE':>{width}}  {'SHA256':64}  NAME")
        for item in payload.files:
            print(f"  {item.size:>{width}}  {item.sha256}  {item.name}")
    return EXIT_OK


def cmd_dumpxml(args) -> int:
    from ..domain.redact import redact
    _, xml = _domain_xml(args)
    sys.stdout.buffer.write(redact(xml) + b"\n")
    return EXIT_OK


def cmd_run_once(args) -> int:
    from ..domain import xmlsafe
    from . import virt
    from ..domain.edit import attach
    payload, config = _payload(args)
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
          f"({_count(attached.files, 'file')}); its saved definition is unchanged")
    return EXIT_OK


def _source_payloads(args):
    """Payloads of DOMAIN|XMLFILE: a file if one exists at that path, else a domain."""
    from ..domain import disks, metadata, xmlsafe
    from . import virt
    if os.path.isfile(args.source):
        root = xmlsafe.parse_xml(read_file(args.source, "domain XML file"))
    else:
        dom = virt.lookup(virt.connect(args.connect, read_only=True), args.source)
        root = xmlsafe.parse_xml(virt.inactive_xml(dom))
    domain_disks = disks.read_disks(root)
    from dataclasses import replace
    # record the disk each payload binds to, so that an import puts it back there
    return disks.domain_name(root), [replace(p, target=disks.target_of(p, domain_disks))
                                     for p in metadata.read_payloads(root)]


def cmd_ovf(args) -> int:
    from .. import ovf
    if args.ovf_verb == "export":
        name, payloads = _source_payloads(args)
        write_atomically(args.output, lambda stream: stream.write(ovf.export(payloads, name, args.with_content)))
        print(f"wrote {args.output}: {_count(payloads, 'payload')} of {name}"
              + ("" if args.with_content else " (names, sizes and SHA-256; no content)"))
    elif args.ovf_verb == "merge":
        name, payloads = _source_payloads(args)
        merged = ovf.merge(read_file(args.into, "OVF"), payloads, args.with_content)
        write_atomically(args.output or args.into, lambda stream: stream.write(merged))
        print(f"merged {_count(payloads, 'payload')} of {name} into {args.output or args.into}")
    else:
        from ..domain import xmlsafe
        from ..domain.edit import attach
        payloads = ovf.read_payloads(read_file(args.ovf, "OVF"), args.files_from)
        config = _config()
        for payload in payloads:
            payload.check_limits(config.max_file_size, config.max_payload_size)

        def attach_all(root):
            return [attach(root, payload, config.image_dir) for payload in payloads]

        if args.domain:
            dom, attached = _edit_definition(argparse.Namespace(connect=args.connect, domain=args.domain), attach_all)
            where = dom.name()
        else:
            root = xmlsafe.parse_xml(read_file(args.output, "domain XML file"))
            attached = attach_all(root)
            write_atomically(args.output, lambda stream: stream.write(xmlsafe.serialize(root) + b"\n"))
            where = args.output
        for payload in attached:
            print(f"imported {payload.type} payload ({_count(payload.files, 'file')}) into {where} on {payload.target}")
    return EXIT_OK


def cmd_gc(args) -> int:
    from . import virt
    from ..store.images import ImageStore
    config = _config()
    conn = virt.connect(args.connect, read_only=True)

    def is_running(name: str) -> bool:
        try:
            return bool(virt.lookup(conn, name).isActive())
        except LibvirtError as exc:
            if str(exc).endswith("not found"):
                return False
            raise

    store = ImageStore(config.image_dir)
    if args.dry_run:
        stale = store.stale(is_running)
        for record in stale:
            print(f"would remove {', '.join(record.images) or 'the record'} of {record.domain} (not running)")
        if not stale:
            print("nothing to remove")
        return EXIT_OK
    removed = store.collect(is_running)
    for domain, paths in removed.items():
        print(f"removed {', '.join(paths) or 'the record'} of {domain} (not running)")
    if not removed:
        print("nothing to remove")
    return EXIT_OK


def cmd_install_hook(args) -> int:
    from ..install import install, reload_libvirt
    for change in install(args.root, args.python):
        print(f"{change.action:9} {change.path}")
    if args.root == "/" and not args.no_reload:
        print(reload_libvirt())
    return EXIT_OK


def cmd_uninstall_hook(args) -> int:
    from ..install import reload_libvirt, uninstall
    for change in uninstall(args.root):
        print(f"{change.action:9} {change.path}")
    if args.root == "/" and not args.no_reload:
        print(reload_libvirt())
    return EXIT_OK


COMMANDS = {"build": cmd_build, "attach": cmd_attach, "detach": cmd_detach, "show": cmd_show,
            "dumpxml": cmd_dumpxml, "run-once": cmd_run_once, "gc": cmd_gc, "ovf": cmd_ovf, "install-hook": cmd_install_hook,
            "uninstall-hook": cmd_uninstall_hook}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(_verb_in(argv)).parse_args(argv)
    from .. import log
    previous, log.stream = log.stream, sys.stderr    # warnings: one line each, like errors
    try:
        return COMMANDS[args.verb](args)
    except LibvirtError as exc:
        print(f"payloadhook: {exc}", file=sys.stderr)
        return EXIT_LIBVIRT
    except PayloadhookError as exc:
        print(f"payloadhook: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, and no message text (it might quote input)
        print(f"payloadhook: internal error ({type(exc).__name__}) in {args.verb}; please report it",
              file=sys.stderr)
        return EXIT_REFUSED
    finally:
        log.stream = previous


if __name__ == "__main__":
    sys.exit(main())
