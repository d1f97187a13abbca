"""Sealed content at the hook (README, "Sealed content"): opened in memory at prepare, for the
domain and name it was sealed for, with this host's key; every other case is one line
naming the file and the key id, and nothing is written."""

import base64
import io
import os
import subprocess
import sys

import pytest

from payloadhook import xmlsafe
from payloadhook.config import load_config
from payloadhook.domain import metadata
from payloadhook.errors import SealError
from payloadhook.hook import run
from payloadhook.model import Payload, PayloadFile
from payloadhook.prepare import check_domain
from payloadhook.seal.keys import KeyStore
from payloadhook.seal.sealing import reseal_payload, seal_payload
from tests.conftest import MARKER, REPO
from tests.harness import readback

UUID = "6a1f0d3e-7b2c-4d5e-8f90-a1b2c3d4e5f6"
CLONE_UUID = "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"
SECRET = (MARKER + " Administrator password: hunter2").encode()
HOOK = os.path.join(REPO, "hooks", "qemu")


@pytest.fixture
def host(tmp_path):
    """A configuration with its own image_dir and key_dir, and a current key."""
    os.chmod(tmp_path, 0o755)
    conf = tmp_path / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {tmp_path}/images\nkey_dir = {tmp_path}/keys\n")
    environ = {"PAYLOADHOOK_CONF": str(conf), "PAYLOADHOOK_INDEX": str(tmp_path / "index"), "LC_ALL": "C"}
    keys = KeyStore(str(tmp_path / "keys"))
    keys.new()
    return environ, f"{tmp_path}/images", keys


def sealed_payload(keys, uuid=UUID, payload_type="cdrom"):
    plain = Payload(type=payload_type, files=(PayloadFile("Autounattend.xml", SECRET),
                                              PayloadFile("readme.txt", b"not secret")))
    return seal_payload(plain, uuid, keys, keys.current())


def domain_xml(image_dir, payloads, uuid=UUID, name="sealed-vm"):
    """A domain with a payload disk for each payload's type (and no other disk in image_dir)."""
    disks = {"cdrom": f"<disk type='file' device='cdrom'><source file='{image_dir}/{name}-hdc.iso'/>"
                      "<target dev='hdc' bus='ide'/></disk>",
             "floppy": f"<disk type='file' device='floppy'><source file='{image_dir}/{name}-fda.img'/>"
                       "<target dev='fda' bus='fdc'/></disk>"}
    devices = "".join(disks[t] for t in dict.fromkeys(p.type for p in payloads))
    root = xmlsafe.parse_xml(f"<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>"
                             f"<devices>{devices}</devices></domain>")
    metadata.set_payloads(root, payloads)
    return xmlsafe.serialize(root)


