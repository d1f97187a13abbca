"""``payloadhook reseal``: every sealed file of a domain sealed again under the host's
current key (so an old key can be retired), or re-bound to a clone's UUID (``--from-uuid``:
the files were sealed for the domain it was cloned from)."""

from __future__ import annotations

from ..errors import count
from .common import EXIT_OK, load

HELP = ("re-seal every sealed file under the current key (DOMAIN... or --all); with --from-uuid UUID, "
        "re-bind files sealed for another domain (the one a clone was made from) to this one")


def add_arguments(parser) -> None:
    parser.add_argument("domains", nargs="*", metavar="DOMAIN", help="name, UUID or id")
    parser.add_argument("--all", action="store_true", help="every domain of the host that has sealed files")
    parser.add_argument("--from-uuid", metavar="UUID", help="the files were sealed for the domain with this "
                        "UUID (a clone's original); open them as such and seal them for this domain")


def handle(args) -> int:
    import sys

    from ..errors import PayloadhookError, UsageError, error_line, one_line
    from ..ops import virt
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
    if args.all:    # transient domains have no saved definition: nothing of theirs to reseal
        domains = virt.persistent_domains(conn)
    else:
        domains = [virt.lookup(conn, ident) for ident in args.domains]
    failed = 0
    for dom in domains:
        try:
            _reseal(conn, dom, keys, key_id, args.from_uuid, quiet=args.all)
        except PayloadhookError as exc:
            if not args.all:
                raise
            # one domain that does not reseal (a blob copied from another domain, a key this
            # host lacks) never stops the others: key rotation goes on, and it is named
            failed += 1
            sys.stderr.write(one_line(error_line(exc, "reseal")))
    if failed:
        raise PayloadhookError(f"{count(range(failed), 'domain')} could not be resealed (named above); "
                               "the others were")
    return EXIT_OK


def _reseal(conn, dom, keys, key_id: str, from_uuid: str | None, quiet: bool) -> None:
    """Re-seal one domain's saved definition (defined again only when it has sealed files)."""
    from ..domain import metadata
    from ..errors import PayloadhookError
    from ..ops import virt
    from ..ops.define import edit_domain
    from ..seal.sealing import reseal_payload

    def reseal(root):
        """How many files were sealed again, or None: no sealed files, nothing to define."""
        uuid = root.findtext("uuid") or dom.UUIDString()
        payloads, total = [], 0
        try:
            for payload in metadata.read_payloads(root):
                resealed, sealed = reseal_payload(payload, uuid, keys, key_id, from_uuid)
                payloads.append(resealed)
                total += sealed
        except PayloadhookError as exc:
            raise type(exc)(f"domain {virt.name_of(dom)}: {exc}") from None
        if not total:
            return None
        metadata.set_payloads(root, payloads)
        return total

    total = edit_domain(conn, dom, reseal)
    if total is None:
        if not quiet:
            print(f"{virt.name_of(dom)}: no sealed files")
        return
    rebound = f", re-bound from {from_uuid}" if from_uuid else ""
    running = " (the running domain keeps its media until it is restarted)" if dom.isActive() else ""
    print(f"{virt.name_of(dom)}: {count(range(total), 'sealed file')} sealed again with key {key_id}{rebound}{running}")
