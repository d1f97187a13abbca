"""The libvirt qemu hook (README, "The hook"), as functions.

libvirt runs ``/etc/libvirt/hooks/qemu DOMAIN OPERATION SUBOPERATION EXTRA`` with the
domain XML on standard input, as root, with ``LC_ALL=C``, an almost empty
environment and the domain locked. ``hooks/qemu`` only calls :func:`run`.

Importing this module is cheap: it must be, since libvirt calls the hook on every
operation of every domain. The XML, image and store modules are imported only on
the paths that need them, and ``os`` only where a payload is built (posixenv.py).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is never imported at run time on the hook's path (docs/speed.md)
    from typing import BinaryIO, TextIO

from . import has_payload_metadata

#: libvirt's hook input is capped near 4 MiB by its RPC; read at most a little more.
MAX_INPUT = 8 * 1024 * 1024 + 1


def prepare(domain: str, xml: bytes, environ=None) -> list[str]:
    """Build every payload's image and place it at its disk's source; return the paths.

    The domain is read once (its payloads, disks and UUID); every check comes before the
    first image is built, and the store builds and writes the images one at a time, each
    payload let go once its image is written."""
    if not has_payload_metadata(xml):
        return []
    import gc

    from .config import load_config
    from .domain.view import read_domain
    from .media import write_image
    from .prepare import bindings_to_build
    from .prepare_deviceless import deviceless_files
    from .seal import blob
    from .store.images import Image, ImageStore
    from .store.records import index_dir

    # What is read lives until its image is written and makes no reference cycle: the
    # collector, which would walk its 80,000 files' records again and again as they are made
    # (the largest domain the limits allow), is off until they are frozen out of its reach;
    # then it collects what each image's layout leaves (docs/speed.md).
    collecting = gc.isenabled()
    gc.disable()
    try:
        config = load_config(environ=environ)
        view = read_domain(xml, editable=False)
        del xml    # the document (up to 8 MiB), then its tree, are not held while images are built
        # limits first, sealed files opened last: through libcrypto's EVP API in the hook (seal/evp.py)
        previous, blob.FAST_OPENING = blob.FAST_OPENING, True
        try:
            bindings = bindings_to_build(view, config)
            files = deviceless_files(view, config)        # fw_cfg entries, the network seed
        finally:
            blob.FAST_OPENING = previous
        uuid = view.uuid
        del view
        if not bindings and not files:
            return []
        store = ImageStore(config.image_dir, index_dir(environ))
        images = [Image(binding.source, _writer(write_image, binding.payload, gc.collect)) for binding in bindings]
        images += [Image.of(item.source, item.content) for item in files]
        del bindings, files
        gc.freeze()
        return store.prepare(domain, uuid, images)
    finally:
        gc.unfreeze()
        if collecting:
            gc.enable()


def _writer(write, payload, collect):
    """``write(payload, out)`` as a function of ``out``, called once: the payload is let go
    as its image is written, and what its layout left in reference cycles is collected."""
    held = [payload]
    del payload

    def write_one(out):
        written = write(held.pop(), out)
        collect()
        return written
    return write_one


def started(domain: str, xml: bytes, environ=None) -> str | None:
    """For a domain with a network payload, record its taps (libvirt's live XML names them
    only once they exist) for the seed service; return the path written, or None."""
    if not has_payload_metadata(xml) or not may_hold_network_payload(xml):
        return None
    from .config import load_config
    from .domain.view import read_domain
    view = read_domain(xml, editable=False)
    if view.network_payload() is None:
        return None
    # socket, json, base64: only where there is a seed
    from .seed.taps import record_taps
    return record_taps(domain, view, load_config(environ=environ).image_dir, environ)


def may_hold_network_payload(xml: bytes) -> bool:
    """False only where no attribute can be ``type="network"``: neither the word nor a
    character reference (``&#110;etwork``) that could spell it (a DOCTYPE, and with it any
    other entity, is refused by the reader). Every other payload domain's started is then
    no more than its has_payload_metadata test."""
    return b"network" in xml or b"&#" in xml


def release(domain: str, environ=None) -> list[str]:
    """Remove what :func:`prepare` built for the domain on this host, wherever image_dir
    was when it did (the index of image directories, store/records.py)."""
    from .config import load_config
    from .store.records import has_record, index_dir
    image_dir = load_config(environ=environ).image_dir
    index = index_dir(environ)
    if not has_record(image_dir, domain, index):
        return []    # the common case: a domain that never had a payload on this host
    from .store.images import ImageStore
    return ImageStore(image_dir, index).release(domain)


def relocate(xml: bytes, environ=None) -> bytes | None:
    """The migrate/restore filter: the XML with payload sources moved into image_dir, or None.

    It prints only what prepare accepts here: each source becomes ``image_dir/NAME``, NAME
    the plain file name the source ends in (domain/plan.py refuses '', '.', '..' and
    hidden names), after the same reading, binding and limits as prepare."""
    if not has_payload_metadata(xml):
        return None
    from . import xmlsafe
    from .config import load_config
    from .domain import plan
    from .domain.view import read_domain
    config = load_config(environ=environ)
    view = read_domain(xml)
    config.check(view.declared)
    moves = plan.plan_relocate(view, config.image_dir)
    entries = plan.plan_relocate_entries(view, config.image_dir)    # fw_cfg files, as disks
    if not moves and not entries:
        return None
    plan.apply_relocate(moves, entries)
    return xmlsafe.serialize(view.root)


def main(domain: str, operation: str, suboperation: str, stdin: BinaryIO, stdout: BinaryIO,
         environ=None) -> int:
    """One hook call; raises PayloadhookError on refusal. Returns the exit status."""
    # Read all of stdin on every path: libvirt writes the XML before it waits for us.
    if (operation, suboperation) == ("prepare", "begin"):
        # not bound to a name here: prepare drops the document (up to 8 MiB) once it is read
        prepare(domain, stdin.read(MAX_INPUT), environ)
        return 0
    xml = stdin.read(MAX_INPUT)
    if (operation, suboperation) == ("started", "begin"):
        started(domain, xml, environ)
    elif (operation, suboperation) == ("release", "end"):
        release(domain, environ)
    elif operation in ("migrate", "restore") and suboperation == "begin":
        rewritten = relocate(xml, environ)
        if rewritten is not None:
            stdout.write(rewritten)
            stdout.flush()
    return 0


def run(argv: list[str], stdin: BinaryIO, stdout: BinaryIO, stderr: TextIO, environ=None) -> int:
    """The entry point of ``hooks/qemu``: errors become one line on stderr and status 1."""
    if len(argv) < 3:
        from .errors import EXIT_USAGE, one_line
        stderr.write(one_line("usage: qemu DOMAIN OPERATION SUBOPERATION [EXTRA]"))
        return EXIT_USAGE
    domain, operation = argv[1], argv[2]
    suboperation = argv[3] if len(argv) > 3 else "-"
    if operation not in ("prepare", "started", "release", "migrate", "restore"):
        # Drain the XML all the same: a large one would otherwise meet a closed pipe in libvirt.
        while stdin.read(1 << 16):
            pass
        return 0
    from . import log
    previous, log.stream = log.stream, stderr    # warnings: one line each, like errors
    try:
        return main(domain, operation, suboperation, stdin, stdout, environ)
    except BaseException as exc:  # a bug too: one line, without its message (it might quote input)
        from .errors import error_line, exit_status, one_line, shown
        # the name is libvirt's, which allows any character but '/': escaped and bounded
        stderr.write(one_line(f"domain {shown(domain)}: {error_line(exc, operation)}"))
        return exit_status(exc)
    finally:
        log.stream = previous


if __name__ == "__main__":  # pragma: no cover - hooks/qemu is the usual way in
    import os
    sys.exit(run(sys.argv, sys.stdin.buffer, sys.stdout.buffer, sys.stderr, os.environ))
