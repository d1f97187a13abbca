"""``payloadhook reseal``: every sealed file of a domain sealed again under the host's
current key (so an old key can be retired), or re-bound to a clone's UUID (``--from-uuid``:
the files were sealed for the domain it was cloned from), wherever libvirt keeps the domain's
XML: saved definition, live XML, managed save image, snapshots (ops/places.py). What could not
be resealed is named, and the status is then 1."""

from __future__ import annotations

from ..errors import count
from .common import EXIT_OK, load

HELP = ("re-seal every sealed file under the current key (DOMAIN... or --all); with --from-uuid UUID, "
        "re-bind files sealed for another domain (the one a clone was made from) to this one")


def add_arguments(parser) -> None:
    parser.add_argument("domains", nargs="*", metavar="DOMAIN", help="name, UUID or id")
    parser.add_argument("--all", action="store_true", help="every domain of the host, running and transient ones "
                        "included, that has sealed files")
    parser.add_argument("--from-uuid", metavar="UUID", help="the files were sealed for the domain with this "
                        "UUID (a clone's original); open them as such and seal them for this domain")


def handle(args) -> int:
    import sys

    from ..errors import PayloadhookError, UsageError, one_line
    from ..ops import virt
    from ..ops.places import all_domains
    from ..ops.resealing import reseal_domain
    from ..seal.blob import canonical_uuid
    from ..seal.keys import KeyStore
    from ..seal.sealing import require_current_key
    if bool(args.domains) == args.all:
        raise UsageError("name the domains to reseal, or give --all")
    if args.from_uuid is not None:
        if args.all or len(args.domains) != 1:
            raise UsageError("--from-uuid re-binds one domain's files: name that one domain")
        canonical_uuid(args.from_uuid)
    config = load()
    keys = KeyStore(config.key_dir)
    key_id = require_current_key(keys)
    conn = virt.connect(args.connect)
    # every domain, transient ones too: their live XML holds sealed files as well
    domains = all_domains(conn) if args.all else [virt.lookup(conn, ident) for ident in args.domains]
    failed = []
    for dom in domains:
        name = virt.name_of(dom)
        outcomes = reseal_domain(conn, dom, keys, key_id, args.from_uuid)
        for outcome in outcomes:
            if outcome.error is not None:
                # one place that does not reseal (a blob copied from another domain, a key this
                # host lacks) never stops the others: key rotation goes on, and it is named
                sys.stderr.write(one_line(f"domain {name}{_where(outcome.what)}: {outcome.error}"))
            elif outcome.resealed:
                print(f"{name}{_where(outcome.what)}: {count(range(outcome.resealed), 'sealed file')} sealed again "
                      f"with key {key_id}" + (f", re-bound from {args.from_uuid}" if args.from_uuid else ""))
        if any(outcome.error is not None for outcome in outcomes):
            failed.append(name)
        elif not args.all and not any(outcome.resealed for outcome in outcomes):
            print(f"{name}: no sealed files")
    if failed:
        raise PayloadhookError(f"{count(failed, 'domain')} could not be resealed (named above); the others were, "
                               "and the old key must stay until they are")
    return EXIT_OK


def _where(what: str) -> str:
    """How a line names the place: the saved definition is the domain's plain name, as before."""
    return "" if what == "saved definition" else f" ({what})"
