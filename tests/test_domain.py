"""Reading payload metadata from domain XML and binding it to disks (CONTRACT.md section 1)."""

import base64
import os

import pytest
from lxml import etree

from payloadhook import has_payload_metadata
from payloadhook.domain import disks, metadata, xmlsafe
from payloadhook.errors import BindingError, PayloadError, XMLError
from payloadhook.model import Payload, PayloadFile

DATA = os.path.join(os.path.dirname(__file__), "data")


def contract_example() -> bytes:
    with open(os.path.join(DATA, "contract-example.xml"), "rb") as stream:
        return stream.read()


def domain(payloads: str, disk_xml: str) -> str:
    return f"""<domain type='qemu'><name>t</name>
      <metadata><pl:payloads xmlns:pl="urn:payloadhook:payload:1">{payloads}</pl:payloads></metadata>
      <devices>{disk_xml}</devices></domain>"""


CD = "<disk type='file' device='cdrom'><source file='/run/payloadhook/t-{0}.iso'/><target dev='{0}' bus='ide'/></disk>"
FD = "<disk type='file' device='floppy'><source file='/run/payloadhook/t-{0}.img'/><target dev='{0}' bus='fdc'/></disk>"
HD = "<disk type='file' device='disk'><source file='/var/lib/libvirt/images/t.qcow2'/><target dev='{0}' bus='virtio'/></disk>"
FILE = "<pl:files><pl:file><pl:name>a.txt</pl:name><pl:content>YQ==</pl:content></pl:file></pl:files>"


def test_contract_example_reads_as_declared():
    bindings = disks.bindings_from_xml(contract_example())
    assert [(b.payload.type, b.disk.target, b.source) for b in bindings] == [
        ("cdrom", "hdc", "/run/payloadhook/win-builder-hdc.iso"),
        ("floppy", "fda", "/run/payloadhook/win-builder-fda.img"),
    ]
    cdrom, floppy = (b.payload for b in bindings)
    assert cdrom.label == "config-2"
    assert cdrom.files == (
        PayloadFile("openstack/latest/meta_data.json", b'{"uuid": "x"}\n'),
        PayloadFile("readme.txt", b"plain UTF-8 text, kept verbatim"),
    )
    assert floppy.label == "PAYLOAD"
    assert floppy.files == (PayloadFile("Unattend.xml", b'<?xml version="1.0"?>\n'),)


def test_no_metadata_means_no_payloads():
    xml = "<domain type='qemu'><name>t</name><devices>" + CD.format("hdc") + "</devices></domain>"
    assert not has_payload_metadata(xml.encode())
    assert disks.bindings_from_xml(xml) == []


def test_other_metadata_is_ignored():
    xml = domain("", CD.format("hdc")).replace("<metadata>", "<metadata><x:y xmlns:x='urn:other'>z</x:y>")
    assert disks.bindings_from_xml(xml) == []


@pytest.mark.parametrize("payloads,disk_xml,expected", [
    (f'<pl:payload type="cdrom">{FILE}</pl:payload>', CD.format("hdc") + HD.format("vda"), ["hdc"]),
    (f'<pl:payload type="floppy">{FILE}</pl:payload>', FD.format("fda") + CD.format("hdc"), ["fda"]),
    (f'<pl:payload type="cdrom" target="hdd">{FILE}</pl:payload>', CD.format("hdc") + CD.format("hdd"), ["hdd"]),
    (f'<pl:payload type="cdrom">{FILE}</pl:payload><pl:payload type="floppy">{FILE}</pl:payload>',
     CD.format("hdc") + FD.format("fda"), ["hdc", "fda"]),
])
def test_binding(payloads, disk_xml, expected):
    assert [b.disk.target for b in disks.bindings_from_xml(domain(payloads, disk_xml))] == expected


@pytest.mark.parametrize("payloads,disk_xml,error,fragment", [
    (f'<pl:payload type="cdrom">{FILE}</pl:payload>', CD.format("hdc") + CD.format("hdd"), BindingError,
     "several cdrom disks (hdc, hdd)"),
    (f'<pl:payload type="cdrom" target="sdz">{FILE}</pl:payload>', CD.format("hdc"), BindingError,
     "no disk has target 'sdz' (disks: hdc)"),
    (f'<pl:payload type="cdrom">{FILE}</pl:payload>', HD.format("vda"), BindingError, "no cdrom disk"),
    (f'<pl:payload type="floppy" target="hdc">{FILE}</pl:payload>', CD.format("hdc"), BindingError,
     "disk hdc is a cdrom, not a floppy"),
    (f'<pl:payload type="cdrom" target="hdc">{FILE}</pl:payload><pl:payload type="cdrom" target="hdc">{FILE}</pl:payload>',
     CD.format("hdc"), BindingError, "already receives another payload"),
    (f'<pl:payload type="cdrom">{FILE}</pl:payload>',
     "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>", BindingError, "needs type='file' and a <source"),
    (f'<pl:payload type="cdrom">{FILE}</pl:payload>',
     "<disk type='block' device='cdrom'><source dev='/dev/sr0'/><target dev='hdc'/></disk>", BindingError, "needs type='file'"),
    (f'<pl:payload type="usb">{FILE}</pl:payload>', CD.format("hdc"), PayloadError, "'usb' is unknown"),
    (f'<pl:payload>{FILE}</pl:payload>', CD.format("hdc"), PayloadError, "no type attribute"),
    ('<pl:payload type="cdrom"><pl:files><pl:file><pl:name>a</pl:name></pl:file></pl:files></pl:payload>',
     CD.format("hdc"), PayloadError, "exactly one <pl:content>"),
    ('<pl:payload type="cdrom"><pl:files><pl:file><pl:content>YQ==</pl:content></pl:file></pl:files></pl:payload>',
     CD.format("hdc"), PayloadError, "has no <pl:name>"),
    ('<pl:payload type="cdrom"><pl:files><pl:file><pl:name>a</pl:name><pl:content encoding="rot13">x</pl:content>'
     '</pl:file></pl:files></pl:payload>', CD.format("hdc"), PayloadError, "'rot13' is unknown"),
    (f'<pl:payload type="cdrom"><pl:volumeid>x</pl:volumeid>{FILE}</pl:payload>', CD.format("hdc"), PayloadError,
     "unexpected element <volumeid>"),
    ('<pl:payload type="cdrom"><pl:files><pl:file><pl:name>../x</pl:name><pl:content>YQ==</pl:content></pl:file>'
     '</pl:files></pl:payload>', CD.format("hdc"), PayloadError, "payload 1: file name '../x' has a '..' component"),
])
def test_binding_errors(payloads, disk_xml, error, fragment):
    with pytest.raises(error) as info:
        disks.bindings_from_xml(domain(payloads, disk_xml))
    assert fragment in str(info.value)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<domain><name>&lol4;</name></domain>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/shadow">]>
