"""Sealed content (README, "Sealed content"): the blob format and the key directory."""

import base64
import os
import stat
import subprocess
import sys
import uuid

import pytest

from payloadhook.errors import PayloadError, SealError
from payloadhook.model import check_key_id
from payloadhook.ops import virt
from payloadhook.seal import blob
from payloadhook.seal.keys import KeyStore
from tests.conftest import MARKER

UUID = "0b7a1e2c-5d4f-4c3b-9a8e-7f6d5c4b3a21"
OTHER_UUID = "11111111-2222-4333-8444-555555555555"
KEY = bytes(range(32))


def test_a_blob_is_nonce_ciphertext_tag_and_opens_only_where_it_was_sealed():
    sealed = blob.seal(KEY, "k1", UUID, "Autounattend.xml", MARKER.encode())
    assert len(sealed) == blob.sealed_size(len(MARKER)) == 12 + len(MARKER) + 16
    assert MARKER.encode() not in sealed
    assert blob.open_sealed(KEY, "k1", UUID.upper(), "Autounattend.xml", sealed) == MARKER.encode()
    assert blob.seal(KEY, "k1", UUID, "a", b"x")[:12] != blob.seal(KEY, "k1", UUID, "a", b"x")[:12]


def _tampered(sealed: bytes) -> bytes:
    return sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:]


@pytest.mark.parametrize("case,args", [
    ("transplanted into another domain", (KEY, "k1", OTHER_UUID, "Autounattend.xml")),
    ("renamed", (KEY, "k1", UUID, "Unattend.xml")),
    ("relabelled with another key id", (KEY, "k2", UUID, "Autounattend.xml")),
    ("under another key", (bytes(32), "k1", UUID, "Autounattend.xml")),
])
def test_a_moved_blob_does_not_open(case, args):
    sealed = blob.seal(KEY, "k1", UUID, "Autounattend.xml", b"secret")
    with pytest.raises(SealError, match="does not open with key k"):
        blob.open_sealed(*args, sealed)


def test_a_tampered_or_short_blob_does_not_open():
    sealed = blob.seal(KEY, "k1", UUID, "a", b"secret")
    with pytest.raises(SealError, match="does not open"):
        blob.open_sealed(KEY, "k1", UUID, "a", _tampered(sealed))
    with pytest.raises(SealError, match="too short"):
        blob.open_sealed(KEY, "k1", UUID, "a", sealed[:27])


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "0b7a1e2c"])
def test_sealing_needs_the_domain_uuid(bad):
    with pytest.raises(SealError, match="no valid <uuid>"):
        blob.seal(KEY, "k1", bad, "a", b"x")


@pytest.mark.parametrize("key_id", ["../../etc/shadow", "a/b", "", "-x", "A", "k" * 65, "k\n1", "k.key"])
def test_a_key_id_from_input_never_names_another_file(key_id):
    with pytest.raises(PayloadError, match="is not a key id"):
        check_key_id(key_id)


@pytest.fixture
def keys(tmp_path):
    os.chmod(tmp_path, 0o755)
    return KeyStore(str(tmp_path / "etc" / "keys"))


