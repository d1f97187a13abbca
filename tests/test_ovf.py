"""Payloads to and from OVF: round trips, merges into OVFs of other dialects, hostile OVFs."""

import os
import subprocess

import pytest
from lxml import etree

from payloadhook import ovf, xmlsafe
from payloadhook.cli import main
from payloadhook.domain import metadata
from payloadhook.domain.view import view_of
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
    assert [d.source for d in view_of(xmlsafe.parse_xml(target.read_bytes())).disks] == \
        ["/run/payloadhook/copy-hdc.iso", "/run/payloadhook/copy-fda.img"]
    assert MARKER not in capsys.readouterr().out


def test_content_is_left_out_by_default_and_so_are_digests(tmp_path, capsys):
    """Without content an export names files and gives their sizes: a SHA-256 of a short
    secret gives it away, so digests come only with --with-digests."""
    out = tmp_path / "vm.ovf"
    assert main(["ovf", "export", str(domain_file(tmp_path)), "-o", str(out)]) == 0
    assert "(names and sizes; no content)" in capsys.readouterr().out
    text = out.read_bytes()
    assert MARKER.encode() not in text and b"<content" not in text and b"<sha256>" not in text
    assert b"<size>" in text
    for payload in PAYLOADS:
        for item in payload.files:
            assert item.sha256.encode() not in text
    with pytest.raises(PayloadError, match=r"no content for 'openstack/latest/meta_data.json', "
                                           r"'Ünïcödé/日本語.bin', 'Unattend.xml'; give --files-from DIR"):
        ovf.read_payloads(text)
    target = tmp_path / "t.xml"
    target.write_text("<domain><name>t</name><devices/></domain>")
    assert main(["ovf", "import", str(out), "-o", str(target)]) == 1
    assert "give --files-from DIR" in capsys.readouterr().err
    assert main(["ovf", "export", str(domain_file(tmp_path)), "-o", str(out), "--with-digests"]) == 0
    assert all(item.sha256.encode() in out.read_bytes() for p in PAYLOADS for item in p.files)
    assert b"<content" not in out.read_bytes()


def files_dir(tmp_path):
    files = tmp_path / "files"
    for payload in PAYLOADS:
        for item in payload.files:
            (files / item.name).parent.mkdir(parents=True, exist_ok=True)
            (files / item.name).write_bytes(item.content)
    return files


def import_into(tmp_path, ovf_path, *options):
    target = tmp_path / "t.xml"
    target.write_text("<domain><name>t</name><devices/></domain>")
    status = main(["ovf", "import", str(ovf_path), "-o", str(target), *map(str, options)])
    return status, target


def imported(target):
    return [(p.type, p.target, p.volume_id, p.files) for p in metadata.read_payloads(xmlsafe.parse_xml(target.read_bytes()))]


def test_files_from_supplies_content_and_is_checked(tmp_path, capsys):
    out = tmp_path / "vm.ovf"
    files = files_dir(tmp_path)
    expected = [(p.type, p.target, p.volume_id, p.files) for p in PAYLOADS]
    for digests in ([], ["--with-digests"]):
        main(["ovf", "export", str(domain_file(tmp_path)), "-o", str(out), *digests])
        status, target = import_into(tmp_path, out, "--files-from", files)
        assert status == 0 and imported(target) == expected
    (files / "Unattend.xml").write_bytes(b"<tampered/>\n")     # same size, other bytes
    assert import_into(tmp_path, out, "--files-from", files)[0] == 1
    assert "SHA-256 differs" in capsys.readouterr().err
    main(["ovf", "export", str(domain_file(tmp_path)), "-o", str(out)])
    (files / "Unattend.xml").write_bytes(b"<tampered-and-longer/>\n")
    assert import_into(tmp_path, out, "--files-from", files)[0] == 1
    assert "but the OVF records 12" in capsys.readouterr().err


def test_a_file_declaring_neither_size_nor_digest_needs_allow_unverified(tmp_path, capsys):
    document = tmp_path / "bare.ovf"
    document.write_bytes(hostile("<file><path>user-data</path></file>"))
    files = tmp_path / "files"
    files.mkdir()
    (files / "user-data").write_bytes(b"#cloud-config\n")
    assert import_into(tmp_path, document, "--files-from", files)[0] == 1
    assert "declares neither size nor SHA-256" in capsys.readouterr().err
    status, target = import_into(tmp_path, document, "--files-from", files, "--allow-unverified")
    assert status == 0 and imported(target)[0][3] == (PayloadFile("user-data", b"#cloud-config\n"),)


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


