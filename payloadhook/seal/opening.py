"""Opening a domain's sealed files in memory, as the hook's prepare (and ``check``) does:
each with the key its ``key=`` names, bound to the domain's UUID and the file's name.

Nothing opened is written anywhere but into the image; a refusal names the file and the
key id, never content.
"""

from __future__ import annotations

from ..errors import SealError, quote
from ..model import Payload, PayloadFile, replace
from .blob import open_sealed
from .keys import KeyStore
from .nodump import forbid_core_dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypeVar

    from ..domain.view import Binding
    B = TypeVar("B", bound=Binding)


def has_sealed(payloads: Sequence[Payload]) -> bool:
    return any(item.sealed is not None for payload in payloads for item in payload.files)


def open_payload(payload: Payload, domain_uuid: str | None, keys: KeyStore,
                 loaded: dict[str, bytes] | None = None) -> Payload:
    """``payload`` with every sealed file opened; SealError naming the file and key otherwise."""
    loaded = {} if loaded is None else loaded
    if has_sealed((payload,)):
        forbid_core_dumps()     # before a key or an opened byte is in memory
    files = []
    for item in payload.files:
        if item.sealed is None:
            files.append(item)
            continue
        key_id = item.sealed.key_id
        try:
            if key_id not in loaded:
                loaded[key_id] = keys.load(key_id)
            if not domain_uuid:
                raise SealError("the domain has no <uuid>; sealed content is bound to one")
            plain = open_sealed(loaded[key_id], key_id, domain_uuid, item.name, item.sealed.blob)
        except SealError as exc:
            raise SealError(f"sealed file {quote(item.name)} (key {key_id}): {exc}") from None
        files.append(PayloadFile(name=item.name, content=plain))
    return replace(payload, files=tuple(files))


def open_bindings(bindings: Sequence[B], domain_uuid: str | None, key_dir: str) -> tuple[B, ...]:
    """The bindings with their payloads' sealed files opened (each key read once)."""
    keys = KeyStore(key_dir)
    loaded: dict[str, bytes] = {}
    return tuple(replace(binding, payload=open_payload(binding.payload, domain_uuid, keys, loaded))
                 if has_sealed((binding.payload,)) else binding for binding in bindings)
