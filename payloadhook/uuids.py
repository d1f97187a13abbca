"""A domain's UUID, read as libvirt reads one (``virUUIDParse``): 16 pairs of hex digits,
any number of dashes or spaces between pairs, blanks around; written as libvirt prints one,
lower case with dashes 8-4-4-4-12. One rule for finding a domain by UUID, for binding
sealed content to one, and for the store's records.

No import here (not the uuid module, which imports platform: docs/speed.md), and linear in
the text.
"""

from __future__ import annotations

_HEX = frozenset("0123456789abcdefABCDEF")
_BLANK = " \t\n\v\f\r"


def canonical_uuid(value: object) -> str | None:
    """``value`` as libvirt prints a UUID, if libvirt reads it as one; else None."""
    if not isinstance(value, str):
        return None
    text = value.lstrip(_BLANK)
    pairs: list[str] = []
    at = 0
    while len(pairs) < 16:
        if at >= len(text):
            return None
        if text[at] in "- ":
            at += 1
            continue
        pair = text[at:at + 2]
        if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
            return None
        pairs.append(pair.lower())
        at += 2
    if text[at:].strip(_BLANK):
        return None
    digits = "".join(pairs)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def is_canonical_uuid(value: object) -> bool:
    """Whether ``value`` is a UUID written as libvirt prints one (either case)."""
    return isinstance(value, str) and canonical_uuid(value) == value.lower()
