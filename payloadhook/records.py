"""Where the store keeps its records: names only, importable at no cost.

The hook asks at every ``release`` whether a domain has a record at all; most have
none, and finding that out must not cost the imports of the store (json, logging,
dataclasses, socket: about 15 ms). See store.py for what a record holds.
"""

import os

#: The record directory, inside image_dir.
RECORDS = ".payloadhook"
_HEX_LIMIT = 100   # longer names are hashed, to keep file names under 255 bytes


def record_name(domain: str) -> str:
    """The record file of a domain: its name in hex, or a SHA-256 of a long one."""
    raw = domain.encode("utf-8", "surrogateescape")
    if len(raw) <= _HEX_LIMIT:
        return "dom-" + raw.hex() + ".json"
    import hashlib
    return "dom-sha256-" + hashlib.sha256(raw).hexdigest() + ".json"


def has_record(image_dir: str, domain: str) -> bool:
    """A cheap look (following no link at the end) before the store is imported."""
    return os.path.lexists(os.path.join(image_dir, RECORDS, record_name(domain)))
