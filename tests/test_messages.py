"""Messages stay one line, bounded and escaped, whatever a domain definer names things:
the hook's refusal and the command's tables."""

import io
import os
import re
import shlex
import subprocess
import sys

import pytest

from payloadhook.hook import run
from tests.conftest import MARKER


@pytest.mark.parametrize("name", ["evil\rpayloadhook: forged", "esc\x1b[2Jcleared", "n" * 5000,
                                  "line\nbreak", "bidi\u202egnp.exe"])
def test_the_hooks_refusal_names_any_domain_in_one_bounded_line(tmp_path, name):
    conf = tmp_path / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {tmp_path}/images\n")
    xml = (b"<domain><name>x</name><metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'>"
           b"<pl:payload type='usb'/></pl:payloads></metadata></domain>")
    stderr = io.StringIO()
    environ = {"PAYLOADHOOK_CONF": str(conf), "PAYLOADHOOK_INDEX": str(tmp_path / "index")}
    assert run(["qemu", name, "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr, environ) == 1
    line = stderr.getvalue()
    assert line.count("\n") == 1 and line.endswith("\n") and "\r" not in line and "\x1b" not in line
    assert "\u202e" not in line and len(line) < 400 and "'usb' is unknown" in line


@pytest.mark.integration
def test_list_escapes_what_definers_chose(libvirtd, workdir):
    name = "ph-list\rforged"
    label = "A&#10;victim    running   cdrom hdc PAYLOAD (1 file)&#13;"
    xml = (f"<domain type='qemu'><name>ph-list&#13;forged</name><memory unit='MiB'>64</memory>"
           f"<os><type arch='x86_64' machine='pc'>hvm</type></os>"
           f"<metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'><pl:payload type='cdrom' "
           f"target='hdc&#10;x'><pl:volume_id>{label}</pl:volume_id><pl:files/></pl:payload></pl:payloads>"
           f"</metadata><devices/></domain>")
    path = workdir / "forge.xml"
    path.write_text(xml)
    libvirtd.virsh("define", str(path))
    try:
        result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", libvirtd.uri, "list"],
                                capture_output=True, text=True, check=True, env={**os.environ, "LC_ALL": "C"})
        rows = [row for row in result.stdout.splitlines() if "ph-list" in row or "victim" in row]
        assert len(rows) == 1, result.stdout
        assert "\\r" in rows[0] and "\\n" in rows[0] and "\r" not in result.stdout
        assert MARKER not in result.stdout
    finally:
        uuid = libvirtd.virsh("domuuid", name).stdout.strip()
        libvirtd.virsh("undefine", uuid)


# -- a command a message suggests: read back by a shell as exactly its words ---------------------

HOSTILE_WORDS = ["vm;touch PWNED", "$(touch PWNED)", "`id`", "a b", "it's", "line\nbreak", "-rf", "", "*"]


@pytest.mark.parametrize("word", HOSTILE_WORDS)
def test_a_suggested_command_is_read_back_as_its_words(word):
    from payloadhook.errors import command, shown
    text = command("payloadhook", "adopt", word)
    assert "\n" not in text and shlex.split(text) == ["payloadhook", "adopt", shown(word, 200)]


def test_the_directory_fixes_suggested_quote_the_path(tmp_path):
    from payloadhook.errors import PayloadhookError
    from payloadhook.seal.keys import _open_dir
    from payloadhook.store.paths import check_owner
    hostile = tmp_path / "d;touch PWNED $(id)"
    hostile.mkdir()
    os.chmod(hostile, 0o777)
    fd = os.open(hostile, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(PayloadhookError) as store:
            check_owner(fd, str(hostile), 0o755)
    finally:
        os.close(fd)
    with pytest.raises(PayloadhookError) as keys:
        _open_dir(str(hostile))
    for message, opener in ((str(store.value), "(fix: "), (str(keys.value), "closed to others (")):
        words = shlex.split(message.partition(opener)[2].rstrip(")"))
        assert words[2] == str(hostile) and words[3] == "&&" and words[-1] == str(hostile), message
        assert ";" not in words and len(words) == 7


def test_no_message_builds_a_command_line_but_through_command():
    """Every printed suggestion of a command with a value in it goes through errors.command."""
    import payloadhook
    root = os.path.dirname(payloadhook.__file__)
    # (``payloadhook serve:`` and the like, a prefix ending in a colon, name no command)
    pattern = re.compile(r"\b(payloadhook [a-z-]+(?!:)|virsh [a-z-]+|chown|chmod|rm|mv)\b[^\"'\n]*\{(?!command\()")
    offenders = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as stream:
                    for number, line in enumerate(stream, 1):
                        if re.search(r"\bf[\"']", line) and pattern.search(line):
                            offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, offenders


@pytest.mark.integration
def test_check_and_show_name_a_hostile_domain_by_uuid_in_the_adopt_they_suggest(libvirtd, workdir):
    from tests.test_ovirt import fixture
    name = "ph-adopt;touch PWNED $(id)`id`"
    uuid = "6b1f0c4e-2d3a-4f5b-9c8d-7e6f5a4b3c2d"
    path = workdir / "hostile-ovirt.xml"
    xml = fixture("current").replace(b"<name>ovirt-vm1</name>", f"<name>{name}</name>".encode())
    path.write_bytes(xml.replace(b"<domain type='kvm'>", b"<domain type='qemu'>"))
    libvirtd.virsh("define", str(path))
    try:
        for verb in ("check", "show"):
            result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", libvirtd.uri, verb, name],
                                    capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
            hints = [line for line in result.stdout.splitlines() if "payloadhook adopt" in line]
            assert hints, result.stdout + result.stderr
            for line in hints:
                suggested = line[line.index("payloadhook adopt"):].split(" makes it")[0]
                assert shlex.split(suggested) == ["payloadhook", "adopt", uuid], line
    finally:
        libvirtd.virsh("undefine", uuid)


@pytest.mark.integration
def test_a_domain_not_found_is_named_escaped(libvirtd):
    result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", libvirtd.uri, "show", "no\rpayloadhook: forged"],
                            capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    assert result.returncode == 3 and result.stderr == "payloadhook: domain 'no\\rpayloadhook: forged' not found\n"
