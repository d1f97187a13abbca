"""Domain XML with payload content taken out (CONTRACT.md section 4; ``payloadhook dumpxml``).

Each ``<pl:content>`` keeps its element, loses its text, and says what it held:
``redacted="yes"``, and here (not in xsl/redact.xsl, which XSLT 1.0 cannot hash)
``size`` and ``sha256`` of the decoded content.
"""

from __future__ import annotations

import hashlib

from lxml import etree

from .metadata import CONTENT, FILE, NAME
from .xmlsafe import parse_xml
from ..errors import PayloadError
from ..model import decode_content


def redact(xml: bytes | str, digests: bool = True) -> bytes:
    root = parse_xml(xml, root_tag=None)
    for content in root.iter(CONTENT):
        if content.getparent() is None or content.getparent().tag != FILE:
            continue
        if digests:
            name = content.getparent().findtext(NAME) or ""
            try:
                data = decode_content(content.text or "", content.get("encoding"), name)
                size, digest = str(len(data)), hashlib.sha256(data).hexdigest()
            except PayloadError:
                size, digest = "invalid", "invalid"
        content.text = None
        for child in list(content):
            content.remove(child)
        for key in list(content.attrib):
            if key != "encoding":
                del content.attrib[key]
        content.set("redacted", "yes")
        if digests:
            content.set("size", size)
            content.set("sha256", digest)
    return etree.tostring(root, encoding="utf-8")
