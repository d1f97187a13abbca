"""oVirt's own payload metadata (VDSM's ``ovirt-vm`` devices): read in both forms, adopted into
payloads the hook builds (golden files: tests/data/golden/ovirt-*), named by ``check``, and
every hostile variant refused with one line and the definition left as it was. The fixtures
are written from the structure of VDSM's XML (domain/ovirt.py says where each element comes
from), not copied from real exports. tests/test_ovirt_libvirt.py adopts them on a private
libvirtd and has a guest read the bytes."""

import base64
import os
import subprocess
import sys

import pytest

from payloadhook import xmlsafe
from payloadhook.cli.adopt import adopt
from payloadhook.config import Config
from payloadhook.domain import ovirt
from payloadhook.domain.metadata import decode
from payloadhook.domain.view import read_domain
from payloadhook.errors import PayloadhookError
from tests.conftest import MARKER
from tests.golden import GOLDEN_DIR

CONFIG = Config().replace(image_dir="/run/payloadhook")
META = b'{"uuid": "6b1f0c4e-2d3a-4f5b-9c8d-7e6f5a4b3c2d", "hostname": "ovirt-vm1", "files": []}\n'
USER_DATA = b"#cloud-config\nruncmd: [echo adopted]\n"
HELLO = b"hello from the engine\n"
ANSWER = b'<unattend xmlns="urn:schemas-microsoft-com:unattend"/>\n'


def fixture(case: str) -> bytes:
    with open(os.path.join(GOLDEN_DIR, f"ovirt-{case}-in.xml"), "rb") as stream:
        return stream.read()


def found(xml: bytes):
    return [(item.target, item.form, decode(item.declared)) for item in ovirt.read(xmlsafe.read_xml(xml))]


def test_the_current_form_is_read():
    ((target, form, payload),) = found(fixture("current"))
    assert (target, form, payload.type, payload.label) == ("hdc", "ovirt-vm:payload", "cdrom", "config-2")
    assert {f.name: f.content for f in payload.files} == {"openstack/latest/meta_data.json": META,
                                                         "openstack/latest/user_data": USER_DATA}


def test_the_older_specparams_form_is_read():
    (hdc, fda) = found(fixture("older"))
    assert (hdc[0], hdc[1], hdc[2].type, hdc[2].label) == ("hdc", "specParams/vmPayload", "cdrom", "PAYLOAD")
    assert {f.name: f.content for f in hdc[2].files} == {"notes/hello.txt": HELLO}
    assert (fda[0], fda[2].type, fda[2].volume_id) == ("fda", "floppy", None)
    assert {f.name: f.content for f in fda[2].files} == {"Unattend.xml": ANSWER}


def adopted(xml: bytes, config=CONFIG) -> bytes:
    root = xmlsafe.parse_xml(xml)
    adopt(root, config, seal=False)
    return xmlsafe.serialize(root)


@pytest.mark.parametrize("case", ["current", "older"])
def test_adopt_makes_payloads_the_hook_builds(case, golden):
    out = adopted(fixture(case))
    golden.compare(f"ovirt-{case}", out)
    view = read_domain(out)
    assert ovirt.read(view.root) == ()          # the VDSM copy is gone from the definition
    before = {item.target: decode(item.declared) for item in ovirt.read(xmlsafe.read_xml(fixture(case)))}
    for payload in view.payloads:
        disk = view.disk_for(payload)
        old = before[disk.target]
        assert disk.source == f"/run/payloadhook/{view.name}-{disk.target}.{'iso' if disk.device == 'cdrom' else 'img'}"
        assert (payload.type, payload.volume_id) == (old.type, old.volume_id)
        assert [(f.name, f.content) for f in payload.files] == [(f.name, f.content) for f in old.files]
    assert len(view.payloads) == len(before)


def test_the_rest_of_the_ovirt_metadata_stays():
    root = read_domain(adopted(fixture("current"))).root
    ns = {"ovirt-vm": ovirt.NAMESPACE}
    assert root.findtext("metadata/ovirt-vm:vm/ovirt-vm:clusterVersion", namespaces=ns) == "4.7"
    assert root.findtext("metadata/ovirt-vm:vm/ovirt-vm:device/ovirt-vm:readonly", namespaces=ns) == "true"


def with_(xml: bytes, old: str, new: str) -> bytes:
    assert old.encode() in xml
    return xml.replace(old.encode(), new.encode(), 1)


CURRENT = fixture("current")
B64 = "I2Nsb3VkLWNvbmZpZwpydW5jbWQ6IFtlY2hvIGFkb3B0ZWRdCg=="


