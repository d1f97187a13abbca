"""AES-256-GCM decryption through libgcrypt's public C API (gcry_cipher_open(3) and its
fellows, by seal/cfunctions.py): the hook's first way of opening sealed content.

Why libgcrypt before OpenSSL's EVP (seal/evp.py): both are on every libvirt host (libgcrypt
through libsystemd and GnuTLS's users, libcrypto through QEMU's and libvirt's), but the first
use of OpenSSL 3's EVP builds its whole provider method store, loads its configuration and
fills the legacy name tables: 9 million instructions, and loading libcrypto 4 million more,
about 3 ms of every sealed start. libgcrypt loads, initialises (gcry_check_version) and
opens a 16 KiB payload in 3 million, under a millisecond. Its GCM checks the tag in
constant time (gcry_cipher_checktag) and runs its own FIPS self-tests where the host is in
FIPS mode; closing a handle wipes the key schedule it held.

Where libgcrypt is missing, older than 1.6 (the first with GCM) or refuses any step before
the tag check, :func:`decrypt` raises :class:`Unavailable` and the caller tries EVP, then
pyca's ``AESGCM`` (seal/blob.py); tests hold all three to the same outcomes.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: sonames tried in order: libgcrypt 1.6 to 1.11 all have this one.
LIBRARIES = ("libgcrypt.so.20",)
MINIMUM_VERSION = b"1.6.0"
GCRY_CIPHER_AES256 = 9
GCRY_CIPHER_MODE_GCM = 9
GPG_ERR_CHECKSUM = 10       # gcry_cipher_checktag: the tag does not verify
KEY_BYTES, NONCE_BYTES, TAG_BYTES = 32, 12, 16

_loaded: dict[str, Any] = {}


class Unavailable(Exception):
    """libgcrypt cannot be loaded or cannot do AES-256-GCM here (the caller tries another way)."""


def _functions() -> dict[str, Any]:
    if _loaded:
        return _loaded
    from . import cfunctions as c
    try:
        handle = c.library(LIBRARIES)
        # pointers and byte strings as c_void_p, sizes as c_size_t; the int arguments of
        # gcry_cipher_open untyped (ctypes passes a Python int as a C int) and the results
        # C ints (gcry_error_t): no other C type made for these (seal/cfunctions.py)
        p, z, i = c.c_void_p, c.c_size_t, c.INT
        functions = {name: c.function(handle, name, restype, argtypes) for name, restype, argtypes in (
            ("gcry_check_version", p, (p,)),
            ("gcry_cipher_open", i, None),
            ("gcry_cipher_close", None, (p,)),
            ("gcry_cipher_setkey", i, (p, p, z)),
            ("gcry_cipher_setiv", i, (p, p, z)),
            ("gcry_cipher_authenticate", i, (p, p, z)),
            ("gcry_cipher_decrypt", i, (p, p, z, p, z)),
            ("gcry_cipher_checktag", i, (p, p, z)))}
    except c.Unavailable as exc:
        raise Unavailable(str(exc)) from None
    # the initialisation libgcrypt asks of its first caller; None: older than GCM
    if functions["gcry_check_version"](MINIMUM_VERSION) is None:
        raise Unavailable(f"libgcrypt older than {MINIMUM_VERSION.decode()}")
    _loaded.update(functions)
    return _loaded


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes | None:
    """The plaintext; None when the tag does not verify (or the sizes are not GCM's here).
    Unavailable when libgcrypt cannot be loaded or refuses a step before the tag's check."""
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES or len(tag) != TAG_BYTES:
        return None
    from . import cfunctions as c
    f = _functions()
    out = c.buffer(len(ciphertext))    # before the cipher opens: nothing to close if it cannot be had
    into = c.pointer(out)
    handle = c.c_void_p(0)
    if f["gcry_cipher_open"](c.byref(handle), GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0) != 0:
        raise Unavailable("libgcrypt's AES-256-GCM did not open")
    try:
        # every step but the last failing says this libgcrypt cannot do it, not that the blob changed
        ready = (f["gcry_cipher_setkey"](handle, key, KEY_BYTES) == 0
                 and f["gcry_cipher_setiv"](handle, nonce, NONCE_BYTES) == 0
                 and f["gcry_cipher_authenticate"](handle, aad, len(aad)) == 0
                 and f["gcry_cipher_decrypt"](handle, into, len(ciphertext), ciphertext, len(ciphertext)) == 0)
        if not ready:
            raise Unavailable("libgcrypt's AES-256-GCM did not initialise")
        # the tag is checked here only, in constant time: its failing is what a changed blob gives
        status = f["gcry_cipher_checktag"](handle, tag, TAG_BYTES)
        if status != 0 and status & 0xFFFF != GPG_ERR_CHECKSUM:
            raise Unavailable("libgcrypt's tag check failed")
        plaintext = (bytes(out) if ciphertext else b"") if status == 0 else None    # out is len(ciphertext)
    finally:
        f["gcry_cipher_close"](handle)     # wipes the key schedule
        c.wipe(out)                        # no opened byte left in this buffer
    return plaintext