def test_key_new_writes_32_root_only_bytes_and_makes_them_current(keys):
    old = os.umask(0)
    try:
        first = keys.new()
    finally:
        os.umask(old)
    path = f"{keys.key_dir}/{first}.key"
    assert stat.S_IMODE(os.stat(keys.key_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(open(path, "rb").read()) == 32 and keys.load(first) == open(path, "rb").read()
    assert keys.current() == first
    second = keys.new()
    assert keys.current() == second and keys.load(first) != keys.load(second)
    assert [(k.key_id, k.current) for k in keys.list()] == [(first, False), (second, True)]


def test_no_key_directory_means_no_current_key_and_a_clear_refusal(keys):
    assert keys.current() is None and keys.list() == []
    # a domain sealed elsewhere: a new key would not open it, the one it names would
    with pytest.raises(SealError, match=r"key 20261129-00000000 is not on this host .*copy it from a host"):
        keys.load("20261129-00000000")


def test_a_missing_key_is_named(keys):
    keys.new()
    with pytest.raises(SealError, match=r"key 20200101-deadbeef is not on this host .*copy it"):
        keys.load("20200101-deadbeef")


@pytest.mark.parametrize("uri", ["test:///default", "qemu:///session", "qemu+ssh://other/system",
                                 "qemu://other/system", "qemu+tcp://127.0.0.1/system", "lxc:///system"])
def test_key_retire_searches_only_the_local_system_daemon(keys, tmp_path, uri):
    """A key is the host's: retire asks the daemon whose domains the hook serves whether it is
    used, and refuses any other URI (whose domains say nothing of this host's) without connecting."""
    old = keys.new()
    keys.new()
    conf = tmp_path / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {tmp_path}/images\nkey_dir = {keys.key_dir}\n")
    result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", uri, "key", "retire", old],
                            capture_output=True, text=True,
                            env={**os.environ, "LC_ALL": "C", "PAYLOADHOOK_CONF": str(conf)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "searches the local system daemon (qemu:///system)" in result.stderr
    assert result.stdout == "" and os.path.exists(f"{keys.key_dir}/{old}.key")


def test_the_local_system_daemon_is_qemu_system_through_any_socket():
    assert virt.local_system("qemu:///system") and virt.local_system("qemu+unix:///system")
    assert virt.local_system("qemu:///system?socket=/tmp/private/libvirt-sock")   # as the tests' own daemon
    assert not virt.local_system("qemu:///session") and not virt.local_system("qemu://localhost/system")


@pytest.mark.parametrize("attack", ["dir-mode", "file-mode", "file-owner", "symlink", "fifo", "short"])
def test_keys_that_others_could_read_or_swap_are_refused(keys, attack, tmp_path):
    key_id = keys.new()
    path = f"{keys.key_dir}/{key_id}.key"
    if attack == "dir-mode":
        os.chmod(keys.key_dir, 0o755)
    elif attack == "file-mode":
        os.chmod(path, 0o644)
    elif attack == "file-owner":
        os.chown(path, 65534, 65534)
    elif attack == "symlink":
        target = tmp_path / "elsewhere"
        target.write_bytes(bytes(32))
        os.chmod(target, 0o600)
        os.unlink(path)
        os.symlink(target, path)
    elif attack == "fifo":
        os.unlink(path)
        os.mkfifo(path, 0o600)
    elif attack == "short":
        with open(path, "wb") as stream:
            stream.write(b"short")
    with pytest.raises(SealError) as caught:
        keys.load(key_id)
    assert "\n" not in str(caught.value)


def test_a_key_directory_reached_through_a_link_is_refused(tmp_path):
    real = KeyStore(str(tmp_path / "real" / "keys"))
    real.new()
    os.symlink(tmp_path / "real", tmp_path / "link")
    linked = KeyStore(str(tmp_path / "link" / "keys"))
    with pytest.raises(SealError, match="cannot be opened"):
        linked.current()


def test_sealed_bytes_show_no_plaintext_in_base64_either():
    sealed = blob.seal(KEY, "k1", str(uuid.uuid4()), "a", MARKER.encode() * 4)
    assert base64.b64encode(MARKER.encode()).decode()[:16] not in base64.b64encode(sealed).decode()


@pytest.mark.parametrize("library", ["gcrypt", "evp"])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4096, 100_003])
def test_the_hooks_opening_through_a_c_library_agrees_with_pycas_aesgcm(size, library, monkeypatch):
    """seal/gcrypt.py (libgcrypt, the hook's first way) and seal/evp.py (OpenSSL's EVP API, its
    second) against pyca's public AESGCM (everyone else's): what one seals the other opens,
    and a wrong tag, key, nonce or associated data, or a changed ciphertext, opens in none;
    open_sealed gives the same either way."""
    import importlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    evp = importlib.import_module(f"payloadhook.seal.{library}")
    key, nonce, aad = os.urandom(32), os.urandom(12), os.urandom(size % 97)
    plaintext = os.urandom(size)
    sealed = AESGCM(key).encrypt(nonce, plaintext, aad)
    ciphertext, tag = sealed[:-16], sealed[-16:]
    assert evp.decrypt(key, nonce, ciphertext, tag, aad) == plaintext
    assert blob._decrypt_public(key, nonce, sealed, aad) == plaintext
    wrongs = [(key, nonce, ciphertext, bytes([tag[0] ^ 0x80]) + tag[1:], aad), (os.urandom(32), nonce, ciphertext, tag, aad),
              (key, os.urandom(12), ciphertext, tag, aad), (key, nonce, ciphertext, tag, aad + b"x"),
              (key[:16], nonce, ciphertext, tag, aad), (key, nonce[:8], ciphertext, tag, aad), (key, nonce, ciphertext, tag[:12], aad)]
    if size:
        wrongs.append((key, nonce, bytes([ciphertext[0] ^ 1]) + ciphertext[1:], tag, aad))
    for wrong in wrongs:
        assert evp.decrypt(*wrong) is None
        if len(wrong[0]) == 32 and len(wrong[1]) == 12 and len(wrong[3]) == 16:
            assert blob._decrypt_public(wrong[0], wrong[1], wrong[2] + wrong[3], wrong[4]) is None
    one = blob.seal(key, "k1", UUID, "n", plaintext)
    for fast in (False, True):
        monkeypatch.setattr(blob, "FAST_OPENING", fast)
        assert blob.open_sealed(key, "k1", UUID, "n", one) == plaintext
        with pytest.raises(SealError, match="does not open with key k1"):
            blob.open_sealed(key, "k1", UUID, "m", one)


def _buffers_made(monkeypatch) -> list[bytearray]:
    """Every C buffer seal/cfunctions.py makes from now on, recorded (the real one, kept)."""
    from payloadhook.seal import cfunctions
    made: list[bytearray] = []
    real = cfunctions.buffer

    def recording(*args):
        made.append(real(*args))
        return made[-1]
    monkeypatch.setattr(cfunctions, "buffer", recording)
    return made


@pytest.mark.parametrize("library", ["gcrypt", "evp"])
@pytest.mark.parametrize("size", [0, 1, 17, 4096, (1 << 20) + 3])
def test_the_buffer_a_c_library_decrypts_into_is_wiped_opened_or_refused(size, library, monkeypatch):
    """The C libraries decrypt into a buffer of ours before the tag is checked: it is zero
    again once the plaintext is taken, and once a changed blob is refused (its bytes are
    what a tampered blob would have left in memory)."""
    import importlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    way = importlib.import_module(f"payloadhook.seal.{library}")
    key, nonce, aad = os.urandom(32), os.urandom(12), os.urandom(16)
    plaintext = b"\xa5" * size    # no zero byte: a buffer left as it was shows
    sealed = AESGCM(key).encrypt(nonce, plaintext, aad)
    made = _buffers_made(monkeypatch)
    assert way.decrypt(key, nonce, sealed[:-16], sealed[-16:], aad) == plaintext
    assert made and not any(made[0])
    made.clear()
    assert way.decrypt(key, nonce, sealed[:-16], bytes([sealed[-16] ^ 1]) + sealed[-15:], aad) is None
    assert made and not any(made[0])


def test_the_buffer_is_wiped_when_libgcrypts_tag_check_fails_otherwise(monkeypatch):
    """A tag check that fails for another reason than a changed blob says libgcrypt cannot
    (Unavailable: the next way is tried); its buffer is wiped all the same."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from payloadhook.seal import gcrypt
    key, nonce = os.urandom(32), os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, b"\xa5" * 100, b"")
    functions = gcrypt._functions()
    made = _buffers_made(monkeypatch)
    monkeypatch.setitem(functions, "gcry_cipher_checktag", lambda *args: (1 << 24) | 5)
    with pytest.raises(gcrypt.Unavailable):
        gcrypt.decrypt(key, nonce, sealed[:-16], sealed[-16:], b"")
    assert made and not any(made[0])


def test_a_wiped_buffer_is_zero_to_its_last_byte():
    from payloadhook.seal import cfunctions
    out = cfunctions.buffer(4096, b"\xff" * 4096)
    cfunctions.wipe(out)
    assert out == bytearray(4096)


def _opened_in_a_child(fast: bool, libraries=None, env=None, gcrypt_libraries=None) -> list[str]:
    """Open a sealed blob in a fresh interpreter; the cryptography modules it then holds, and
    which of the hook's own ways (seal/gcrypt.py, seal/evp.py) it imported."""
    import subprocess
    import sys
    sealed = blob.seal(KEY, "k1", UUID, "a", b"secret")
    code = ("import sys; from payloadhook.seal import blob, evp, gcrypt; "
            f"blob.FAST_OPENING = {fast!r}; "
            + (f"evp.LIBRARIES = {libraries!r}; " if libraries is not None else "")
            + (f"gcrypt.LIBRARIES = {gcrypt_libraries!r}; " if gcrypt_libraries is not None else "")
            + f"assert blob.open_sealed(bytes(range(32)), 'k1', {UUID!r}, 'a', bytes.fromhex({sealed.hex()!r})) == b'secret'; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('cryptography'))), "
            "'gcrypt-used' if gcrypt._loaded else '', 'evp-used' if evp._loaded else '')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_hooks_opening_uses_libgcrypt_no_private_binding_and_not_the_slow_import():
    """The hook's way imports nothing of cryptography: not pyca's internal OpenSSL binding (no
    API; gone from newer releases) and not AESGCM's whole backend (about 40 ms with cryptography 38);
    and where libgcrypt opens it, OpenSSL is not even loaded."""
    assert _opened_in_a_child(fast=True) == ["gcrypt-used"]


def test_without_libgcrypt_the_hook_opens_through_libcrypto():
    assert _opened_in_a_child(fast=True, gcrypt_libraries=("libgcrypt-not-here.so.0",)) == ["evp-used"]


def test_everyone_else_opens_with_pycas_public_aesgcm():
    modules = _opened_in_a_child(fast=False)
    assert "cryptography.hazmat.primitives.ciphers.aead" in modules
    assert "gcrypt-used" not in modules and "evp-used" not in modules


def test_without_either_library_the_hook_opens_with_the_public_api():
    modules = _opened_in_a_child(fast=True, libraries=("libcrypto-not-here.so.0",),
                                 gcrypt_libraries=("libgcrypt-not-here.so.0",))
    assert "cryptography.hazmat.primitives.ciphers.aead" in modules


def test_a_libcrypto_that_cannot_set_aes_gcm_up_falls_back_to_the_public_api(tmp_path):
    """libcrypto loads but its configuration offers no AES-GCM (OpenSSL 3's null provider
    alone, as a FIPS setup without it): EVP's initialisation fails, which says nothing of the
    blob, so the hook opens with pyca's AESGCM (which loads its own provider) instead of
    calling the blob changed. (libgcrypt left out, so that EVP is tried.)"""
    conf = tmp_path / "openssl.cnf"
    conf.write_text("openssl_conf = init\n[init]\nproviders = providers\n[providers]\nnull = null\n"
                    "[null]\nactivate = 1\n")
    modules = _opened_in_a_child(fast=True, env={"OPENSSL_CONF": str(conf)},
                                 gcrypt_libraries=("libgcrypt-not-here.so.0",))
    assert "cryptography.hazmat.primitives.ciphers.aead" in modules


def test_a_libgcrypt_older_than_gcm_is_not_used(monkeypatch):
    """gcry_check_version refuses the minimum (here: one no libgcrypt has reached): libgcrypt
    is unavailable, which is not a blob that does not open."""
    from payloadhook.seal import gcrypt
    monkeypatch.setattr(gcrypt, "MINIMUM_VERSION", b"99.0.0")
    monkeypatch.setattr(gcrypt, "_loaded", {})
    with pytest.raises(gcrypt.Unavailable, match="older than 99.0.0"):
        gcrypt.decrypt(KEY, bytes(12), b"", bytes(16), b"")


def test_no_module_reaches_into_a_librarys_private_modules():
    """Only public APIs: no import of a module whose name starts with '_' from another package
    (cryptography.hazmat.bindings._openssl was one)."""
    import re
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "payloadhook")
    private = re.compile(r"^\s*(from|import)\s+(?!\.)([\w.]*\._\w+)", re.M)
    found = []
    for top, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(top, name), encoding="utf-8").read()
                found += [f"{name}: {m.group(2)}" for m in private.finditer(text) if not m.group(2).startswith("__")]
    assert found == []


@pytest.mark.parametrize("text", [UUID, UUID.upper(), UUID.replace("-", ""), f"  {UUID}\n"])
def test_a_uuid_binds_as_libvirt_prints_it(text):
    assert blob.canonical_uuid(text) == str(uuid.UUID(text.strip())) == UUID


@pytest.mark.parametrize("text", ["0b7a1e2c-5d4f-4c3b-9a8e-7f6d5c4b3a2", "0b7a1e2c-5d4f-4c3b-9a8e-7f6d5c4b3a2g",
                                  "0b7a-1e2c5d4f-4c3b-9a8e-7f6d5c4b3a21-", "{" + UUID + "}"])
def test_a_malformed_uuid_binds_nothing(text):
    with pytest.raises(SealError, match="no valid <uuid>"):
        blob.canonical_uuid(text)
