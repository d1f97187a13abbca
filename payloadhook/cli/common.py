"""What the command's verbs share: the parser's look, the payload named on a command line,
the configuration, and finding and editing a domain through libvirt.

Imported by every verb module before anything else, so it imports nothing heavy at the
top: the model, lxml and libvirt are imported by the functions that need them.
"""

from __future__ import annotations

import argparse
import os
import sys

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


class Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, told the terminal's width as shutil would tell it, without
    importing shutil (and with it bz2 and lzma) on every command."""

    def __init__(self, prog: str, **kwargs):
        if kwargs.get("width") is None:
            try:
                columns = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                try:
                    columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
                except (AttributeError, ValueError, OSError):
                    columns = 80
            kwargs["width"] = (columns or 80) - 2
        super().__init__(prog, **kwargs)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line as every other refusal is (CONTRACT.md
    section 5), pointing at --help instead of printing the usage."""

    def error(self, message: str):
        verb = self.prog.partition(" ")[2]
        self.exit(EXIT_USAGE, f"payloadhook: {verb + ': ' if verb else ''}{message}; see '{self.prog} --help'\n")


def count(items, noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


# -- the payload a command line names -------------------------------------------------------

INPUTS = """inputs, read by one rule that no file on disk can change:
  /PATH, ./PATH   a file (named by its base name) or a directory (every file below it)
  NAME=PATH       any other argument holding '=': the file PATH, named NAME on the medium
                  (split at the first '='; a path holding '=' is given as ./a=b or /dir/a=b)
  PATH            anything else: a file or a directory
Only regular files are read (a FIFO, socket or device is refused), each checked against
max_file_size and max_payload_size before it is read. Below a directory a symbolic link
is refused unless --follow-symlinks is given; on a path named here, a link is followed
only when root or you own it (a link another user planted, unless --follow-symlinks)."""


def add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="NAME=PATH|PATH|DIR",
                        help="files for the medium: NAME=PATH, a file (named by its base name) or a directory "
                        "(see 'inputs' below)")
    parser.add_argument("--files-json", metavar="-|FILE", help='files as JSON, {"files": [{"name": "...", '
                        '"content": "<base64>"}]}, from standard input (-) or a file: content never appears '
                        "in a command line or the environment")
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="below a directory input, follow symbolic links (a loop is refused); on a "
                        "named path, follow links another user owns too")


def add_payload_options(parser: argparse.ArgumentParser, target: bool = True) -> None:
    parser.add_argument("--type", choices=("cdrom", "floppy"), help="the medium (oVirt's Method); required "
                        "unless a preset is given (see 'presets' below)")
    if target:
        parser.add_argument("--target", metavar="DEV", help="the disk target (hdc, sda, fda...); default: "
                            "the domain's payload disk of that type, or a new one")
    parser.add_argument("--label", metavar="L", help="volume label (oVirt's Volume ID; ISO up to 32 characters, "
                        "FAT up to 11, upper-cased); default PAYLOAD")


def add_domain_payload_arguments(parser: argparse.ArgumentParser) -> None:
    """What attach and run-once take: a domain, and a payload (type, target, label and files,
    or a preset), sealed or not."""
    from .presets import add_preset_options
    add_domain(parser)
    add_payload_options(parser)
    add_preset_options(parser)
    add_seal_options(parser)
    add_inputs(parser)


def add_seal_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--seal", dest="seal", action="store_true", default=None,
                       help="seal every file under this host's current key, for this domain only (the default "
                       "when the host has a key; without one, an error)")
    which.add_argument("--no-seal", dest="seal", action="store_false",
                       help="store the files as base64 in the definition, where any client that may read the "
                       "domain (virsh -r dumpxml) can read them")


def sealed_for(root, payload, config, seal: bool | None):
    """``payload`` sealed for the domain ``root`` (its <uuid>) under the host's current key,
    when ``seal`` is True, or None (the default) and the host has a key; else as it is."""
    if seal is False:
        return payload
    from ..errors import SealError
    from ..seal.keys import KeyStore
    from ..seal.sealing import current_key, seal_payload
    keys = KeyStore(config.key_dir)
    key_id = current_key(keys, required=seal is True)
    if key_id is None:
        return payload
    uuid = root.findtext("uuid")
    if not uuid:
        raise SealError("the domain XML has no <uuid>, and sealed content is bound to one: give it a <uuid> "
                        "(virsh define gives one), or --no-seal")
    return seal_payload(payload, uuid, keys, key_id)


