"""``payloadhook gc``: remove the images and records of domains that are not running."""

from __future__ import annotations

from .common import EXIT_OK, load

HELP = ("remove the images and records of domains that are not running (left by a crash of libvirtd or "
        "the host); images other hosts recorded in a shared image_dir are left to them")


def add_arguments(parser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")


def handle(args) -> int:
    from ..errors import LibvirtError
    from ..store.images import ImageStore
    from . import virt
    config = load()
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
