"""``payloadhook key new|list|retire``: the host's sealing keys (README, "Sealed content"). Never
prints a key's bytes. ``retire`` deletes a key only when nothing libvirt keeps of any domain
(saved definitions, live XML, managed save images, snapshots) holds a blob under it, and
otherwise names what does."""

from __future__ import annotations

import time

from .common import EXIT_OK, load
from .parsers import Formatter

HELP = ("make a sealing key and make it current (new), list the keys (list), or delete one nothing on the "
        "host uses any more (retire); never shows key bytes")


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="key_verb", metavar="ACTION", required=True)
    actions.add_parser("new", help="make a key (32 random bytes, root only) and make it current; prints its id",
                       formatter_class=Formatter)
    listing = actions.add_parser("list", help="the keys' ids, which one is current, and when each was made",
                                 formatter_class=Formatter)
    listing.add_argument("--json", action="store_true", help="one JSON document")
    retire = actions.add_parser("retire", help="delete the key KEYID, only when no domain of the local system daemon "
                                "(qemu:///system, the only URI it takes) holds a blob sealed under it (saved "
                                "definition, live XML, managed save image, snapshots, checkpoints); otherwise "
                                "name what does. Run 'payloadhook reseal --all' first",
                                formatter_class=Formatter)
    retire.add_argument("key_id", metavar="KEYID")


def handle(args) -> int:
    from ..seal.keys import KeyStore
    keys = KeyStore(load().key_dir)
    if args.key_verb == "new":
        key_id = keys.new()
        print(f"made key {key_id} in {keys.key_dir}; it is now current (copy it to every host "
              "domains migrate to, as you copy libvirt's TLS certificates)")
        return EXIT_OK
    if args.key_verb == "retire":
        return _retire(keys, args.key_id, args.connect)
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


def _retire(keys, key_id: str, uri: str | None) -> int:
    import sys

    from ..errors import PayloadhookError, UsageError, count, one_line, quote
    from ..ops import virt
    from ..ops.resealing import holders
    keys.retirable(key_id)           # a key id, on this host and not current: before libvirt is asked
    # the key is the host's: only the domains of the daemon the hook serves say whether it is used
    if uri is not None and not virt.local_system(uri):
        raise UsageError(f"key retire searches the local system daemon (qemu:///system), whose domains use "
                         f"this host's keys, not {quote(uri)}; run it without --connect")
    conn = virt.connect(uri)
    if uri is None and not virt.local_system(conn.getURI()):
        raise UsageError(f"key retire searches the local system daemon (qemu:///system), whose domains use "
                         f"this host's keys; the default URI is {quote(conn.getURI())}: run it with "
                         "--connect qemu:///system")
    found = holders(conn, key_id)
    for holder in found:
        what = (f"cannot be read, so it may: {holder.error}" if holder.error is not None
                else f"{count(range(holder.files), 'file')} sealed under it")
        sys.stderr.write(one_line(f"key {key_id} is still used: domain {holder.domain}, {holder.what}: {what}"))
    if found:
        raise PayloadhookError(f"key {key_id} not retired: {count(found, 'place')} still hold blobs under it "
                               "(named above); run 'payloadhook reseal --all' (a running domain's live XML "
                               "is resealed too), then retire it again")
    path = keys.remove(key_id)
    print(f"retired key {key_id}: removed {path}; no domain here holds a blob under it. Sealed files under it "
          "elsewhere (backups, exports, virsh save files, other hosts' definitions) no longer open on this host")
    return EXIT_OK
