"""AES-256-GCM decryption through OpenSSL's own public C API (libcrypto's EVP functions, by
ctypes): the hook's fast way of opening sealed content.

Why not pyca's ``AESGCM`` in the hook: with Debian 12's cryptography 38 its import loads the
library's whole OpenSSL backend, X.509 and ``inspect`` included, about 40 ms of every start of
a domain with sealed files (``python -X importtime``), where ``ctypes`` and libcrypto cost
about 1.5 ms. pyca's internal binding (``cryptography.hazmat.bindings._openssl``) was fast
too, but it is no API: newer releases no longer ship it. The EVP calls below are OpenSSL's
documented interface, the same in OpenSSL 1.1 and 3 (EVP_EncryptInit(3), "GCM and OCB Modes").

Everything else (sealing, the command, ``check``) uses pyca's public ``AESGCM``
(seal/blob.py); tests check that both agree on every outcome. Where libcrypto cannot be loaded,
:func:`decrypt` raises :class:`Unavailable` and the caller uses ``AESGCM``; so it does where
libcrypto loads but cannot set AES-256-GCM up (a configuration without a provider for it).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: sonames tried in order: OpenSSL 3 (Debian 12, Fedora, RHEL 9), then 1.1.
LIBRARIES = ("libcrypto.so.3", "libcrypto.so.1.1")
EVP_CTRL_GCM_SET_IVLEN = 0x9
EVP_CTRL_GCM_SET_TAG = 0x11
KEY_BYTES, NONCE_BYTES, TAG_BYTES = 32, 12, 16
#: EVP's lengths are C ints.
MAX_LENGTH = 2**31 - 1 - 64

_loaded: list[Any] = []


class Unavailable(Exception):
    """libcrypto cannot be loaded here (the caller falls back to pyca's AESGCM)."""


def _library() -> Any:
    if _loaded:
        return _loaded[0]
    from . import cfunctions as c
    try:
        handle = c.library(LIBRARIES)
        p, i, s = c.c_void_p, c.c_int, c.c_char_p
        functions = {name: c.function(handle, name, restype, argtypes) for name, restype, argtypes in (
            ("EVP_aes_256_gcm", p, ()),
            ("EVP_CIPHER_CTX_new", p, ()),
            ("EVP_CIPHER_CTX_free", None, (p,)),
            ("EVP_CIPHER_CTX_ctrl", i, (p, i, i, p)),
            ("EVP_DecryptInit_ex", i, (p, p, p, s, s)),
            ("EVP_DecryptUpdate", i, (p, p, p, s, i)),
            ("EVP_DecryptFinal_ex", i, (p, p, p)),
            ("ERR_clear_error", None, ()))}
    except c.Unavailable as exc:
        raise Unavailable(str(exc)) from None
    lib = _Library(functions)
    _loaded.append(lib)
    return lib


class _Library:
    """libcrypto's functions that :func:`decrypt` calls, as attributes."""

    def __init__(self, functions: dict[str, Any]) -> None:
        self.__dict__.update(functions)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes | None:
    """The plaintext; None when the tag does not verify (or the sizes are not GCM's here).
    Unavailable when libcrypto cannot be loaded or cannot set AES-256-GCM up; MemoryError
    when OpenSSL has no context (the caller falls back to pyca's AESGCM for both)."""
    if (len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES or len(tag) != TAG_BYTES
            or len(ciphertext) > MAX_LENGTH or len(aad) > MAX_LENGTH):
        return None
    from . import cfunctions as c
    lib = _library()
    # the buffers before the context: nothing to free if they cannot be had
    out = c.buffer(len(ciphertext) + TAG_BYTES)    # GCM writes len(ciphertext)
    tag_buffer = c.buffer(TAG_BYTES, tag)
    written, final = c.c_int(0), c.c_int(0)
    ctx = lib.EVP_CIPHER_CTX_new()
    if not ctx:
        raise MemoryError("EVP_CIPHER_CTX_new")
    try:
        # every step but the last failing says this libcrypto cannot do it (a provider
        # without AES-GCM, as a FIPS or null configuration gives), not that the blob changed
        ready = (lib.EVP_DecryptInit_ex(ctx, lib.EVP_aes_256_gcm(), None, None, None) == 1
                 and lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, None) == 1
                 and lib.EVP_DecryptInit_ex(ctx, None, None, key, nonce) == 1
                 and lib.EVP_DecryptUpdate(ctx, None, c.byref(written), aad, len(aad)) == 1
                 and lib.EVP_DecryptUpdate(ctx, c.pointer(out), c.byref(written), ciphertext, len(ciphertext)) == 1
                 and written.value == len(ciphertext)
                 and lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, c.pointer(tag_buffer)) == 1)
        if not ready:
            raise Unavailable("libcrypto's AES-256-GCM did not initialise")
        # the tag is checked here only: this failing is what a changed blob gives
        ok = (lib.EVP_DecryptFinal_ex(ctx, c.pointer(out, written.value), c.byref(final)) == 1
              and final.value == 0)
        plaintext = bytes(memoryview(out)[:len(ciphertext)]) if ok else None
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)
        lib.ERR_clear_error()           # a tag that does not verify may leave an error queued
        c.wipe(out)                     # no opened byte left in this buffer
    return plaintext
