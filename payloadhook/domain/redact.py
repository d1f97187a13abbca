"""Domain XML with payload content taken out (README, "Redaction"; ``payloadhook dumpxml``).

Each ``<pl:content>`` of a ``<pl:file>`` keeps its element, loses its text and any child,
and says what it held: ``redacted="yes"``, and here (not in xsl/redact.xsl, which XSLT 1.0
cannot hash) ``size`` and ``sha256`` of the content as the hook would decode it: "invalid"
where the hook would refuse it (bad base64, or a comment, PI or element inside, metadata.py).
Sealed content (``encoding="sealed"``) keeps its ``key`` and shows its sealed size, never a
hash. The same elements as the stylesheet's ``pl:file/pl:content``; tests compare the two.

oVirt's payload files (``<ovirt-vm:file>`` of VDSM's ``<ovirt-vm:payload>`` and of the older
``<ovirt-vm:specParams><ovirt-vm:vmPayload>``) are content too: each loses its text and any
child, keeps its attributes (``path``) and says ``redacted="yes"``, here as in the stylesheet.
"""

from __future__ import annotations

import hashlib

from ..errors import PayloadError
from ..model import decode_content
from ..xmlsafe import parse_xml, serialize
from .metadata import CONTENT, FILE
from .ovirt import FILE as OVIRT_FILE
from .ovirt import PAYLOAD as OVIRT_PAYLOAD
from .ovirt import VM_PAYLOAD as OVIRT_VM_PAYLOAD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def redact(xml: bytes | str, digests: bool = True) -> bytes:
    root = parse_xml(xml, root_tag=None)
    for content in root.iter(CONTENT):
        parent = content.getparent()
        if parent is None or parent.tag != FILE:
            continue
        if digests:
            size, digest = _digest(content)
        content.text = None
        for child in list(content):
            content.remove(child)    # with its tail: text after a comment is content too
        sealed = content.get("encoding") == "sealed"
        for key in list(content.attrib):
            if key not in ("encoding", "key"):
                del content.attrib[key]
        content.set("redacted", "yes")
        if digests:
            content.set("size", size)
            if not sealed:    # no hash of sealed plaintext (nor of its blob): size and key only
                content.set("sha256", digest)
    for item in list(root.iter(OVIRT_FILE)):
        parent = item.getparent()
        if parent is None or parent.tag not in (OVIRT_PAYLOAD, OVIRT_VM_PAYLOAD):
            continue
        item.text = None
        for child in list(item):
            item.remove(child)
        item.set("redacted", "yes")
    return serialize(root)


def _digest(content: Any) -> tuple[str, str]:
    """Size and SHA-256 of the content the hook would read, or ('invalid', 'invalid')."""
    if len(content):
        return "invalid", "invalid"
    try:
        data = decode_content(content.text or "", content.get("encoding"), "")
    except PayloadError:
        return "invalid", "invalid"
    return str(len(data)), hashlib.sha256(data).hexdigest()   # sealed: its sealed size
