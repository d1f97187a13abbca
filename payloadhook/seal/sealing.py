"""Sealing a payload's files for one domain, and re-sealing them (``payloadhook reseal``):
what ``attach``, ``run-once`` and ``ovf import`` do before they write a definition.
"""

from __future__ import annotations

from ..errors import SealError
from ..model import Payload, PayloadFile, Sealed, replace
from .blob import seal
from .keys import KeyStore
from .nodump import forbid_core_dumps
from .opening import open_payload


def current_key(keys: KeyStore, required: bool) -> str | None:
    """The key new content is sealed under; None when there is none and sealing is only the
    default, SealError saying how to make one when it was asked for."""
    key_id = keys.current()
    if key_id is None and required:
        return require_current_key(keys)
    return key_id


def require_current_key(keys: KeyStore) -> str:
    """The current key's id; SealError saying how to make one when the host has none."""
    key_id = keys.current()
    if key_id is None:
        raise SealError(f"sealing needs a key and {keys.key_dir} has none; make one with "
                        "'payloadhook key new'")
    return key_id


def seal_payload(payload: Payload, domain_uuid: str, keys: KeyStore, key_id: str) -> Payload:
    """``payload`` with every file not yet sealed sealed under ``key_id`` for the domain."""
    forbid_core_dumps()     # the plaintext, and now the key, are in this process's memory
    key = keys.load(key_id)
    return replace(payload, files=tuple(
        item if item.sealed is not None else
        PayloadFile(name=item.name, content=b"",
                    sealed=Sealed(key_id, seal(key, key_id, domain_uuid, item.name, item.content)))
        for item in payload.files))


def reseal_payload(payload: Payload, domain_uuid: str, keys: KeyStore, key_id: str,
                   from_uuid: str | None = None) -> tuple[Payload, int]:
    """``payload`` with every sealed file opened (as sealed for ``from_uuid``, default the
    domain's own) and sealed again under ``key_id`` for the domain; and how many were."""
    sealed = [item for item in payload.files if item.sealed is not None]
    if not sealed:
        return payload, 0
    opened = open_payload(Payload(type=payload.type, files=tuple(sealed)), from_uuid or domain_uuid, keys)
    by_name = {item.name: item for item in seal_payload(opened, domain_uuid, keys, key_id).files}
    return replace(payload, files=tuple(by_name.get(item.name, item) for item in payload.files)), len(sealed)
