"""Messages stay one line, bounded and escaped, whatever a domain definer names things:
the hook's refusal and the command's tables."""

import io
import os
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
