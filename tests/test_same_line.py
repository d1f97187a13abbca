"""One rule, one line: the hook, the command and the web console refuse the same input with the
same reason. The hook says it for a domain (``payloadhook: domain NAME: payload 1: <reason>``),
the command for what its arguments name (``payloadhook: <reason>``), the console's
cockpit/validate.js as the administrator types (``<reason>``, before the command says it again).
"""

import base64
import io
import json
import os
import shutil
import subprocess
from xml.sax.saxutils import escape

import pytest

from payloadhook.cli import main
from payloadhook.errors import PayloadError
from payloadhook.hook import run as hook_run
from payloadhook.model import check_label, check_name
from tests.conftest import REPO

#: (type, name): names each medium refuses, one per rule of docs/format.md
NAMES = [
    ("cdrom", "/etc/passwd"), ("cdrom", "a//b"), ("cdrom", "a/../b"), ("cdrom", "./a"), ("cdrom", "a/"),
    ("cdrom", "/".join("d" * 9) + "/f"), ("cdrom", "é" * 128), ("floppy", "bad?name"), ("floppy", "a:b"),
    ("floppy", "trailing."), ("floppy", "x" * 256), ("floppy", "d/" * 131 + "f"), ("cdrom", "tab\there"),
    ("floppy", "line\u2028sep"),
]
#: (type, label): labels each medium refuses
LABELS = [("cdrom", "x" * 33), ("floppy", "TWELVE-CHARS"), ("floppy", "café"), ("floppy", "A+B"), ("floppy", "A.B")]

#: what XML 1.0 cannot carry at all: a domain cannot hold these, so only the command and console say them
_NOT_IN_XML = "\t"


def reason_of_model(check, value, payload_type):
    with pytest.raises(PayloadError) as refused:
        check(value, payload_type)
    return str(refused.value)


def hook_reason(tmp_path, payload_type, name="f", label=None):
    """The hook's prepare on a domain declaring one file ``name`` (content 'x'): its line."""
    images = tmp_path / "images"
    conf = tmp_path / "hook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {images}\n")
    dev, bus, suffix = ("hdc", "ide", "iso") if payload_type == "cdrom" else ("fda", "fdc", "img")
    volume = f"<pl:volume_id>{escape(label)}</pl:volume_id>" if label is not None else ""
    xml = (f"<domain type='qemu'><name>same</name><metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'>"
           f"<pl:payload type='{payload_type}'>{volume}<pl:files><pl:file><pl:name>{escape(name)}</pl:name>"
           f"<pl:content>eA==</pl:content></pl:file></pl:files></pl:payload></pl:payloads></metadata><devices>"
           f"<disk type='file' device='{payload_type}'><source file='{images}/same-{dev}.{suffix}'/>"
           f"<target dev='{dev}' bus='{bus}'/></disk></devices></domain>").encode()
    stderr = io.StringIO()
    status = hook_run(["qemu", "same", "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr,
                      {"PAYLOADHOOK_CONF": str(conf)})
    assert status == 1 and stderr.getvalue().count("\n") == 1
    return stderr.getvalue().removeprefix("payloadhook: domain same: payload 1: ").rstrip("\n")


def command_reason(tmp_path, capsys, payload_type, name="f", label=None):
    """``payloadhook build`` of one file named ``name``, given through --files-json: its line."""
    document = tmp_path / "files.json"
    document.write_text(json.dumps({"files": [{"name": name, "content": base64.b64encode(b"x").decode()}]}))
    argv = ["build", "--type", payload_type, "-o", str(tmp_path / "out.img"), "--files-json", str(document)]
    if label is not None:
        argv += ["--label", label]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("payloadhook: ") and err.count("\n") == 1
    return err.removeprefix("payloadhook: ").rstrip("\n")


@pytest.fixture(scope="module")
def console():
    """cockpit/validate.js run by node: ``console(function, *arguments)`` -> its result."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.fail("node is needed to run the console's validate.js (Debian: nodejs; tests/run-all installs it)")
    script = os.path.join(REPO, "cockpit", "validate.js")

    def call(function, *arguments):
        code = ("globalThis.window = {}; require(process.argv[1]); const [f, args] = JSON.parse(process.argv[2]);"
                "process.stdout.write(JSON.stringify(window.PayloadhookRules[f](...args)));")
        result = subprocess.run([node, "-e", code, script, json.dumps([function, list(arguments)])],
                                capture_output=True, text=True, check=True)
        return json.loads(result.stdout)
    return call


@pytest.mark.parametrize("payload_type,name", NAMES, ids=lambda value: repr(value)[:24])
def test_a_refused_name_is_one_reason_everywhere(tmp_path, capsys, console, payload_type, name):
    reason = reason_of_model(check_name, name, payload_type)
    assert command_reason(tmp_path, capsys, payload_type, name=name) == reason
    assert console("checkName", name, payload_type) == reason
    if not any(ch in name for ch in _NOT_IN_XML):
        assert hook_reason(tmp_path, payload_type, name=name) == reason


@pytest.mark.parametrize("payload_type,label", LABELS, ids=lambda value: repr(value)[:24])
def test_a_refused_label_is_one_reason_everywhere(tmp_path, capsys, console, payload_type, label):
    reason = reason_of_model(check_label, label, payload_type)
    assert command_reason(tmp_path, capsys, payload_type, label=label) == reason
    assert console("checkLabel", label, payload_type) == reason
    assert hook_reason(tmp_path, payload_type, label=label) == reason
