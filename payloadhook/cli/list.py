"""``payloadhook list``: the host's domains, each with a summary of its payloads."""

from __future__ import annotations

import json
import sys

from .common import EXIT_OK

HELP = "list the host's domains with a payload summary each (type, target, label, file count, sealed or not)"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document")


def _summary(xml: bytes) -> tuple[list[dict], str | None]:
    """A domain's payloads as declared in its saved definition (nothing decoded), or the
    one-line reason they cannot be read: one bad domain never hides the others."""
    from ..domain.view import read_domain
    from ..errors import PayloadhookError
    try:
        view = read_domain(xml)
        return [{"type": d.type, "target": _target(view, d),
                 "label": None if d.type in ("network", "fwcfg") else d.volume_id or "PAYLOAD",
                 "files": len(d.files), "sealed": any(f.encoding == "sealed" for f in d.files)}
                for d in view.declared], None
    except PayloadhookError as exc:
        return [], str(exc)


def _target(view, declared) -> str | None:
    if declared.target is not None:
        return declared.target
    matches = [d.target for d in view.disks if d.device == declared.type]
    return matches[0] if len(matches) == 1 else None


def handle(args) -> int:
    from ..ops import virt
    conn = virt.connect(args.connect, read_only=True)
    domains = []
    for dom in sorted(virt.call("cannot list domains", conn.listAllDomains, 0), key=lambda d: d.name()):
        payloads, error = _summary(virt.inactive_xml(dom))
        entry = {"domain": dom.name(), "uuid": dom.UUIDString(), "running": bool(dom.isActive()),
                 "payloads": payloads}
        if error is not None:
            entry["error"] = error
        domains.append(entry)
    if args.json:
        json.dump({"domains": domains}, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return EXIT_OK
    # A table for people: every value a domain definer chose is escaped and bounded (shown), so
    # no newline or terminal escape in a name, target or label can forge a row.
    from ..errors import shown
    names = {entry["domain"]: shown(entry["domain"]) for entry in domains}
    width = max([len(name) for name in names.values()] + [6])
    print(f"{'DOMAIN':{width}}  {'STATE':8}  PAYLOADS")
    for entry in domains:
        if "error" in entry:
            said = f"unreadable: {entry['error']}"
        else:
            said = "; ".join(f"{shown(p['type'], 20)} "
                             + ("" if p["label"] is None
                                else f"{shown(p['target'] or '?', 40)} {shown(p['label'], 40)} ")
                             + f"({p['files']} file{'' if p['files'] == 1 else 's'}{', sealed' if p['sealed'] else ''})"
                             for p in entry["payloads"]) or "-"
        print(f"{names[entry['domain']]:{width}}  {'running' if entry['running'] else 'shut off':8}  {said}")
    return EXIT_OK
