"""``payloadhook show``: a domain's payloads, their files' names, sizes and SHA-256; never content.
A sealed file shows its key id and sealed size instead, never a hash (of a short secret, a
hash is the secret).

By default it shows what the next start will use (the saved definition) and, for a running
domain whose media differ (after an attach or a detach), what it runs with now.
"""

from __future__ import annotations

import json
import sys

from ..errors import PayloadhookError, command, count, shown
from .common import EXIT_OK, add_domain

HELP = ("list a domain's payloads: type, target, label, and each file's name, size and SHA-256, or of a sealed "
        "file its key id and sealed size (what the next start uses, and what a running domain has where that "
        "differs)")


def add_arguments(parser) -> None:
    add_domain(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--inactive", action="store_true", help="the saved definition only (what the next start "
                       "uses)")
    which.add_argument("--live", action="store_true", help="the running domain only")
    parser.add_argument("--json", action="store_true", help="one JSON document: names, sizes, SHA-256 and sealed "
                        "state of each file; never content")


def payload_records(view) -> list[dict]:
    """Each payload of a domain view as a JSON-ready record (no content)."""
    from ..presets import recognise
    records = []
    sources = {d.target: d.source for d in view.disks}
    for payload in view.payloads:
        target = view.target_of(payload)
        files = [_file_record(f) for f in payload.files]
        records.append({
            "type": payload.type, "target": target, "label": payload.label, "preset": recognise(payload),
            "image": sources.get(target), "size": sum(f["size"] for f in files),
            "sealed": any(f["sealed"] for f in files), "files": files})
    return records


def _file_record(item) -> dict:
    """A file's name, size and SHA-256; of a sealed file, its sealed size and key id."""
    if item.sealed is not None:
        return {"name": item.name, "size": item.sealed.size, "sha256": None, "sealed": True,
                "key": item.sealed.key_id}
    return {"name": item.name, "size": item.size, "sha256": item.sha256, "sealed": False}


def ovirt_records(xml: bytes) -> list[dict]:
    """oVirt's own payloads in a domain XML (VDSM's ``ovirt-vm`` devices, which the hook does
    not build), as records like :func:`payload_records`' with their form."""
    from ..domain.ovirt import has_ovirt_metadata, payloads_of
    from .common import load
    records: list[dict] = []
    if not has_ovirt_metadata(xml):
        return records
    for found, payload in payloads_of(xml, load()):
        files = [_file_record(f) for f in payload.files]
        records.append({"form": found.form, "type": payload.type, "target": found.target, "label": payload.label,
                        "size": sum(f["size"] for f in files), "files": files})
    return records


def _print_ovirt(name: str, uuid: str, records: list[dict], problem: str | None = None) -> None:
    if problem:
        print(f"{name}: oVirt payload metadata the hook does not build, and adopt would refuse: {problem}")
    for record in records:
        print(f"{name}: oVirt payload ({record['form']}) on {shown(record['target'], 40)}, label "
              f"{shown(record['label'], 40)}, {record['type']}, {count(record['files'], 'file')}, {record['size']} "
              f"bytes: the hook does not build it; {command('payloadhook', 'adopt', uuid)} makes it a payload it "
              "builds")
        _print_files(record["files"])


#: Where a payload without a device reaches the guest.
WHERE = {"network": "served at http://169.254.169.254/ by payloadhook-seed", "fwcfg": "QEMU fw_cfg entries"}
DEVICELESS = tuple(WHERE)


def _print_payloads(records: list[dict]) -> None:
    from ..presets import DESCRIPTIONS
    for record in records:
        preset = f" ({DESCRIPTIONS[record['preset']]})" if record.get("preset") else ""
        if record["type"] in DEVICELESS:    # no disk, no label: where the guest finds it instead
            print(f"{record['type']} ({WHERE[record['type']]}){preset}, {count(record['files'], 'file')}, "
                  f"{record['size']} bytes")
        else:
            print(f"{record['type']} on {record['target'] or '?'}, label {record['label']}{preset}, "
                  f"{count(record['files'], 'file')}, {record['size']} bytes"
                  + (f", image {record['image']}" if record["image"] else ""))
        _print_files(record["files"])


def _print_files(files: list[dict]) -> None:
    width = max([len(str(f["size"])) for f in files] + [4])
    print(f"  {'SIZE':>{width}}  {'SHA256':64}  NAME")
    for item in files:
        digest = item["sha256"] or f"sealed (key {item['key']})"
        print(f"  {item['size']:>{width}}  {digest:64}  {item['name']}")


def injected_records(view) -> list[dict]:
    """What was injected into the domain's disks (inject), as JSON-ready records: each file's
    path and size, and its SHA-256 unless it was recorded sealed."""
    from ..inject.record import read_injections
    return [{"disk": item.disk, "when": item.when, "volume": item.volume, "directories": list(item.directories),
             "files": [{"path": f.path, "size": f.size, "sha256": f.sha256, "sealed": f.sealed, "key": f.key}
                       for f in item.files]}
            for item in read_injections(view.root)]


def _print_injected(records: list[dict]) -> None:
    from ..errors import shown
    for record in records:
        volume = f", volume {record['volume']}" if record["volume"] is not None else ""
        print(f"injected into disk {record['disk']}{volume} at {record['when']}, {count(record['files'], 'file')}, "
              f"{sum(f['size'] for f in record['files'])} bytes")
        width = max([len(str(f["size"])) for f in record["files"]] + [4])
        print(f"  {'SIZE':>{width}}  {'SHA256':64}  PATH")
        for item in record["files"]:
            digest = item["sha256"] or f"sealed (key {item['key']})"
            print(f"  {item['size']:>{width}}  {digest:64}  {shown(item['path'], 200)}")
        for directory in record["directories"]:
            print(f"  {'':>{width}}  {'directory made by inject':64}  {shown(directory, 200)}")


def _same(records: list[dict], others: list[dict]) -> bool:
    """Whether two listings hold the same media (the image paths aside)."""
    def key(rs):
        return [(r["type"], r["target"], r["label"],
                 [(f["name"], f["size"], f["sha256"], f.get("key")) for f in r["files"]]) for r in rs]
    return key(records) == key(others)


def handle(args) -> int:
    from ..domain.view import read_domain
    from ..ops import virt
    conn = virt.connect(args.connect, read_only=True)
    dom = virt.lookup(conn, args.domain)
    name = virt.name_of(dom)    # for the lines below; the JSON document carries it as it is
    running = bool(dom.isActive())
    next_start = live = None
    ovirt: list[dict] = []
    injected: list[dict] = []
    ovirt_problem = None
    if not args.live:
        xml = virt.inactive_xml(dom)
        saved = read_domain(xml)
        next_start = payload_records(saved)
        injected = injected_records(saved)
        try:
            ovirt = ovirt_records(xml)
        except PayloadhookError as exc:     # the payloads the hook builds are listed all the same
            ovirt_problem = str(exc)
    if running and not args.inactive:
        live = payload_records(read_domain(virt.live_xml(dom)))
    if next_start is not None and live is not None and _same(next_start, live):
        live = None        # nothing to tell apart
    if args.json:
        document = {"domain": dom.name(), "uuid": dom.UUIDString(), "running": running}
        if next_start is not None:
            document["payloads"] = next_start
        if live is not None:
            document["running_payloads"] = live
        if ovirt:
            document["ovirt_payloads"] = ovirt
        if ovirt_problem:
            document["ovirt_payloads_refused"] = ovirt_problem
        if injected:
            document["injected"] = injected
        json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return EXIT_OK
    if args.live and not running:
        print(f"{name}: not running")
        return EXIT_OK
    if next_start is not None and live is not None:
        print(f"{name}: the next start uses:" if next_start else f"{name}: the next start uses no payloads")
        _print_payloads(next_start)
        print(f"{name}: running now with:" if live else f"{name}: running now without payloads")
        _print_payloads(live)
        _print_injected(injected)
        _print_ovirt(name, dom.UUIDString(), ovirt, ovirt_problem)
        return EXIT_OK
    listed = next_start if next_start is not None else live
    if not listed:
        print(f"{name}: no payloads" + (" the hook builds" if ovirt else ""))
    _print_payloads(listed or [])
    _print_injected(injected)
    _print_ovirt(name, dom.UUIDString(), ovirt, ovirt_problem)
    return EXIT_OK
