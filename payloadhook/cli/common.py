"""What the command's verbs share: the parser's look, the arguments several verbs take and
the texts their help ends with, and the one-line report. Reading what the arguments name is
payloadhook/local/'s; what the verbs do to a domain, payloadhook/ops/'s.

Imported by every verb module before anything else, so it imports nothing heavy at the
top, not even argparse (cli/buildargs.py reads a plain build without it): the model, lxml
and libvirt are imported by the functions that need them.
"""

from __future__ import annotations

import sys

from ..errors import EXIT_LIBVIRT, EXIT_OK, EXIT_REFUSED, EXIT_USAGE

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is imported where a parser is built (cli/parsers.py), not by a plain build
    import argparse

EXIT_CODES = f"""exit status:
  {EXIT_OK}  success
  {EXIT_REFUSED}  refused: bad payload, input file, configuration or image directory (one line on stderr)
  {EXIT_USAGE}  usage error
  {EXIT_LIBVIRT}  libvirt error: daemon unreachable, domain not found, or a libvirt call failed"""

OVIRT = """oVirt's edit-VM dialog, in this command's words:
  Payload enabled          attach DOMAIN ... (or run-once DOMAIN ... for a single start)
  Payload disabled         detach DOMAIN
  Method: CD-ROM / Floppy  --type cdrom / --type floppy
  Volume ID                --label L
  Path                     NAME in NAME=PATH: the file's name (may hold '/') on the medium
  Content                  PATH in NAME=PATH: a local file whose bytes become the content
A bare PATH is named by its base name; a DIRECTORY adds every file below it."""


def report(path: str, line: str) -> None:
    """A verb's one-line report: on stdout, or on stderr when stdout (``-o -``) carries the output."""
    from ..local.output import STDOUT
    print(line, file=sys.stderr if path == STDOUT else sys.stdout)


PRESETS = """presets, in place of --type and files:
  --cloud-init user-data=F[,meta-data=F][,network-config=F][,vendor-data=F]
                  cloud-init NoCloud: CD-ROM labelled cidata (--type floppy: a FAT floppy
                  labelled CIDATA); without meta-data, one is made: instance-id as
                  --instance-id says, local-hostname the domain's name
  --config-drive user-data=F[,meta-data=F][,network-data=F][,vendor-data=F]
                  OpenStack config drive: CD-ROM labelled config-2, openstack/latest/ and
                  openstack/2018-08-27/ with meta_data.json (uuid, name, hostname; a given
                  meta-data JSON object is merged over it, and for build is where they come from)
  --instance-id stable|content|VALUE
                  of --cloud-init and --config-drive: stable (the default) is the domain's
                  UUID; content a digest of every other file of the seed, new exactly when the
                  seed changes; or VALUE itself. build has no domain: its default is content,
                  and stable is refused (cloud-init reruns its per-instance steps on a new id)
  --net IFACE=dhcp|ADDR/PREFIX[,gw=GW][,dns=IP+IP][,name=NAME]   (repeatable)
                  of --cloud-init (network-config version 2) and --config-drive
                  (network_data.json): the interface matched on its MAC; IFACE a MAC, target
                  device or index (0, 1, ...) of the domain's interfaces (build: a MAC);
                  name= renames it in the guest. Not with a network-config/network-data file
  --sysprep F     Windows answer file as Autounattend.xml and Unattend.xml: on a floppy where
                  the machine has a floppy controller (i440fx/pc), else on a CD-ROM (q35);
                  --type chooses (build: floppy unless --type cdrom)
  --ovf-env F|KEY=VALUE,...
                  OVF environment, ovf-env.xml on a CD-ROM (DSP0243 ISO transport): a document,
                  or properties (a value holding ',' is given in a document); user-data=F
                  (F starting with / or ./, - or json:NAME) is read, checked and base64-encoded
                  by the command, any other user-data value must be base64 of user data
  --ignition F    an Ignition config (Fedora CoreOS), the QEMU fw_cfg entry opt/com.coreos/config
  --cloud-init ... --type network, --config-drive ... --type network
                  the same files served to the domain alone from http://169.254.169.254/ by
                  payloadhook-seed, with no medium (the domain's SMBIOS serial points cloud-init there)
  F is a path, - (standard input, once), or json:NAME (the file NAME of --files-json).
Each file is checked as its reader reads it before anything is written: user data starts
with a header cloud-init recognises (#cloud-config and a YAML mapping, #!, #include,
## template: jinja, #cloud-boothook, #part-handler, #cloud-config-archive, a MIME message,
gzip); meta-data is a YAML mapping (config drive: a JSON object); network-config has
version 1 or 2; JSON files parse; an answer file is XML in urn:schemas-microsoft-com:unattend;
an OVF environment has <Environment> and <PropertySection>."""

