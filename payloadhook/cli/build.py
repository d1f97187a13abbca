"""``payloadhook build``: an image written locally, without libvirt (like cloud-localds)."""

from __future__ import annotations

from ..errors import count
from ..local.payload import payload_maker
from .common import EXIT_OK, INPUTS, PRESETS, add_inputs, add_payload_options, add_preset_options, report

HELP = "build an image locally, without libvirt (like cloud-localds)"
#: build seals nothing and opens nothing sealed: its inputs go into the image in the clear,
#: so a core of it would hold nothing the image does not, and main leaves core dumps as
#: they are (seal/nodump.py; every other verb turns them off before it reads input)
HOLDS_SEALED = False
EPILOG = (INPUTS, PRESETS)


def add_arguments(parser) -> None:
    add_payload_options(parser, target=False)
    add_preset_options(parser)
    parser.add_argument("-o", "--output", required=True, metavar="IMAGE",
                        help="the image file to write ('-': standard output); a new file is made 0600, an "
                        "existing one replaced keeping its mode and owner, anything but a regular file refused")
    add_inputs(parser)


def handle(args) -> int:
    import gc
    # a build is short and makes no cycles of note: without the cyclic collector, as the hook
    # runs (payloadhook/install.py), which otherwise walks every file's objects a dozen times
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(args)
    finally:
        if collecting:
            gc.enable()


def _build(args) -> int:
    from ..local.output import CONTENT_MODE, STDOUT, write_output
    from ..media import write_image
    if args.output == STDOUT:
        from ..local.sources import require_standard_output
        require_standard_output()
    # each input file held open, its content copied by the kernel into the image as it is written
    make, _, _ = payload_maker(args, with_target=False, stream=True)
    payload = make(None)
    if not payload.is_medium:
        from ..errors import UsageError
        raise UsageError(f"a {payload.type} payload is no image: attach it to a domain (build makes CD-ROM and "
                         "floppy images)")
    if args.output == STDOUT:
        from ..local.sources import refuse_output_into_inputs
        refuse_output_into_inputs(payload.files, 1)
    # a new image holds the payload's content: 0600, as every new file with content
    size = write_output(args.output, lambda stream: write_image(payload, stream), mode=CONTENT_MODE, sync=False)
    report(args.output, f"wrote {args.output}: {payload.type}, label {payload.label}, "
           f"{count(payload.files, 'file')}, {size} bytes")
    return EXIT_OK
