"""``payloadhook key new|list``: the host's sealing keys (README, "Sealed content"). Never prints
a key's bytes."""

from __future__ import annotations

import time

from .common import EXIT_OK, Formatter, load

HELP = "make a sealing key and make it current (new), or list the keys (list); never shows key bytes"


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="key_verb", metavar="ACTION", required=True)
    actions.add_parser("new", help="make a key (32 random bytes, root only) and make it current; prints its id",
                       formatter_class=Formatter)
    listing = actions.add_parser("list", help="the keys' ids, which one is current, and when each was made",
                                 formatter_class=Formatter)
    listing.add_argument("--json", action="store_true", help="one JSON document")


def handle(args) -> int:
    from ..seal.keys import KeyStore
    keys = KeyStore(load().key_dir)
    if args.key_verb == "new":
        key_id = keys.new()
        print(f"made key {key_id} in {keys.key_dir}; it is now current (copy it to every host "
              "domains migrate to, as you copy libvirt's TLS certificates)")
        return EXIT_OK
    infos = keys.list()
    if args.json:
        import json
        print(json.dumps({"keys": [{"id": k.key_id, "current": k.current,
                                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(k.created))}
                                   for k in infos]}))
        return EXIT_OK
    if not infos:
        print(f"no sealing keys in {keys.key_dir}; 'payloadhook key new' makes one")
    for k in infos:
        print(f"{k.key_id}  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(k.created))}"
              + ("  current" if k.current else ""))
    return EXIT_OK
