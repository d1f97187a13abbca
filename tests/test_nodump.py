"""No core dump holds opened sealed content: a process that opens it (the hook's prepare, the
command's check) turns core dumps off first (RLIMIT_CORE 0, PR_SET_DUMPABLE 0), and a crash of
such a process after opening leaves no core, with the machine's core_pattern as it is. A process
that opens nothing keeps its settings (the hook's path for a domain without payload is
untouched: tests/test_hook.py checks its imports)."""

import base64
import json
import os
import resource
import signal
import subprocess
import sys

import pytest

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.model import Payload, PayloadFile
from payloadhook.seal.keys import KeyStore
from payloadhook.seal.sealing import seal_payload
from tests.conftest import MARKER

UUID = "3c2b1a09-8f7e-4d6c-9b5a-493827161504"
SECRET = (MARKER + " the plaintext a core would hold ").encode() * 64

#: The child: raise its own core limit as far as it may (as `ulimit -c unlimited` does), do what it is told, report its dumpable flag and core limit, then crash.
CHILD = r"""
import os, resource, signal, sys
hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
what, xml_path, conf = sys.argv[1:4]
os.environ["PAYLOADHOOK_CONF"] = conf
if what == "hook":
    import io
    from payloadhook.hook import main
    with open(xml_path, "rb") as stream:
        main("crashing", "prepare", "begin", stream, io.BytesIO(), dict(os.environ))
elif what == "check":
    from payloadhook.cli import main
    assert main(["check", xml_path]) == 0
elif what == "attach-stdin":
    # crash as soon as standard input, the plaintext to seal, is read: nothing is sealed yet
    from payloadhook.cli import main
    from payloadhook.seal.nodump import is_dumpable
    real_read = os.read
    def read(fd, size):
        data = real_read(fd, size)
        if fd == 0:
            print(int(is_dumpable()), resource.getrlimit(resource.RLIMIT_CORE)[0], flush=True)
            os.kill(os.getpid(), int(sys.argv[4]))
        return data
    os.read = read
    main(["--connect", "test:///default", "attach", "test", "--seal", "--type", "cdrom", "--files-json", "-"])
elif what == "opens-nothing":
    pass
from payloadhook.seal.nodump import is_dumpable
print(int(is_dumpable()), resource.getrlimit(resource.RLIMIT_CORE)[0], flush=True)
os.kill(os.getpid(), int(sys.argv[4]))
"""


@pytest.fixture
def sealed_domain(tmp_path):
    keys = KeyStore(str(tmp_path / "keys"))
    keys.new()
    conf = tmp_path / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {tmp_path}/images\nkey_dir = {keys.key_dir}\n")
    payload = seal_payload(Payload(type="cdrom", files=(PayloadFile("Autounattend.xml", SECRET),)), UUID, keys,
                           keys.current())
    root = xmlsafe.parse_xml(f"<domain type='qemu'><name>crashing</name><uuid>{UUID}</uuid><devices>"
                             f"<disk type='file' device='cdrom'><source file='{tmp_path}/images/crashing-hdc.iso'/>"
                             "<target dev='hdc' bus='ide'/></disk></devices></domain>")
    metadata.set_payloads(root, [payload])
    path = tmp_path / "domain.xml"
    path.write_bytes(xmlsafe.serialize(root))
    return path, conf


def crash(tmp_path, what, xml, conf, sig, stdin=b""):
    """Run CHILD in a fresh, empty working directory; its report, how it ended, and every file
    it left there (where core_pattern 'core' puts a core)."""
    cwd = tmp_path / f"cwd-{what}-{sig}"
    cwd.mkdir()
    os.chmod(cwd, 0o777)
    result = subprocess.run([sys.executable, "-c", CHILD, what, str(xml), str(conf), str(int(sig))], cwd=cwd,
                            input=stdin.decode(), capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    left = {}
    for top, _, files in os.walk(cwd):
        for name in files:
            with open(os.path.join(top, name), "rb") as stream:
                left[os.path.relpath(os.path.join(top, name), cwd)] = stream.read()
    return result, left


def core_pattern() -> str:
    with open("/proc/sys/kernel/core_pattern") as stream:
        return stream.read().strip()


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT])
@pytest.mark.parametrize("what", ["hook", "check"])
def test_a_crash_after_opening_sealed_content_leaves_no_core(tmp_path, sealed_domain, what, sig):
    xml, conf = sealed_domain
    result, left = crash(tmp_path, what, xml, conf, sig)
    assert result.returncode == -sig, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["0", "0"]    # not dumpable, no core limit: set by the opening
    assert left == {}                               # no core in the working directory
    assert MARKER not in result.stdout + result.stderr


