"""``payloadhook show``: a domain's payloads, their files' names, sizes and SHA-256; never content."""

from __future__ import annotations

from .common import EXIT_OK, add_domain, count, domain_xml

HELP = "list a domain's payloads: type, target, label, and each file's name, size and SHA-256"


def add_arguments(parser) -> None:
    add_domain(parser)
    parser.add_argument("--inactive", action="store_true", help="the saved definition, not the running domain")


def handle(args) -> int:
    from ..domain import disks, metadata, xmlsafe
    name, xml = domain_xml(args.connect, args.domain, args.inactive)
    root = xmlsafe.parse_xml(xml)
    payloads = metadata.read_payloads(root)
    if not payloads:
        print(f"{name}: no payloads")
        return EXIT_OK
    domain_disks = disks.read_disks(root)
    sources = {d.target: d.source for d in domain_disks}
    for payload in payloads:
        target = disks.target_of(payload, domain_disks) or "?"
        source = sources.get(target)
        print(f"{payload.type} on {target}, label {payload.label}, {count(payload.files, 'file')}, "
              f"{payload.size} bytes" + (f", image {source}" if source else ""))
        width = max([len(str(f.size)) for f in payload.files] + [4])
        print(f"  {'SIZE':>{width}}  {'SHA256':64}  NAME")
        for item in payload.files:
            print(f"  {item.size:>{width}}  {item.sha256}  {item.name}")
    return EXIT_OK
