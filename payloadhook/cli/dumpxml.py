"""``payloadhook dumpxml``: the domain XML with payload contents redacted (as xsl/redact.xsl)."""

from __future__ import annotations

import sys

from ..ops.define import domain_xml
from .common import EXIT_OK, add_domain

HELP = "the domain XML with payload contents replaced by their size and SHA-256"


def add_arguments(parser) -> None:
    add_domain(parser)
    parser.add_argument("--inactive", action="store_true", help="the saved definition, not the running domain")


def handle(args) -> int:
    from ..domain.redact import redact
    _, xml = domain_xml(args.connect, args.domain, args.inactive)
    sys.stdout.buffer.write(redact(xml) + b"\n")
    return EXIT_OK
