"""One sealed file: AES-256-GCM, ``nonce (12 bytes) | ciphertext | tag (16 bytes)``.

The associated data binds a blob to the domain's UUID, the file's name and the key id, so a
blob copied into another domain, put under another name or relabelled with another key id
does not open. A fresh 96-bit nonce from the OS per seal: with random nonces, one key stays
within GCM's bounds for about 2**32 seals (NIST SP 800-38D, 8.3), far more than a host makes.
"""

from __future__ import annotations

import os

from .. import uuids
from ..errors import SealError

NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
_AAD_PREFIX = b"payloadhook sealed content 1\0"


def canonical_uuid(value: str) -> str:
    """A domain UUID as libvirt prints it (by :mod:`payloadhook.uuids`); SealError if it is none."""
    canonical = uuids.canonical_uuid(value)
    if canonical is None:
        raise SealError("the domain has no valid <uuid>; sealed content is bound to one")
    return canonical


def associated_data(domain_uuid: str, name: str, key_id: str) -> bytes:
    return b"\0".join((_AAD_PREFIX, canonical_uuid(domain_uuid).encode("ascii"),
                       name.encode("utf-8", "surrogateescape"), key_id.encode("ascii")))


def sealed_size(plain_size: int) -> int:
    return NONCE_BYTES + plain_size + TAG_BYTES


def seal(key: bytes, key_id: str, domain_uuid: str, name: str, plaintext: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data(domain_uuid, name, key_id))


def open_sealed(key: bytes, key_id: str, domain_uuid: str, name: str, blob: bytes) -> bytes:
    """The plaintext of ``blob``; SealError (without the name: the caller adds it) when it does
    not open: tampered, renamed, transplanted into another domain, or sealed under another key."""
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise SealError(f"sealed content is {len(blob)} bytes, too short to be a sealed blob")
    aad = associated_data(domain_uuid, name, key_id)
    plaintext = _decrypt(key, blob[:NONCE_BYTES], blob[NONCE_BYTES:-TAG_BYTES], blob[-TAG_BYTES:], aad)
    if plaintext is None:
        raise SealError(f"sealed content does not open with key {key_id}: it was sealed for another "
                        "domain (a clone? see 'payloadhook reseal --from-uuid'), under another name "
                        "or key, or it was changed")
    return plaintext


#: Whether :func:`open_sealed` goes through a C library directly (seal/gcrypt.py, then
#: seal/evp.py): the hook's process only (hook.prepare sets it for its call); everything
#: else opens with pyca's AESGCM.
FAST_OPENING = False


def _decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes | None:
    """AES-256-GCM decryption; None when the tag does not verify. pyca's public ``AESGCM``,
    or in the hook libgcrypt's cipher API (seal/gcrypt.py, the cheapest to load and set up),
    else OpenSSL's EVP API (seal/evp.py: either is about 40 ms less per sealed start than
    ``AESGCM`` with Debian 12's cryptography 38), falling back to ``AESGCM`` where neither
    library can do AES-256-GCM."""
    if FAST_OPENING:
        from . import gcrypt
        try:
            return gcrypt.decrypt(key, nonce, ciphertext, tag, aad)
        except (gcrypt.Unavailable, MemoryError):   # no libgcrypt, too old, or it refused
            pass
        from . import evp
        try:
            return evp.decrypt(key, nonce, ciphertext, tag, aad)
        except (evp.Unavailable, MemoryError):    # no libcrypto, no AES-GCM in it, no context
            pass
    return _decrypt_public(key, nonce, ciphertext + tag, aad)


def _decrypt_public(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes | None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        return AESGCM(key).decrypt(nonce, data, aad)
    except InvalidTag:
        return None
