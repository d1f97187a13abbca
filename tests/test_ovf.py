"""Payloads to and from OVF: round trips, merges into OVFs of other dialects, hostile OVFs."""

import os
import subprocess

import pytest
from lxml import etree

from payloadhook import ovf
from payloadhook.domain import disks, metadata, xmlsafe
from payloadhook.cli import main
from payloadhook.errors import PayloadError, XMLError
from payloadhook.model import Payload, PayloadFile
from tests.conftest import MARKER, REPO

DATA = os.path.join(REPO, "tests", "data")
FIXTURES = [os.path.join(DATA, "ovf", name) for name in ("ovirt-export.ovf", "vmware-style.ovf")]
PAYLOADS = [
    Payload(type="cdrom", target="hdc", volume_id="config-2", files=(
        PayloadFile("openstack/latest/meta_data.json", b'{"uuid": "' + MARKER.encode() + b'"}'),
        PayloadFile("Ünïcödé/日本語.bin", bytes(range(256)) * 10))),
    Payload(type="floppy", target="fda", files=(PayloadFile("Unattend.xml", b"<unattend/>\n"),)),
]


def domain_file(tmp_path, payloads=PAYLOADS):
    root = xmlsafe.parse_xml(open(os.path.join(DATA, "contract-example.xml"), "rb").read())
    metadata.set_payloads(root, payloads)
    path = tmp_path / "domain.xml"
    path.write_bytes(xmlsafe.serialize(root))
    return path


def test_round_trip_with_content_is_byte_identical(tmp_path, capsys):
    source = domain_file(tmp_path)
    out = tmp_path / "vm.ovf"
    assert main(["ovf", "export", str(source), "-o", str(out), "--with-content"]) == 0
    assert ovf.read_payloads(out.read_bytes()) == PAYLOADS
    target = tmp_path / "target.xml"
    target.write_text("<domain type='qemu'><name>copy</name><devices/></domain>")
    assert main(["ovf", "import", str(out), "-o", str(target)]) == 0
    imported = metadata.read_payloads(xmlsafe.parse_xml(target.read_bytes()))
    assert [(p.type, p.target, p.volume_id, p.files) for p in imported] == \
        [(p.type, p.target, p.volume_id, p.files) for p in PAYLOADS]
    assert [d.source for d in disks.read_disks(xmlsafe.parse_xml(target.read_bytes()))] == \
        ["/run/payloadhook/copy-hdc.iso", "/run/payloadhook/copy-fda.img"]
    assert MARKER not in capsys.readouterr().out


def test_content_is_left_out_by_default(tmp_path, capsys):
    out = tmp_path / "vm.ovf"
    assert main(["ovf", "export", str(domain_file(tmp_path)), "-o", str(out)]) == 0
    text = out.read_bytes()
    assert MARKER.encode() not in text and b"<content" not in text
    assert b"<sha256>" in text
    with pytest.raises(PayloadError, match=r"no content for 'openstack/latest/meta_data.json', "
                                           r"'Ünïcödé/日本語.bin', 'Unattend.xml'; give --files-from DIR"):
        ovf.read_payloads(text)
    capsys.readouterr()
    target = tmp_path / "t.xml"
    target.write_text("<domain><name>t</name><devices/></domain>")
    assert main(["ovf", "import", str(out), "-o", str(target)]) == 1
    assert "give --files-from DIR" in capsys.readouterr().err


def test_files_from_supplies_content_and_is_checked(tmp_path):
    out = tmp_path / "vm.ovf"
    main(["ovf", "export", str(domain_file(tmp_path)), "-o", str(out)])
    files = tmp_path / "files"
    for payload in PAYLOADS:
        for item in payload.files:
            (files / item.name).parent.mkdir(parents=True, exist_ok=True)
            (files / item.name).write_bytes(item.content)
    assert ovf.read_payloads(out.read_bytes(), str(files)) == PAYLOADS
    (files / "Unattend.xml").write_bytes(b"<tampered/>\n")
    with pytest.raises(PayloadError, match="SHA-256 differs"):
        ovf.read_payloads(out.read_bytes(), str(files))


def without_payload_items(data: bytes) -> bytes:
    root = etree.fromstring(data)
    for item in list(root.iter()):
        if isinstance(item.tag, str) and item.xpath("*[local-name()='SpecParams']/*[local-name()='vmPayload']"):
            previous = item.getprevious()
            previous.tail = item.tail        # the whitespace that followed the removed item
            item.getparent().remove(item)
    return etree.tostring(root, method="c14n")