CLOUD_INIT_PARTS = "user-data=F[,meta-data=F][,network-config=F][,vendor-data=F]"
CONFIG_DRIVE_PARTS = "user-data=F[,meta-data=F][,network-data=F][,vendor-data=F]"


def add_preset_options(parser: argparse.ArgumentParser) -> None:
    options = parser.add_argument_group("presets")
    group = options.add_mutually_exclusive_group()
    group.add_argument("--cloud-init", metavar=CLOUD_INIT_PARTS, help="cloud-init NoCloud (label cidata)")
    group.add_argument("--config-drive", metavar=CONFIG_DRIVE_PARTS, help="OpenStack config drive (label config-2)")
    group.add_argument("--sysprep", metavar="F", help="a Windows answer file (floppy, or CD-ROM on q35)")
    group.add_argument("--ovf-env", metavar="F|KEY=VALUE,...", help="an OVF environment (ovf-env.xml on a CD-ROM)")
    options.add_argument("--instance-id", metavar="stable|content|VALUE", help="of --cloud-init and "
                         "--config-drive: the domain's UUID (stable, the default; build: content), a digest of "
                         "the seed's files (content) or VALUE")
    options.add_argument("--net", action="append", metavar="IFACE=dhcp|ADDR/PREFIX[,gw=GW][,dns=IP+IP]",
                         help="of --cloud-init and --config-drive (repeatable): an interface's network "
                         "configuration, matched on its MAC")
    group.add_argument("--ignition", metavar="F", help="an Ignition config (the fw_cfg entry opt/com.coreos/config)")


# -- the arguments that name a payload ----------------------------------------------------

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


#: --type's values.
TYPES = ("cdrom", "floppy", "network", "fwcfg")


def add_payload_options(parser: argparse.ArgumentParser, target: bool = True) -> None:
    parser.add_argument("--type", choices=TYPES, help="the medium (oVirt's "
                        "Method), or no medium: network (served to the domain alone from http://169.254.169.254/ "
                        "by payloadhook-seed) or fwcfg (QEMU fw_cfg entries, names opt/...); required unless a "
                        "preset is given (see 'presets' below)")
    if target:
        parser.add_argument("--target", metavar="DEV", help="the disk target (hdc, sda, fda...); default: "
                            "the domain's payload disk of that type, or a new one")
    parser.add_argument("--label", metavar="L", help="volume label (oVirt's Volume ID; ISO up to 32 characters, "
                        "FAT up to 11, upper-cased); default PAYLOAD")


def add_domain_payload_arguments(parser: argparse.ArgumentParser) -> None:
    """What attach and run-once take: a domain, and a payload (type, target, label and files,
    or a preset), sealed or not."""
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


def load():
    """The configuration (payloadhook.conf; defaults where it is missing)."""
    from ..config import load_config
    return load_config()


# -- domains --------------------------------------------------------------------------------

def add_domain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", metavar="DOMAIN", help="name, UUID or id (uuid:UUID: by that UUID only)")