@pytest.mark.parametrize("path", ["../../etc/shadow", "/etc/shadow", "a/./b", "a/../../b", "a&#9;b"])
def test_traversal_with_files_from_never_reads_outside(tmp_path, capsys, path):
    document = tmp_path / "x.ovf"
    document.write_bytes(hostile(f"<file><path>{path}</path><size>1</size></file>"))
    (tmp_path / "files").mkdir()
    assert import_into(tmp_path, document, "--files-from", tmp_path / "files")[0] == 1
    assert "file name" in capsys.readouterr().err


def test_oversized_content_is_refused_by_the_limits(tmp_path, capsys, monkeypatch):
    conf = tmp_path / "c.conf"
    conf.write_text("[payloadhook]\nmax_file_size = 1K\n")
    big = [Payload(type="cdrom", target="hdc", files=(PayloadFile("big", b"x" * 4096),))]
    path = tmp_path / "big.ovf"
    path.write_bytes(ovf.export(big, "x", with_content=True))
    target = tmp_path / "t.xml"
    target.write_text("<domain><name>t</name><devices/></domain>")
    monkeypatch.setenv("PAYLOADHOOK_CONF", str(conf))
    assert main(["ovf", "import", str(path), "-o", str(target)]) == 1
    assert "over max_file_size (1024)" in capsys.readouterr().err


# -- merge changes only the payload items -----------------------------------------------------

STANDALONE = os.path.join(DATA, "ovf", "standalone-cdata.ovf")


def test_merge_keeps_the_prolog_standalone_and_cdata():
    original = open(STANDALONE, "rb").read()
    merged = ovf.merge(original, PAYLOADS)
    prolog = original[:original.index(b"<Envelope")]
    assert merged.startswith(prolog)                               # declaration, standalone="yes", comment
    assert b"<![CDATA[Use <b>bold</b> & keep this CDATA]]>" in merged
    assert merged.endswith(b"</Envelope>\n")
    assert without_payload_items(merged) == etree.tostring(etree.fromstring(original), method="c14n")
    assert ovf.merge(merged, PAYLOADS) == merged


@pytest.mark.parametrize("fixture", [FIXTURES[1], STANDALONE], ids=os.path.basename)
def test_merge_puts_nothing_into_a_vendors_default_namespace(fixture):
    """Under a default namespace the new Item is the dialect's own element, and its oVirt
    children stay unqualified, as oVirt writes them (xmlns="")."""
    merged = ovf.merge(open(fixture, "rb").read(), PAYLOADS, with_content=True)
    section = ovf.hardware_section(etree.fromstring(merged))
    for item in section:
        payload = item.xpath("*[local-name()='SpecParams']/*[local-name()='vmPayload']") \
            if isinstance(item.tag, str) else []
        if not payload:
            continue
        assert etree.QName(item).namespace == ovf.OVF_NAMESPACES[0]
        new = [e for e in item.iter() if isinstance(e.tag, str) and e is not item
               and etree.QName(e).namespace != ovf.RASD]
        assert new and all(etree.QName(e).namespace is None for e in new)
    assert ovf.read_payloads(merged) == PAYLOADS


# -- output modes --------------------------------------------------------------------------

def mode_of(path):
    return os.stat(path).st_mode & 0o7777


def test_outputs_keep_a_files_mode_and_owner_and_new_content_is_0600(tmp_path):
    source = domain_file(tmp_path)
    # merge in place: a 0640 OVF of root's with another group stays so
    into = tmp_path / "private.ovf"
    into.write_bytes(open(FIXTURES[0], "rb").read())
    into.chmod(0o640)
    os.chown(into, 0, 65534)
    assert main(["ovf", "merge", str(source), str(into), "--with-content"]) == 0
    assert (mode_of(into), into.stat().st_uid, into.stat().st_gid) == (0o640, 0, 65534)
    # another user's file is never written over (tests/test_hostile_cli.py has the attacks)
    os.chown(into, 65534, 65534)
    assert main(["ovf", "merge", str(source), str(into), "--with-content"]) == 1
    # export --with-content into a new file: 0600; onto an existing 0640 file: 0640
    fresh = tmp_path / "fresh.ovf"
    assert main(["ovf", "export", str(source), "-o", str(fresh), "--with-content"]) == 0
    assert mode_of(fresh) == 0o600
    fresh.chmod(0o640)
    assert main(["ovf", "export", str(source), "-o", str(fresh), "--with-content"]) == 0
    assert mode_of(fresh) == 0o640
    # import -o edits a 0600 domain XML file in place, keeping it 0600
    document = tmp_path / "vm.ovf"
    main(["ovf", "export", str(source), "-o", str(document), "--with-content"])
    target = tmp_path / "t.xml"
    target.write_text("<domain><name>t</name><devices/></domain>")
    target.chmod(0o600)
    assert main(["ovf", "import", str(document), "-o", str(target)]) == 0
    assert mode_of(target) == 0o600


