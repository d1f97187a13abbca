"""``payloadhook gc``: remove the images and records of domains that are not running.

A record names its domain by name and UUID, as prepare saw them. gc asks libvirt for
exactly that domain: ``lookupByName`` and the UUID compared, never an id or a UUID read
into the name (libvirt allows a domain named like another's UUID). The store removes a
record only if it is still the one checked (store.ImageStore.collect). Dry and real runs
take the same path; only the removal is skipped.
"""

from __future__ import annotations

from .common import EXIT_OK, load

HELP = ("remove the images and records of domains that are not running (left by a crash of libvirtd or "
        "the host); images other hosts recorded in a shared image_dir are left to them")


def add_arguments(parser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")


def running_check(conn):
    """``is_running(record)``: the recorded domain, found by its recorded name and UUID, is active."""
    from ..errors import LibvirtError, quote
    from ..ops import virt
    libvirt = virt._libvirt()

    def is_running(record) -> bool:
        try:
            dom = conn.lookupByName(record.domain)
            if record.uuid is not None and dom.UUIDString().lower() != record.uuid.lower():
                return False    # another domain by that name now: the recorded one is gone
            return bool(dom.isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise LibvirtError(f"cannot look up domain {quote(record.domain)}: {virt._reason(exc)}") from None

    return is_running


def handle(args) -> int:
    from ..errors import shown
    from ..ops import virt
    from ..store.images import ImageStore
    from ..store.records import index_dir
    config = load()
    conn = virt.connect(args.connect, read_only=True)
    store = ImageStore(config.image_dir, index_dir())
    collected = store.collect(running_check(conn), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for item in collected:
        print(f"{verb} {', '.join(shown(path, 300) for path in item.paths) or 'the record'} of "
              f"{shown(item.record.domain)} (not running)")
    if not collected:
        print("nothing to remove")
    return EXIT_OK