<domain><name>t</name><metadata><pl:payloads xmlns:pl="urn:payloadhook:payload:1"><pl:payload type="cdrom">
<pl:files><pl:file><pl:name>a</pl:name><pl:content encoding="text">&xxe;</pl:content></pl:file></pl:files>
</pl:payload></pl:payloads></metadata></domain>"""


@pytest.mark.parametrize("document,fragment", [
    (b"<domain><name>t</name>", "not well-formed"),
    (b"", "not well-formed"),
    (b"<network/>", "root element <network>, not <domain>"),
    (BOMB, "DOCTYPE"),
    (EXTERNAL, "DOCTYPE"),
    (b"<domain>" + b" " * (xmlsafe.MAX_XML_BYTES + 1) + b"</domain>", "over the"),
])
@pytest.mark.parametrize("parse", [xmlsafe.parse_xml, xmlsafe.read_xml], ids=["lxml", "expat"])
def test_hostile_xml_is_refused(document, fragment, parse):
    with pytest.raises(XMLError, match=fragment):
        parse(document)


def test_writer_round_trips_and_keeps_prefixes():
    payloads = [
        Payload(type="cdrom", target="hdc", volume_id="cidata",
                files=(PayloadFile("user-data", b"#cloud-config\n"), PayloadFile("Ünï/ç.bin", bytes(range(256))))),
        Payload(type="floppy", files=(PayloadFile("Unattend.xml", b"<x/>"),)),
    ]
    root = xmlsafe.parse_xml(b"<domain type='qemu'><name>t</name><uuid>u</uuid><devices/></domain>")
    metadata.set_payloads(root, payloads)
    text = xmlsafe.serialize(root)
    assert b"<pl:payloads xmlns:pl=\"urn:payloadhook:payload:1\">" in text
    assert metadata.read_payloads(xmlsafe.parse_xml(text)) == payloads
    # metadata placed after <uuid>, where libvirt puts it
    assert [child.tag for child in root] == ["name", "uuid", "metadata", "devices"]
    metadata.set_payloads(root, [])
    assert root.find("metadata") is None


def test_writer_leaves_other_metadata():
    root = xmlsafe.parse_xml(b"<domain><name>t</name><metadata><x:y xmlns:x='urn:x'/></metadata></domain>")
    metadata.set_payloads(root, [Payload(type="cdrom", files=())])
    metadata.set_payloads(root, [])
    assert etree.tostring(root) == b'<domain><name>t</name><metadata><x:y xmlns:x="urn:x"/></metadata></domain>'


def test_relocate_moves_only_payload_disks():
    xml = contract_example().replace(b"/run/payloadhook/win-builder-hdc.iso", b"/srv/other/win-builder-hdc.iso")
    root = xmlsafe.parse_xml(xml)
    bindings = disks.bindings(root)
    assert disks.relocate_sources(root, bindings, "/run/payloadhook")
    sources = [d.source for d in disks.read_disks(root)]
    assert sources == ["/run/payloadhook/win-builder-hdc.iso", "/run/payloadhook/win-builder-fda.img"]
    assert not disks.relocate_sources(root, bindings, "/run/payloadhook")


def test_base64_whitespace_in_metadata():
    encoded = base64.encodebytes(b"x" * 200).decode()
    xml = domain(f'<pl:payload type="cdrom"><pl:files><pl:file><pl:name>a</pl:name><pl:content>\n{encoded}'
                 f'</pl:content></pl:file></pl:files></pl:payload>', CD.format("hdc"))
    (binding,) = disks.bindings_from_xml(xml)
    assert binding.payload.files[0].content == b"x" * 200


@pytest.mark.parametrize("name", ["contract-example.xml", "plain-domain.xml", "restore-begin-captured.xml"])
def test_the_hooks_reader_and_the_commands_parser_read_alike(name):
    data = open(os.path.join(os.path.dirname(__file__), "data", name), "rb").read()
    fast, full = xmlsafe.read_xml(data), xmlsafe.parse_xml(data)
    assert metadata.read_payloads(fast) == metadata.read_payloads(full)
    assert disks.read_disks(fast) == disks.read_disks(full)
    assert disks.domain_name(fast) == disks.domain_name(full)