def prepare(xml, environ, name="sealed-vm"):
    stderr = io.StringIO()
    status = run(["qemu", name, "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr, environ)
    return status, stderr.getvalue()


def test_the_definition_holds_neither_the_plaintext_nor_its_base64(host):
    environ, image_dir, keys = host
    xml = domain_xml(image_dir, [sealed_payload(keys)])
    for secret in (SECRET, base64.b64encode(SECRET), MARKER.encode(), base64.b64encode(MARKER.encode())[:16]):
        assert secret not in xml
    assert f'encoding="sealed" key="{keys.current()}"'.encode() in xml
    assert b"not secret" not in xml    # every file of a sealed payload is sealed


@pytest.mark.parametrize("payload_type", ["cdrom", "floppy"])
def test_prepare_opens_sealed_files_into_the_image(host, payload_type):
    environ, image_dir, keys = host
    xml = domain_xml(image_dir, [sealed_payload(keys, payload_type=payload_type)])
    assert prepare(xml, environ) == (0, "")
    expected = {"Autounattend.xml": SECRET, "readme.txt": b"not secret"}
    if payload_type == "cdrom":
        assert readback.iso_files(f"{image_dir}/sealed-vm-hdc.iso") == expected
    else:
        assert readback.fat_files(f"{image_dir}/sealed-vm-fda.img") == expected


def test_the_hook_process_opens_them_under_lc_all_c(host):
    environ, image_dir, keys = host
    xml = domain_xml(image_dir, [sealed_payload(keys)])
    result = subprocess.run([sys.executable, "-I", HOOK, "sealed-vm", "prepare", "begin", "-"], input=xml,
                            capture_output=True, env={"PATH": "/usr/bin:/bin", **environ}, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert readback.iso_files(f"{image_dir}/sealed-vm-hdc.iso")["Autounattend.xml"] == SECRET


def _transplanted(keys, image_dir):
    return domain_xml(image_dir, [sealed_payload(keys, uuid=CLONE_UUID)])


def _renamed(keys, image_dir):
    payload = sealed_payload(keys)
    first, second = payload.files
    swapped = Payload(type="cdrom", files=(PayloadFile("Unattend.xml", b"", first.sealed), second))
    return domain_xml(image_dir, [swapped])


def _tampered(keys, image_dir):
    xml = domain_xml(image_dir, [sealed_payload(keys)])
    start = xml.index(b'key="') + 30
    flipped = b"A" if xml[start:start + 1] != b"A" else b"B"
    return xml[:start] + flipped + xml[start + 1:]


def _other_key(keys, image_dir):
    xml = domain_xml(image_dir, [sealed_payload(keys)])
    old = keys.current()
    keys.new()
    return xml.replace(f'key="{old}"'.encode(), f'key="{keys.current()}"'.encode())


def _missing_key(keys, image_dir):
    xml = domain_xml(image_dir, [sealed_payload(keys)])
    os.unlink(f"{keys.key_dir}/{keys.current()}.key")
    return xml


@pytest.mark.parametrize("attack,reason", [
    (_transplanted, "sealed for another domain"),
    (_renamed, "under another name"),
    (_tampered, "or it was changed"),
    (_other_key, "or key"),
    (_missing_key, "is not on this host"),
])
def test_a_blob_that_does_not_open_is_one_line_naming_file_and_key(host, attack, reason):
    environ, image_dir, keys = host
    xml = attack(keys, image_dir)
    status, stderr = prepare(xml, environ)
    assert status == 1 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("payloadhook: domain sealed-vm: sealed file ") and "(key 20" in stderr
    assert reason in stderr and MARKER not in stderr
    assert not os.path.exists(image_dir) or [n for n in os.listdir(image_dir) if not n.startswith(".")] == []


def test_check_opens_them_too(host):
    environ, image_dir, keys = host
    config = load_config(environ=environ)
    assert len(check_domain(domain_xml(image_dir, [sealed_payload(keys)]), config)) == 1
    with pytest.raises(SealError, match="sealed for another domain"):
        check_domain(_transplanted(keys, image_dir), config)


def test_a_sealed_file_without_key_or_with_a_hostile_key_id_is_refused(host):
    environ, image_dir, keys = host
    xml = domain_xml(image_dir, [sealed_payload(keys)])
    for bad, message in ((b'key="../../../etc/shadow"', "is not a key id"), (b"", "needs key=")):
        status, stderr = prepare(xml.replace(f'key="{keys.current()}"'.encode(), bad), environ)
        assert status == 1 and message in stderr and stderr.count("\n") == 1


def test_reseal_moves_files_to_the_current_key_and_rebinds_a_clone(host):
    environ, image_dir, keys = host
    old = keys.current()
    original = sealed_payload(keys)
    keys.new()
    resealed, count = reseal_payload(original, UUID, keys, keys.current())
    assert count == 2 and {f.sealed.key_id for f in resealed.files} == {keys.current()}
    os.unlink(f"{keys.key_dir}/{old}.key")
    assert prepare(domain_xml(image_dir, [resealed]), environ) == (0, "")
    clone, count = reseal_payload(resealed, CLONE_UUID, keys, keys.current(), from_uuid=UUID)
    xml = domain_xml(image_dir, [clone], uuid=CLONE_UUID, name="clone")
    assert prepare(xml, environ, name="clone") == (0, "")
    assert readback.iso_files(f"{image_dir}/clone-hdc.iso")["Autounattend.xml"] == SECRET


@pytest.mark.parametrize("how", ["python", "python-digests", "xsltproc", "lxml"])
def test_redaction_keeps_name_key_and_sealed_size_never_a_hash(host, how):
    from payloadhook.domain.redact import redact
    from tests.test_redact import lxml_xslt, xsltproc
    environ, image_dir, keys = host
    payload = sealed_payload(keys)
    xml = domain_xml(image_dir, [payload])
    apply = {"python": lambda x: redact(x, digests=False), "python-digests": redact,
             "xsltproc": xsltproc, "lxml": lxml_xslt}[how]
    out = apply(xml)
    root = xmlsafe.parse_xml(out)
    contents = root.findall(f".//{metadata.CONTENT}")
    assert len(contents) == 2
    for content, item in zip(contents, payload.files):
        assert (content.text or "") == "" and content.get("redacted") == "yes"
        assert content.get("encoding") == "sealed" and content.get("key") == keys.current()
        assert content.get("sha256") is None
        if how == "python-digests":
            assert content.get("size") == str(item.sealed.size)
    assert b"Autounattend.xml" in out


def test_ovf_carries_sealed_files_sealed_or_not_at_all(host, tmp_path):
    from payloadhook import ovf
    environ, image_dir, keys = host
    payload = sealed_payload(keys)
    bare = ovf.export([payload], "sealed-vm")
    assert b"sha256" not in bare and f'key="{keys.current()}"'.encode() in bare
    for secret in (SECRET, base64.b64encode(SECRET)[:20]):
        assert secret not in bare
    full = ovf.export([payload], "sealed-vm", with_content=True, with_digests=True)
    assert b"sha256" not in full and SECRET not in full and b'encoding="sealed"' in full
    (back,) = ovf.to_payloads(ovf.read_declared(full))
    assert [f.sealed for f in back.files] == [f.sealed for f in payload.files]
    # what import brings back opens for the domain it was sealed for, as before
    assert prepare(domain_xml(image_dir, [back]), environ) == (0, "")
    assert readback.iso_files(f"{image_dir}/sealed-vm-hdc.iso")["Autounattend.xml"] == SECRET


@pytest.mark.parametrize("alias", ["{d}/sealed-vm-hdc.iso", "{d}/../images/sealed-vm-hdc.iso",
                                   "/{d}/sealed-vm-hdc.iso", "{link}/sealed-vm-hdc.iso"])
def test_another_domain_cannot_open_a_running_domains_image(host, alias, tmp_path):
    """A second domain declaring a payload of its own and an extra disk on the first one's
    image (found by the attack review): refused, whatever the spelling of the path."""
    environ, image_dir, keys = host
    assert prepare(domain_xml(image_dir, [sealed_payload(keys)]), environ) == (0, "")
    os.symlink(image_dir, tmp_path / "alias")
    source = alias.format(d=image_dir, link=tmp_path / "alias")
    other = domain_xml(image_dir, [Payload(type="floppy", files=(PayloadFile("a", b"a"),))],
                       uuid=CLONE_UUID, name="other")
    other = other.replace(b"</devices>", f"<disk type='file' device='disk'><source file='{source}'/>"
                                         f"<target dev='vdb'/></disk></devices>".encode())
    status, stderr = prepare(other, environ, name="other")
    assert status == 1 and ("disk 'vdb' opens" in stderr or "disk vdb opens" in stderr), stderr
    assert "in the image directory, but receives no payload of this domain" in stderr


#: What a sealed prepare imports beyond an unsealed one's (tests/test_hook.py): the C half of
#: ctypes, to turn core dumps off (seal/nodump.py) and call libgcrypt (seal/gcrypt.py). Not
#: resource: RLIMIT_CORE is set through libc's prlimit64 by the same _ctypes (300,000
#: instructions less); not the ctypes package (7 million instructions: seal/cfunctions.py),
#: not cryptography, and not seal/evp.py where libgcrypt opens the files.
SEALED_PATH_STDLIB = {"_ctypes"}


def test_a_sealed_prepare_imports_only_what_it_uses(host):
    from tests.test_hook import PAYLOAD_PATH_STDLIB
    environ, image_dir, keys = host
    xml = domain_xml(image_dir, [sealed_payload(keys), sealed_payload(keys, payload_type="floppy")], name="imports")
    # without site (-S), as the installed hook runs it
    code = (f"import os, sys; sys.path.insert(0, {REPO!r}); before = set(sys.modules); from payloadhook.hook import run; "
            "rc = run(['qemu', 'imports', 'prepare', 'begin', '-'], sys.stdin.buffer, sys.stdout.buffer, sys.stderr); "
            "print(rc, *sorted(set(sys.modules) - before))")
    env = {"PATH": "/usr/bin:/bin", **environ}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], input=xml, capture_output=True, env=env)
    status, *loaded = result.stdout.decode().split("\n")[-2].split(" ")
    assert status == "0", result.stderr
    assert "payloadhook.seal.gcrypt" in loaded and "payloadhook.seal.evp" not in loaded
    assert {m for m in loaded if m.partition(".")[0] != "payloadhook"} - PAYLOAD_PATH_STDLIB == SEALED_PATH_STDLIB
