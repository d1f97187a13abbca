"""Where the store keeps its records: names only, importable at no cost.

The hook asks at every ``release`` whether a domain has a record at all; most have
none, and finding that out must not cost the imports of the store (json and
dataclasses: about 10 ms). See store.py for what a record holds.
"""

import os

#: The record directory, inside image_dir.
RECORDS = ".payloadhook"
#: Files being written (images in image_dir, records in RECORDS) carry this name until renamed.
TMP_SUFFIX = ".payloadhook-tmp"
_HEX_LIMIT = 100   # longer names are hashed, to keep file names under 255 bytes


def record_name(domain: str) -> str:
    """The record file of a domain: its name in hex, or a SHA-256 of a long one."""
    raw = domain.encode("utf-8", "surrogateescape")
    if len(raw) <= _HEX_LIMIT:
        return "dom-" + raw.hex() + ".json"
    import hashlib
    return "dom-sha256-" + hashlib.sha256(raw).hexdigest() + ".json"


def tmp_name(name: str) -> str:
    """The name ``name`` has while it is being written."""
    return "." + name + TMP_SUFFIX


def has_record(image_dir: str, domain: str) -> bool:
    """A cheap look (following no link at the end) before the store is imported: a record,
    or one a killed prepare left half-written."""
    name = record_name(domain)
    return (os.path.lexists(os.path.join(image_dir, RECORDS, name))
            or os.path.lexists(os.path.join(image_dir, RECORDS, tmp_name(name))))