@pytest.mark.parametrize("xml,fragment", [
    (with_(CURRENT, 'name="hdc"', 'name="hdd"'), "oVirt payload on 'hdd': the domain has no disk with that target"),
    (with_(CURRENT, 'devtype="disk" name="hdc"', 'name="hdc"'), "without devtype=\"disk\" and a name"),
    (with_(CURRENT, "device='cdrom'", "device='disk'"), "the disk is a disk, not a cdrom or floppy"),
    (with_(CURRENT, '<ovirt-vm:file path="openstack/latest/user_data">', "<ovirt-vm:file>"),
     "an <ovirt-vm:file> has no path attribute"),
    (with_(CURRENT, 'path="openstack/latest/user_data"', 'path="../user_data"'), "'..'"),
    (with_(CURRENT, 'path="openstack/latest/user_data"', 'path="openstack/latest/meta_data.json"'), "duplicates"),
    (with_(CURRENT, B64, "!!notbase64"), "openstack/latest/user_data"),
    (with_(CURRENT, B64, f"<!-- {MARKER} -->{B64}"), "only text is accepted there"),
    (with_(CURRENT, "<ovirt-vm:volId>", "<ovirt-vm:other/><ovirt-vm:volId>"), "unexpected element <other>"),
    (with_(CURRENT, "<ovirt-vm:volId>config-2", "<ovirt-vm:volId>" + "x" * 40),
     "oVirt payload on 'hdc': volume_id 'xxxx"),
    (with_(CURRENT, "</ovirt-vm:payload>", "</ovirt-vm:payload><ovirt-vm:payload/>"), "more than one payload for"),
    (with_(CURRENT, "file='PAYLOAD:'", "file='/var/lib/libvirt/images/installer.iso'"),
     "holds /var/lib/libvirt/images/installer.iso, not an oVirt payload image"),
    (with_(CURRENT, "file='PAYLOAD:'", "file='/run/vdsm/payload/../../etc/shadow'"), "not an oVirt payload image"),
    (with_(with_(CURRENT, "<disk type='file' device='cdrom'>", "<disk type='block' device='cdrom'>"),
           "<source file='PAYLOAD:' startupPolicy='optional'/>", "<source dev='/dev/sr0'/>"),
     "disk hdc is a <disk type='block'>, not a file; adopt leaves it alone"),
    (with_(CURRENT, "<source file='PAYLOAD:' startupPolicy='optional'/>", "<source dev='/dev/sr0'/>"),
     "disk hdc has a source that is not a file; adopt leaves it alone"),
    (with_(with_(CURRENT, "<disk type='file' device='cdrom'>", "<disk type='network' device='cdrom'>"),
           "<source file='PAYLOAD:' startupPolicy='optional'/>", "<source protocol='http' name='x.iso'/>"),
     "is a <disk type='network'>, not a file"),
    (with_(with_(CURRENT, "<disk type='file' device='cdrom'>", "<disk type='volume' device='cdrom'>"),
           "<source file='PAYLOAD:' startupPolicy='optional'/>", "<source pool='p' volume='v'/>"),
     "is a <disk type='volume'>, not a file"),
    (with_(CURRENT, "<ovirt-vm:payload>", "<ovirt-vm:vmPayload>").replace(b"</ovirt-vm:payload>",
                                                                        b"</ovirt-vm:vmPayload>"),
     "has no oVirt payload metadata to adopt"),
])
def test_hostile_ovirt_metadata_is_refused_in_one_line(xml, fragment):
    root = xmlsafe.parse_xml(xml)
    before = xmlsafe.serialize(root)
    with pytest.raises(PayloadhookError) as caught:
        adopt(root, CONFIG, seal=False)
    message = str(caught.value)
    assert fragment in message and "\n" not in message and MARKER not in message
    assert xmlsafe.serialize(root) == before    # refused before any edit: the command defines nothing


@pytest.mark.parametrize("source,vdsm", [
    (None, True), ("PAYLOAD:", True), ("/run/vdsm/payload/u.h.img", True), ("/var/run/vdsm/payload/u.h.img", True),
    ("/run/vdsm/payload/", False), ("/run/vdsm/payload/a/b.img", False), ("/run/vdsm/payload/..", False),
    ("/run/vdsm/payloadx/u.img", False), ("PAYLOAD:x", False), ("/var/lib/libvirt/images/a.iso", False),
])
def test_which_disk_sources_are_ovirts(source, vdsm):
    assert ovirt.is_vdsm_source(source) is vdsm