@pytest.mark.parametrize("fixture", FIXTURES, ids=os.path.basename)
def test_merge_leaves_everything_else_unchanged(tmp_path, fixture):
    original = open(fixture, "rb").read()
    merged = ovf.merge(original, PAYLOADS, with_content=True)
    assert without_payload_items(merged) == etree.tostring(etree.fromstring(original), method="c14n")
    assert ovf.read_payloads(merged) == PAYLOADS
    # merging again replaces, never duplicates
    assert ovf.merge(merged, PAYLOADS, with_content=True) == merged
    # the new items are in the dialect's own Item element, after the last one
    section = ovf.hardware_section(etree.fromstring(merged))
    items = [e for e in section if isinstance(e.tag, str) and etree.QName(e).localname == "Item"]
    assert [etree.QName(i).namespace for i in items[-2:]] == [etree.QName(items[0]).namespace] * 2
    assert [i.xpath("string(*[local-name()='Device'])") for i in items[-2:]] == ["cdrom", "floppy"]


def test_merge_command_in_place(tmp_path):
    into = tmp_path / "appliance.ovf"
    into.write_bytes(open(FIXTURES[1], "rb").read())
    assert main(["ovf", "merge", str(domain_file(tmp_path)), str(into)]) == 0
    assert b"<vmPayload>" in into.read_bytes() and b"<content" not in into.read_bytes()


def test_stylesheet_lists_payload_files_without_content(tmp_path):
    merged = tmp_path / "m.ovf"
    merged.write_bytes(ovf.merge(open(FIXTURES[0], "rb").read(), PAYLOADS, with_content=True))
    xsl = os.path.join(REPO, "xsl", "ovf-payloads.xsl")
    by_xsltproc = subprocess.run(["xsltproc", xsl, str(merged)], capture_output=True, check=True).stdout.decode()
    by_lxml = str(etree.XSLT(etree.parse(xsl))(etree.parse(str(merged))))
    assert by_xsltproc == by_lxml
    lines = [line.split("\t") for line in by_xsltproc.splitlines()]
    assert [(l[0], l[1], l[5], l[6]) for l in lines] == [
        ("cdrom", "hdc", "openstack/latest/meta_data.json", "content"), ("cdrom", "hdc", "Ünïcödé/日本語.bin", "content"),
        ("floppy", "fda", "Unattend.xml", "content")]
    assert MARKER not in by_xsltproc


def hostile(item_files: str) -> bytes:
    return f"""<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
      xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
      <ovf:VirtualSystem ovf:id="x"><ovf:VirtualHardwareSection><ovf:Item>
      <rasd:ResourceType>15</rasd:ResourceType><Device>cdrom</Device>
      <SpecParams><vmPayload>{item_files}</vmPayload></SpecParams>
      </ovf:Item></ovf:VirtualHardwareSection></ovf:VirtualSystem></ovf:Envelope>""".encode()


@pytest.mark.parametrize("document,error,fragment", [
    (b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><e>&b;</e>', XMLError, "DOCTYPE"),
    (b'<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/shadow">]><e>&x;</e>', XMLError, "DOCTYPE"),
    (b"<domain/>", XMLError, "expected an OVF 1.x or 2.x Envelope"),
    (b"<Envelope xmlns='http://schemas.dmtf.org/ovf/envelope/1'/>", XMLError, "no VirtualHardwareSection"),
    (hostile("<file><path>../../etc/cron.d/x</path><content>YQ==</content></file>"), PayloadError, "'..' component"),
    (hostile("<file><path>/etc/passwd</path><content>YQ==</content></file>"), PayloadError, "absolute"),
    (hostile("<file><path>a</path><content>!!</content></file>"), PayloadError, "not valid base64"),
    (hostile("<file><path>a</path><size>2</size><content>YQ==</content></file>"), PayloadError, "OVF records 2"),
])
def test_hostile_ovf_is_refused(document, error, fragment):
    with pytest.raises(error, match=fragment):
        ovf.read_payloads(document)


def test_traversal_with_files_from_never_reads_outside(tmp_path):
    with pytest.raises(PayloadError, match="not a relative path"):
        ovf.read_payloads(hostile("<file><path>../../etc/shadow</path></file>"), str(tmp_path))


def test_oversized_content_is_refused_by_the_limits(tmp_path, capsys):
    conf = tmp_path / "c.conf"
    conf.write_text("[payloadhook]\nmax_file_size = 1K\n")
    big = [Payload(type="cdrom", target="hdc", files=(PayloadFile("big", b"x" * 4096),))]
    path = tmp_path / "big.ovf"
    path.write_bytes(ovf.export(big, "x", with_content=True))
    target = tmp_path / "t.xml"
    target.write_text("<domain><name>t</name><devices/></domain>")
    os.environ["PAYLOADHOOK_CONF"] = str(conf)
    try:
        assert main(["ovf", "import", str(path), "-o", str(target)]) == 1
    finally:
        del os.environ["PAYLOADHOOK_CONF"]
    assert "over max_file_size (1024)" in capsys.readouterr().err
