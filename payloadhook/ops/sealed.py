"""A payload sealed for the domain it is attached to, as ``--seal`` / ``--no-seal`` say."""

from __future__ import annotations


def sealed_for(root, payload, config, seal: bool | None):
    """``payload`` sealed for the domain ``root`` (its <uuid>) under the host's current key,
    when ``seal`` is True, or None (the default) and the host has a key; else as it is."""
    if seal is False:
        return payload
    from ..errors import SealError
    from ..seal.keys import KeyStore
    from ..seal.sealing import current_key, seal_payload
    keys = KeyStore(config.key_dir)
    key_id = current_key(keys, required=seal is True)
    if key_id is None:
        return payload
    uuid = root.findtext("uuid")
    if not uuid:
        raise SealError("the domain XML has no <uuid>, and sealed content is bound to one: give it a <uuid> "
                        "(virsh define gives one), or --no-seal")
    return seal_payload(payload, uuid, keys, key_id)