def payload_from_args(args, with_target: bool = True):
    """The payload the command line names, checked against the configuration's limits; and
    that configuration."""
    from ..errors import UsageError
    from ..model import Payload
    from .inputs import files_from_args, files_from_json
    if args.type is None:
        raise UsageError("give --type cdrom|floppy and the files, or a preset: --cloud-init, --config-drive, "
                         "--sysprep or --ovf-env")
    if not args.inputs and args.files_json is None:
        raise UsageError("give the files: NAME=PATH, a file or a directory, or --files-json -")
    config = load()
    files = files_from_args(args.inputs, config, args.follow_symlinks)
    if args.files_json is not None:
        files += files_from_json(args.files_json, config)
    payload = Payload(type=args.type, files=files, target=args.target if with_target else None,
                      volume_id=args.label)
    config.check([payload])
    return payload, config


def load():
    """The configuration (CONTRACT.md section 3)."""
    from ..config import load_config
    return load_config()


# -- domains --------------------------------------------------------------------------------

def add_domain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", metavar="DOMAIN", help="name, UUID or id")


def names_a_file(source: str) -> bool:
    """Whether a DOMAIN|FILE.xml argument names a file: it holds a '/' or ends in '.xml'.
    One rule, whatever lies in the working directory: a file planted under a domain's
    name never stands in for the domain (give ./NAME for a file named otherwise)."""
    return "/" in source or source.endswith(".xml")


def edit_definition(uri: str | None, ident: str, edit):
    """Read the domain's saved definition, ``edit(root)`` it, define it again; return the
    domain and what ``edit`` returned."""
    from ..domain import xmlsafe
    from . import virt
    conn = virt.connect(uri)
    dom = virt.lookup(conn, ident)
    virt.require_persistent(dom)
    root = xmlsafe.parse_xml(virt.inactive_xml(dom, secure=True))
    result = edit(root)
    virt.call(f"cannot define {virt.name_of(dom)}", conn.defineXML, xmlsafe.serialize(root).decode("utf-8"))
    return dom, result


def domain_xml(uri: str | None, ident: str, inactive: bool) -> tuple[str, bytes]:
    """A domain's name and XML (saved definition, or the running domain's), read-only."""
    from . import virt
    conn = virt.connect(uri, read_only=True)
    dom = virt.lookup(conn, ident)
    return dom.name(), (virt.inactive_xml(dom) if inactive else virt.live_xml(dom))


def plan_and_attach(root, payload, config, label_given: bool, seal: bool | None = None):
    """Attach ``payload`` (sealed for the domain as ``seal`` says, see :func:`sealed_for`) to
    the parsed domain ``root`` and return the plan. Replacing a payload without ``--label``
    keeps the label it had (oVirt's dialog keeps the Volume ID too): a replace never silently
    puts PAYLOAD back."""
    from dataclasses import replace

    from ..domain.plan import apply_attach, plan_attach
    from ..domain.view import view_of
    image_dir = config.image_dir
    payload = sealed_for(root, payload, config, seal)
    view = view_of(root)
    plan = plan_attach(view, payload, image_dir)
    if plan.replaces and not label_given and plan.replaces[0].volume_id is not None:
        plan = plan_attach(view, replace(payload, volume_id=plan.replaces[0].volume_id), image_dir)
    apply_attach(view, plan)
    return plan


def describe_attach(plan, domain: str, label_given: bool) -> str:
    """What an attach did, in one line: attached, or replaced and what changed."""
    payload = plan.payload
    sealed = next((f.sealed.key_id for f in payload.files if f.sealed is not None), None)
    how = f", sealed with key {sealed}" if sealed else ""
    if not plan.replaces:
        return (f"attached {payload.type} payload ({count(payload.files, 'file')}, label {payload.label}{how}) "
                f"to {domain} on {plan.target}")
    changes = list(plan.changes)
    if not label_given and plan.replaces[0].volume_id is not None:
        changes.insert(0, f"label {payload.label} kept (--label changes it)")
    said = "; ".join(changes) if changes else "nothing changed"
    return (f"replaced {payload.type} payload on {plan.target} of {domain} "
            f"({count(payload.files, 'file')}, label {payload.label}{how}): {said}")
