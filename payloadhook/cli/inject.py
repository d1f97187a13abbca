"""``payloadhook inject``: files written into a shut-off domain's own disk with libguestfs, and
``inject --remove``: taken out again. The work is in payloadhook/inject/; this module reads
the command line, and orders the steps so that every refusal comes before the disk is
opened for writing:

1. the inputs read and checked (as ``attach`` reads them); 2. the domain and the disk checked
through libvirt and the disk's locks; 3. one appliance launch, the domain checked again;
4. the target file system found and every file's place checked; 5. the record defined;
6. the files written, the file systems synced, the appliance shut down.
"""

from __future__ import annotations

import argparse

from ..errors import quote
from .common import EXIT_OK, INPUTS, add_domain, add_inputs

HELP = ("write files into a shut-off domain's own disk with libguestfs (a NoCloud seed, a Windows "
        "answer file, any files), recorded in its metadata; --remove takes them out again")
TARGETS = """where files go:
  --cloud-init ...  /var/lib/cloud/seed/nocloud/ (cloud-init's NoCloud local seed)
  --sysprep F       unattend.xml in the Panther directory of the Windows directory on the system
                    volume (C:\\Windows\\Panther\\unattend.xml), found by libguestfs's inspection
  INPUT...          under --into DIR (an absolute path in the guest: /etc/app, /Windows/Setup)
The disk written is --disk TARGET, else the domain's only or boot disk; every other disk is
opened read-only. The file system is found by libguestfs's inspection of the guest's operating
system, or named with --volume N (partition N of that disk; 0: a disk without partitions).
A file that exists in the guest is not replaced; a symbolic link in the guest on the way is
refused. Sealing (the default when the host has a key) keeps the record's hash out of the
domain XML: the record holds the size and a MAC under the host key."""
EPILOG = (TARGETS, INPUTS)


def _mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quote(text, 20)} is not an octal mode such as 0600") from None
    if not 0 <= mode <= 0o7777:
        raise argparse.ArgumentTypeError(f"{quote(text, 20)} is not a file mode (0000-7777)")
    return mode


def _owner(text: str) -> tuple[int, int]:
    uid, colon, gid = text.partition(":")
    if not (uid.isdigit() and (not colon or gid.isdigit())) or len(uid) > 10 or len(gid) > 10:
        raise argparse.ArgumentTypeError(f"{quote(text, 40)} is not UID[:GID] in numbers (the guest's, "
                                         "not the host's)")
    return int(uid), int(gid) if colon else int(uid)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{quote(text, 20)} is not a number of seconds")
    return value


def add_arguments(parser) -> None:
    from ..inject.appliance import LAUNCH_TIMEOUT
    add_domain(parser)
    parser.add_argument("--remove", action="store_true", help="take out the files recorded as injected, each "
                        "only if it still holds what was written (the others are left and named)")
    parser.add_argument("--disk", metavar="TARGET", help="the disk to write (vda, sda...); default: the only or "
                        "boot disk")
    parser.add_argument("--into", metavar="DIR", help="the directory in the guest for the INPUTs (made if missing)")
    parser.add_argument("--volume", metavar="N", type=int, help="the file system: partition N of the disk "
                        "(0: the whole disk), in place of libguestfs's inspection of the guest's OS")
    presets = parser.add_argument_group("presets").add_mutually_exclusive_group()
    presets.add_argument("--cloud-init", metavar="user-data=F[,meta-data=F][,network-config=F][,vendor-data=F]",
                         help="a NoCloud seed in /var/lib/cloud/seed/nocloud/ (meta-data made as attach makes it)")
    presets.add_argument("--sysprep", metavar="F", help="a Windows answer file, C:\\Windows\\Panther\\unattend.xml")
    parser.add_argument("--mode", type=_mode, default=0o600, help="the files' mode in a Linux guest "
                        "(default 0600; directories made are 0755)")
    parser.add_argument("--owner", type=_owner, default=(0, 0), metavar="UID[:GID]",
                        help="the files' owner in a Linux guest, as numbers (default 0:0)")
    parser.add_argument("--launch-timeout", type=_seconds, default=LAUNCH_TIMEOUT, metavar="SECONDS",
                        help=f"the bound on the appliance's launch (default {LAUNCH_TIMEOUT})")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--seal", dest="seal", action="store_true", default=None,
                       help="record each file by its size and a MAC under this host's current key, never a hash "
                       "(the default when the host has a key; without one, an error)")
    which.add_argument("--no-seal", dest="seal", action="store_false",
                       help="record each file's SHA-256 in the definition, where any client that may read the "
                       "domain can read it")
    add_inputs(parser)
    parser.set_defaults(type=None, label=None)


def _files(args, config):
    """The INPUTs and --files-json, read as attach reads them (within the limits)."""
    from ..errors import PayloadError, UsageError, quote
    from ..local.files import files_from_args
    from ..local.files_json import files_from_json
    if args.into is None:
        raise UsageError("give --into DIR (where the files go in the guest), or --cloud-init or --sysprep")
    if not args.inputs and args.files_json is None:
        raise UsageError("give the files: NAME=PATH, a file or a directory, or --files-json -")
    from ..inject.paths import components, under
    directory = components(args.into)
    files = list(files_from_args(args.inputs, config, args.follow_symlinks))
    if args.files_json is not None:
        files += files_from_json(args.files_json, config)
    names = set()
    for item in files:
        if item.name in names:
            raise PayloadError(f"file {quote(item.name)} is given twice")
        names.add(item.name)
        under(directory, item.name)
    return [(item.name, item.content) for item in files]


def _request(args):
    """What the command line asks to inject, read and checked before libvirt is called."""
    from ..errors import UsageError
    from ..inject import NOCLOUD_SEED
    from ..inject.session import Request
    from ..local.presets import request_from_args
    from .common import load
    kind = "cloud-init" if args.cloud_init is not None else "sysprep" if args.sysprep is not None else None
    if kind is not None and args.into is not None:
        raise UsageError(f"--{kind} puts its files where its reader looks; --into goes with INPUTs only")
    if args.volume is not None and not 0 <= args.volume <= 999:
        raise UsageError("--volume is a partition number, 0 to 999")
    if kind is None:
        config = load()
        return Request(files=_files(args, config), directory=args.into, preset=None, parts=None, config=config,
                       disk=args.disk, volume=args.volume, mode=args.mode, owner=args.owner, seal=args.seal,
                       launch_timeout=args.launch_timeout)
    preset = request_from_args(args, kind, with_target=False)
    return Request(files=[], directory=NOCLOUD_SEED if kind == "cloud-init" else None, preset=kind,
                   parts=preset, config=preset.config, disk=args.disk, volume=args.volume, mode=args.mode,
                   owner=args.owner, seal=args.seal, launch_timeout=args.launch_timeout)


def handle(args) -> int:
    from ..errors import UsageError
    from ..inject import session
    if args.remove:
        given = [flag for flag, value in (("--into", args.into), ("--cloud-init", args.cloud_init),
                                          ("--sysprep", args.sysprep), ("--files-json", args.files_json),
                                          ("--volume", args.volume)) if value is not None]
        if given or args.inputs:
            raise UsageError(f"--remove takes out what the record names; {given[0] if given else 'INPUT'} "
                             "goes with an injection")
        print(session.remove(args.connect, args.domain, args.disk, args.launch_timeout))
        return EXIT_OK
    print(session.inject(args.connect, args.domain, _request(args)))
    return EXIT_OK