def test_a_crash_while_attach_holds_the_plaintext_it_is_to_seal_leaves_no_core(tmp_path, sealed_domain):
    """attach --seal --files-json - (what the web console runs) reads its document before it
    connects or seals: core dumps are off before that read, not only once sealing starts."""
    xml, conf = sealed_domain
    document = json.dumps({"files": [{"name": "secret.txt", "content": base64.b64encode(SECRET).decode()}]})
    result, left = crash(tmp_path, "attach-stdin", xml, conf, signal.SIGSEGV, document.encode())
    assert result.returncode == -signal.SIGSEGV, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["0", "0"]
    assert left == {}
    assert MARKER not in result.stdout + result.stderr


def test_the_same_crash_without_sealed_content_keeps_the_process_as_it_was(tmp_path, sealed_domain):
    """The control: a process that opens nothing is dumpable and keeps its core limit; where the
    machine writes cores into the working directory (core_pattern 'core'), it leaves one, so
    the test above would see a core if the opening did not turn them off."""
    xml, conf = sealed_domain
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    result, left = crash(tmp_path, "opens-nothing", xml, conf, signal.SIGSEGV)
    assert result.returncode == -signal.SIGSEGV
    dumpable, limit = result.stdout.split()
    assert dumpable == "1" and int(limit) == hard    # as far as this session's hard limit lets it
    pattern = core_pattern()
    if hard != 0 and pattern.startswith("core") and "/" not in pattern:
        assert left, "core_pattern writes into the working directory, yet no core was left"


def test_every_verb_but_build_turns_core_dumps_off_before_it_reads_its_input():
    """main turns core dumps off for a verb unless the verb says it holds nothing sealed:
    build alone (it seals nothing and opens nothing sealed; its inputs go into the image in
    the clear), so that a verb added later is covered without a word."""
    from payloadhook.cli import VERBS, verb_module
    keeping = [verb for verb in VERBS if not getattr(verb_module(verb), "HOLDS_SEALED", True)]
    assert keeping == ["build"]


def test_the_core_limit_goes_to_zero_and_the_hard_limit_stays():
    """forbid_core_dumps sets RLIMIT_CORE through libc's prlimit64 (seal/nodump.py, not
    ``resource``): the soft limit 0, the hard one as it was, whatever they were before."""
    code = ("import resource; from payloadhook.seal.nodump import forbid_core_dumps, is_dumpable; "
            "resource.setrlimit(resource.RLIMIT_CORE, (1000, 5000)); forbid_core_dumps(); "
            "print(*resource.getrlimit(resource.RLIMIT_CORE), int(is_dumpable()))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "5000", "0"]


def test_a_core_limit_the_kernel_refuses_is_a_seal_error_naming_the_errno(monkeypatch):
    """prlimit64 failing gives the SealError, with the OSError ``resource`` would have raised
    (``[Errno N] message``); nothing is marked done, so the next call tries again."""
    import errno

    from payloadhook.errors import SealError
    from payloadhook.seal import cfunctions, nodump

    def failing(*args):
        return -1
    monkeypatch.setattr(nodump, "_done", [])
    monkeypatch.setattr(cfunctions, "function", lambda *args: failing)
    monkeypatch.setattr(cfunctions, "get_errno", lambda: errno.EPERM)
    with pytest.raises(SealError, match=r"^cannot turn core dumps off before opening sealed content: "
                                        r"\[Errno 1\] Operation not permitted$"):
        nodump.forbid_core_dumps()
    assert nodump._done == []
