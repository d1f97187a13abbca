"""contrib/terraform/payloads.xsl.tftpl, the XSLT a terraform-provider-libvirt domain uses to
carry a payload (docs/terraform.md): rendered as Terraform's templatefile() renders it, applied
by xsltproc to domain XML as the provider writes it, then read back as the hook reads it."""

import base64
import os
import re
import subprocess
import sys

from lxml import etree

from tests.conftest import REPO

TEMPLATE = os.path.join(REPO, "contrib", "terraform", "payloads.xsl.tftpl")
DOMAIN = os.path.join(REPO, "tests", "data", "terraform", "domain.xml")
PL = "{urn:payloadhook:payload:1}"
META = b"instance-id: web1\nlocal-hostname: web1\n"
USER = b"#cloud-config\npackages: [nginx]\n"


def render(**variables):
    """templatefile(): each ${name} replaced; a template naming a variable not given fails."""
    with open(TEMPLATE) as stream:
        text = stream.read()
    return re.sub(r"\$\{(\w+)\}", lambda match: variables[match.group(1)], text)


def transform(tmp_path, xml: bytes, target="hdc", bus="ide") -> bytes:
    xsl = tmp_path / "payloads.xsl"
    xsl.write_text(render(target=target, bus=bus, meta_data=base64.b64encode(META).decode(),
                          user_data=base64.b64encode(USER).decode()))
    source = tmp_path / "in.xml"
    source.write_bytes(xml)
    return subprocess.run(["xsltproc", str(xsl), str(source)], capture_output=True, check=True).stdout


def check(tmp_path, xml: bytes) -> subprocess.CompletedProcess:
    (tmp_path / "out.xml").write_bytes(xml)
    return subprocess.run([sys.executable, "-m", "payloadhook.cli", "check", str(tmp_path / "out.xml")],
                          capture_output=True, text=True, cwd=REPO)


def test_adds_the_payload_and_its_cdrom_to_the_providers_xml(tmp_path):
    out = transform(tmp_path, open(DOMAIN, "rb").read())
    root = etree.fromstring(out)
    (payload,) = root.findall(f"metadata/{PL}payloads/{PL}payload")
    assert (payload.get("type"), payload.get("target"), payload.findtext(f"{PL}volume_id")) == ("cdrom", "hdc", "cidata")
    files = {f.findtext(f"{PL}name"): base64.b64decode(f.findtext(f"{PL}content")) for f in payload.iter(f"{PL}file")}
    assert files == {"meta-data": META, "user-data": USER}
    (cdrom,) = root.findall("devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("file") == "/run/payloadhook/web1-hdc.iso"
    assert (cdrom.find("target").get("dev"), cdrom.find("target").get("bus")) == ("hdc", "ide")
    # the provider's own devices are all still there
    assert [d.tag for d in root.find("devices")] == ["disk", "interface", "console", "graphics", "channel", "disk"]
    result = check(tmp_path, out)
    assert (result.returncode, result.stderr) == (0, "")


def test_keeps_other_metadata_and_replaces_a_payload_and_disk_of_an_earlier_run(tmp_path):
    once = transform(tmp_path, open(DOMAIN, "rb").read().replace(
        b"<name>web1</name>", b"<name>web1</name><metadata><app:info xmlns:app='urn:example:app'/></metadata>"),
        target="sdb", bus="sata")
    twice = etree.fromstring(transform(tmp_path, once, target="sdb", bus="sata"))
    assert twice.find("metadata/{urn:example:app}info") is not None
    assert len(twice.findall(f"metadata/{PL}payloads")) == 1
    (cdrom,) = twice.findall("devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("file") == "/run/payloadhook/web1-sdb.iso"
    result = check(tmp_path, etree.tostring(twice))
    assert (result.returncode, result.stderr) == (0, "")


def test_a_template_variable_left_out_is_an_error():
    try:
        render(target="hdc", bus="ide", meta_data="")
    except KeyError as missing:
        assert missing.args == ("user_data",)
    else:
        raise AssertionError("rendered without user_data")