# -- ovf show ------------------------------------------------------------------------------

def test_show_lists_exactly_what_import_takes(tmp_path, capsys):
    merged = tmp_path / "m.ovf"
    merged.write_bytes(ovf.merge(open(FIXTURES[0], "rb").read(), PAYLOADS, with_content=True))
    assert main(["ovf", "show", str(merged)]) == 0
    out = capsys.readouterr().out
    assert MARKER not in out
    assert "cdrom on hdc, label config-2, 2 files, 2 with content in the OVF" in out
    assert "floppy on fda, label PAYLOAD (default), 1 file, 1 with content in the OVF" in out
    for payload in PAYLOADS:
        for item in payload.files:
            assert f"{item.size:>4}  {item.sha256}  inline    {item.name}" in out
    # the stylesheet, on a trusted copy, lists the same files in the same order
    xsl = os.path.join(REPO, "xsl", "ovf-payloads.xsl")
    rows = [line.split("\t") for line in subprocess.run(["xsltproc", xsl, str(merged)], capture_output=True,
                                                          check=True).stdout.decode().splitlines()]
    declared = [(p.type, f.name, str(f.declared_size), f.sha256) for p in ovf.read_declared(merged.read_bytes())
                for f in p.files]
    assert [(r[0], r[5], r[3], r[4]) for r in rows] == declared


def test_show_escapes_what_the_ovf_says(tmp_path, capsys):
    document = tmp_path / "x.ovf"
    document.write_bytes(hostile("<file><path>a&#10;payloadhook: forged line</path><size>1</size></file>"
                                 "<volId>x&#13;y</volId>"))
    assert main(["ovf", "show", str(document)]) == 0
    out = capsys.readouterr().out
    assert "a\\npayloadhook: forged line" in out and "\npayloadhook" not in out and "\r" not in out


def test_show_refuses_what_import_refuses(tmp_path, capsys):
    document = tmp_path / "x.ovf"
    document.write_bytes(b'<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/shadow">]><e>&x;</e>')
    assert main(["ovf", "show", str(document)]) == 1
    assert "DOCTYPE" in capsys.readouterr().err


def test_stylesheet_is_documented_for_trusted_documents_only():
    header = open(os.path.join(REPO, "xsl", "ovf-payloads.xsl")).read().split("-->")[0]
    assert "FOR TRUSTED DOCUMENTS ONLY" in header and "payloadhook ovf show" in header
    assert "external" in header and "entities" in header


# -- bounded import ------------------------------------------------------------------------

def many_items(count: int, files_per_item: int = 1) -> bytes:
    files = "".join(f"<file><path>f{n}</path><content>YQ==</content></file>" for n in range(files_per_item))
    items = "".join(f"<ovf:Item><rasd:ResourceType>15</rasd:ResourceType><Device>cdrom</Device>"
                    f"<SpecParams><vmPayload><target>x{n}</target>{files}</vmPayload></SpecParams></ovf:Item>"
                    for n in range(count))
    return f"""<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
      xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
      <ovf:VirtualSystem ovf:id="x"><ovf:VirtualHardwareSection>{items}
      </ovf:VirtualHardwareSection></ovf:VirtualSystem></ovf:Envelope>""".encode()


@pytest.mark.parametrize("document,fragment", [
    (lambda: many_items(5000), "over max_payloads (8)"),
    (lambda: many_items(1, 20000), "over max_files (10000)"),
])
def test_thousands_of_items_are_refused_at_once_by_the_limits(tmp_path, capsys, document, fragment):
    import time
    path = tmp_path / "many.ovf"
    path.write_bytes(document())
    started = time.monotonic()
    assert import_into(tmp_path, path)[0] == 1
    assert time.monotonic() - started < 5
    assert fragment in capsys.readouterr().err


def test_payloads_without_a_device_travel_as_other_items():
    """network and fwcfg payloads: CIM ResourceType 1 (Other), told apart by their Device."""
    payloads = [Payload("network", (PayloadFile("user-data", b"#cloud-config\n"), PayloadFile("meta-data", b"{}"))),
                Payload("fwcfg", (PayloadFile("opt/com.coreos/config", b'{"ignition": {"version": "3.4.0"}}'),))]
    data = ovf.export(payloads, "vm1", with_content=True)
    items = etree.fromstring(data).findall(".//{*}Item")
    assert [(i.findtext("{*}ResourceType"), i.findtext("Device")) for i in items] == [("1", "network"), ("1", "fwcfg")]
    assert [(p.type, p.target, p.volume_id, p.files) for p in ovf.read_payloads(data)] == \
        [(p.type, None, None, p.files) for p in payloads]