def test_limits_hold_before_anything_is_decoded():
    small = CONFIG.replace(max_file_size=16)
    with pytest.raises(PayloadhookError, match="max_file_size"):
        adopt(xmlsafe.parse_xml(CURRENT), small, seal=False)


def test_a_disk_that_already_has_a_payload_is_not_taken_over():
    once = adopted(CURRENT)
    again = with_(once, "</metadata>", "<ovirt-vm:vm xmlns:ovirt-vm='http://ovirt.org/vm/1.0'><ovirt-vm:device "
                  f"devtype='disk' name='hdc'><ovirt-vm:payload><ovirt-vm:file path='x'>{B64}</ovirt-vm:file>"
                  "</ovirt-vm:payload></ovirt-vm:device></ovirt-vm:vm></metadata>")
    with pytest.raises(PayloadhookError, match="disk hdc already has a payload the hook builds"):
        adopt(xmlsafe.parse_xml(again), CONFIG, seal=False)


def run(argv):
    return subprocess.run([sys.executable, "-m", "payloadhook.cli", *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LC_ALL": "C"})


@pytest.mark.parametrize("case,lines", [
    ("current", ["oVirt payload (ovirt-vm:payload) on hdc: cdrom, label config-2, 2 files"]),
    ("older", ["oVirt payload (specParams/vmPayload) on hdc: cdrom, label PAYLOAD, 1 file",
               "oVirt payload (specParams/vmPayload) on fda: floppy, label PAYLOAD, 1 file"]),
])
def test_check_names_the_ovirt_payload_and_what_to_do(tmp_path, case, lines):
    path = tmp_path / "domain.xml"
    path.write_bytes(fixture(case))
    result = run(["check", str(path)])
    assert result.returncode == 1, result.stderr
    for line in lines:
        assert line + "; the hook does not build it: define the domain and run 'payloadhook adopt" in result.stdout
    path.write_bytes(adopted(fixture(case)))
    result = run(["check", str(path)])
    assert result.returncode == 0 and "oVirt" not in result.stdout, result.stdout


def test_the_adopted_bytes_are_the_base64_oVirt_held():
    payload = read_domain(adopted(CURRENT)).payloads[0]
    assert {f.name: base64.b64encode(f.content).decode() for f in payload.files}["openstack/latest/user_data"] == B64


def test_a_namespace_spelled_with_a_character_reference_is_read_all_the_same():
    spelled = CURRENT.replace(b"xmlns:ovirt-vm='http://ovirt.org/vm/1.0'", b"xmlns:ovirt-vm='&#104;ttp://ovirt.org/vm/1.0'")
    assert spelled != CURRENT and ovirt.NAMESPACE.encode() not in spelled
    assert [item.target for item, _ in ovirt.payloads_of(spelled, CONFIG)] == ["hdc"]


def test_check_of_a_file_sees_an_ovirt_namespace_spelled_with_a_character_reference(tmp_path):
    path = tmp_path / "charref.xml"
    path.write_bytes(CURRENT.replace(b"xmlns:ovirt-vm='http://ovirt.org/vm/1.0'",
                                     b"xmlns:ovirt-vm='&#104;ttp://ovirt.org/vm/1.0'"))
    result = run(["check", str(path)])
    assert result.returncode == 1 and "oVirt payload (ovirt-vm:payload) on hdc" in result.stdout, result


def test_the_finished_definition_is_checked_over_all_its_payloads():
    """adopt's config.check sees the oVirt payloads alone; the finished definition, checked as
    the hook will (ops.define.check_finished), counts the payloads it already had too."""
    from payloadhook.ops.define import check_finished
    existing = ("<pl:payloads xmlns:pl='urn:payloadhook:payload:1'><pl:payload type='cdrom' target='hdd'><pl:files>"
                "<pl:file><pl:name>a</pl:name><pl:content>aGk=</pl:content></pl:file></pl:files></pl:payload>"
                "</pl:payloads>")
    disk = ("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/run/payloadhook/"
            "ovirt-vm1-hdd.iso'/><target dev='hdd' bus='ide'/><readonly/></disk>")
    xml = with_(with_(CURRENT, "<ovirt-tune:qos/>", "<ovirt-tune:qos/>" + existing), "</devices>", disk + "</devices>")
    root = xmlsafe.parse_xml(xml)
    one = CONFIG.replace(max_payloads=1)
    adopt(root, one, seal=False)
    check_finished(xmlsafe.serialize(root), CONFIG)
    with pytest.raises(PayloadhookError, match="max_payloads"):
        check_finished(xmlsafe.serialize(root), one)
