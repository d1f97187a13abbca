"""Reading payload metadata from domain XML and binding it to disks (docs/format.md)."""

import base64
import os

import pytest
from lxml import etree

from payloadhook import has_payload_metadata, xmlsafe
from payloadhook.domain import metadata
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
    bindings = read_domain(contract_example(), editable=False).bindings()
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
    assert list(read_domain(xml, editable=False).bindings()) == []


def test_other_metadata_is_ignored():
    xml = domain("", CD.format("hdc")).replace("<metadata>", "<metadata><x:y xmlns:x='urn:other'>z</x:y>")
    assert list(read_domain(xml, editable=False).bindings()) == []


@pytest.mark.parametrize("payloads,disk_xml,expected", [
    (f'<pl:payload type="cdrom">{FILE}</pl:payload>', CD.format("hdc") + HD.format("vda"), ["hdc"]),
    (f'<pl:payload type="floppy">{FILE}</pl:payload>', FD.format("fda") + CD.format("hdc"), ["fda"]),
    (f'<pl:payload type="cdrom" target="hdd">{FILE}</pl:payload>', CD.format("hdc") + CD.format("hdd"), ["hdd"]),
    (f'<pl:payload type="cdrom">{FILE}</pl:payload><pl:payload type="floppy">{FILE}</pl:payload>',
     CD.format("hdc") + FD.format("fda"), ["hdc", "fda"]),
])
def test_binding(payloads, disk_xml, expected):
    assert [b.disk.target for b in read_domain(domain(payloads, disk_xml), editable=False).bindings()] == expected


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
        read_domain(domain(payloads, disk_xml), editable=False).bindings()
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
    moves = plan_relocate(view_of(root), "/run/payloadhook")
    assert moves
    apply_relocate(moves)
    sources = [d.source for d in view_of(root).disks]
    assert sources == ["/run/payloadhook/win-builder-hdc.iso", "/run/payloadhook/win-builder-fda.img"]
    assert not plan_relocate(view_of(root), "/run/payloadhook")


def test_base64_whitespace_in_metadata():
    encoded = base64.encodebytes(b"x" * 200).decode()
    xml = domain(f'<pl:payload type="cdrom"><pl:files><pl:file><pl:name>a</pl:name><pl:content>\n{encoded}'
                 f'</pl:content></pl:file></pl:files></pl:payload>', CD.format("hdc"))
    (binding,) = read_domain(xml, editable=False).bindings()
    assert binding.payload.files[0].content == b"x" * 200


@pytest.mark.parametrize("name", ["contract-example.xml", "plain-domain.xml", "restore-begin-captured.xml"])
def test_the_hooks_reader_and_the_commands_parser_read_alike(name):
    data = open(os.path.join(os.path.dirname(__file__), "data", name), "rb").read()
    fast, full = xmlsafe.read_xml(data), xmlsafe.parse_xml(data)
    assert metadata.read_payloads(fast) == metadata.read_payloads(full)
    assert view_of(fast).disks == view_of(full).disks
    assert view_of(fast).require_name() == view_of(full).require_name()


# -- one typed view: read_domain, bindings, plans ------------------------------------------------

import glob  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402

from payloadhook.config import Config  # noqa: E402
from payloadhook.domain.plan import (  # noqa: E402
    apply_attach,
    apply_detach,
    apply_relocate,
    image_file_name,
    plan_attach,
    plan_detach,
    plan_relocate,
)
from payloadhook.domain.view import Disk, read_domain, view_of  # noqa: E402
from payloadhook.errors import PayloadhookError, quote, shown  # noqa: E402
from payloadhook.hook import run  # noqa: E402
from payloadhook.prepare import check_domain  # noqa: E402


def test_the_view_of_the_contract_example():
    view = read_domain(contract_example(), editable=False)
    assert (view.name, view.uuid, view.machine_family) == ("win-builder", None, "i440fx")
    assert [(d.target, d.device, d.kind, d.bus, d.driver_type) for d in view.disks] == [
        ("hdc", "cdrom", "file", "ide", None), ("fda", "floppy", "file", "fdc", None)]
    assert [p.type for p in view.payloads] == ["cdrom", "floppy"]
    assert [(b.payload.type, b.disk.target) for b in view.bindings()] == [("cdrom", "hdc"), ("floppy", "fda")]
    assert read_domain(contract_example()) == view    # lxml's reading equals the hook's


def test_disks_are_equal_by_value_not_by_element():
    one, two = read_domain(contract_example()), read_domain(contract_example())
    assert one.disks == two.disks and one.disks[0].element is not two.disks[0].element


@pytest.mark.parametrize("driver,ok", [("", True), ("<driver name='qemu' type='raw'/>", True),
                                       ("<driver name='qemu'/>", True), ("<driver name='qemu' type='qcow2'/>", False)])
def test_a_payload_disk_must_be_raw(driver, ok):
    xml = domain(f'<pl:payload type="cdrom">{FILE}</pl:payload>',
                 CD.format("hdc").replace("<source", driver + "<source"))
    if ok:
        assert len(read_domain(xml).bindings()) == 1
    else:
        with pytest.raises(BindingError, match="cdrom payload: disk hdc has <driver type='qcow2'>; a payload image is raw"):
            read_domain(xml).bindings()


IMAGE_DIR = "/run/payloadhook"
NEW = Payload(type="cdrom", volume_id="cidata", files=(PayloadFile("a", b"1"), PayloadFile("b", b"2")))


def test_plan_attach_says_what_it_replaces_and_what_changed():
    view = read_domain(contract_example())
    plan = plan_attach(view, NEW, IMAGE_DIR)
    assert (plan.target, plan.bus, plan.source, plan.new_disk) == ("hdc", "ide", "/run/payloadhook/win-builder-hdc.iso", False)
    assert [p.volume_id for p in plan.replaces] == ["config-2"] and [p.type for p in plan.kept] == ["floppy"]
    assert plan.changes == ("label config-2 -> cidata", "file contents or names changed")
    apply_attach(view, plan)
    after = read_domain(xmlsafe.serialize(view.root))
    assert after.targeted() == (view.payloads[1], plan.payload)


def test_plan_attach_on_a_domain_without_payload_adds_a_disk():
    view = read_domain(domain("", HD.format("vda")))
    plan = plan_attach(view, NEW, IMAGE_DIR)
    assert (plan.target, plan.new_disk, plan.replaces, plan.changes) == ("hdc", True, (), ())


def test_plan_attach_replacing_reports_file_counts():
    view = read_domain(domain(f'<pl:payload type="cdrom">{FILE}</pl:payload>', CD.format("hdc")))
    assert plan_attach(view, NEW, IMAGE_DIR).changes == ("label PAYLOAD -> cidata", "1 files -> 2")


def test_an_untargeted_payload_is_replaced_only_while_it_binds_to_that_disk():
    # the domain gains a second cdrom disk: the old payload no longer binds to one disk alone
    view = read_domain(domain(f'<pl:payload type="cdrom">{FILE}</pl:payload>',
                              "<disk type='file' device='cdrom'><source file='/isos/x.iso'/><target dev='hdc'/></disk>"))
    plan = plan_attach(view, NEW, IMAGE_DIR)
    assert plan.new_disk and plan.target == "hdd" and plan.replaces == () and len(plan.kept) == 1


def test_plan_detach():
    view = read_domain(contract_example())
    plan = plan_detach(view, IMAGE_DIR, payload_type="floppy")
    assert [p.type for p in plan.removed] == ["floppy"] and [d.target for d in plan.disks] == ["fda"]
    apply_detach(view, plan)
    after = read_domain(xmlsafe.serialize(view.root))
    assert [d.target for d in after.disks] == ["hdc"] and [p.type for p in after.payloads] == ["cdrom"]
    with pytest.raises(BindingError, match="domain win-builder has no payload on sdz"):
        plan_detach(view, IMAGE_DIR, target="sdz")


# -- the migrate filter prints only what prepare accepts ------------------------------------------

@pytest.mark.parametrize("source", ["/elsewhere/..", "/elsewhere/.", "/elsewhere/", "/", "/x/.hidden", "/x/a\tb",
                                    "/x/" + "n" * 256])
def test_the_migrate_filter_refuses_what_prepare_would(source):
    with pytest.raises(BindingError, match="does not end in a plain file name"):
        image_file_name(source)
    xml = domain(f'<pl:payload type="cdrom">{FILE}</pl:payload>',
                 "<disk type='file' device='cdrom'><source file=''/><target dev='hdc'/></disk>")
    view = read_domain(xml.replace("file=''", f"file='{escape_attr(source)}'"))
    with pytest.raises(BindingError, match="does not end in a plain file name"):
        plan_relocate(view, IMAGE_DIR)


def escape_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("'", "&apos;").replace("\t", "&#9;")


def test_the_migrate_filter_moves_plain_names():
    xml = contract_example().replace(b"/run/payloadhook/win-builder-hdc.iso", b"/srv/a/b/win-builder-hdc.iso")
    moves = plan_relocate(read_domain(xml), IMAGE_DIR)
    assert [(m.disk.target, m.source) for m in moves] == [("hdc", "/run/payloadhook/win-builder-hdc.iso")]


@pytest.mark.parametrize("source", ["/srv/..", "/srv/.", "/srv/"])
def test_the_hook_filter_prints_nothing_for_a_bad_source(source, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {tmp_path}/images\n")
    xml = contract_example().replace(b"/run/payloadhook/win-builder-hdc.iso", source.encode())
    stdout, stderr = io.BytesIO(), io.StringIO()
    assert run(["qemu", "w", "migrate", "begin", "-"], io.BytesIO(xml), stdout, stderr,
               {"PAYLOADHOOK_CONF": str(conf)}) == 1
    assert stdout.getvalue() == b"" and stderr.getvalue().count("\n") == 1
    assert "does not end in a plain file name" in stderr.getvalue()


# -- check: as prepare, without starting ----------------------------------------------------------

BAD = sorted(glob.glob(os.path.join(DATA, "bad", "*.xml")))


@pytest.mark.parametrize("path", BAD, ids=[os.path.basename(p)[:-4] for p in BAD])
def test_check_refuses_what_the_hook_refuses_in_its_words(path, tmp_path):
    image_dir = str(tmp_path / "images")
    xml = open(path, "rb").read().replace(b"/run/payloadhook", image_dir.encode())
    conf = tmp_path / "c.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\nmax_file_size = 1K\nmax_payload_size = 2K\n")
    stderr = io.StringIO()
    assert run(["qemu", "bad", "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr,
               {"PAYLOADHOOK_CONF": str(conf)}) == 1
    with pytest.raises(PayloadhookError) as info:
        check_domain(xml, Config(image_dir=image_dir, max_file_size=1024, max_payload_size=2048))
    assert stderr.getvalue() == f"payloadhook: domain bad: {info.value}\n"
    assert len(str(info.value)) < 400    # a value quoted from input is bounded
    assert not os.path.exists(image_dir) or os.listdir(image_dir) in ([], [".payloadhook"])


def test_check_accepts_the_contract_example_and_says_what_it_would_build():
    checked = check_domain(contract_example(), Config())
    assert [(c.binding.disk.target, c.image_size) for c in checked] == [("hdc", checked[0].image_size), ("fda", 1474560)]
    assert checked[0].image_size % 2048 == 0
    assert check_domain(open(os.path.join(DATA, "plain-domain.xml"), "rb").read(), Config()) == ()


# -- messages: values from input quoted, escaped and bounded ---------------------------------------

@pytest.mark.parametrize("value,quoted", [
    ("hdc", "'hdc'"), ("a\nb", "'a\\nb'"), ("tab\there", "'tab\\there'"), ("it's", "'it\\'s'"),
    ("back\\slash", "'back\\\\slash'"), ("\x1b[2K", "'\\x1b[2K'"), ("\u2028", "'\\u2028'"), ("é😀", "'é😀'"),
    ("x" * 100, "'" + "x" * 80 + "…'"), (b"caf\xe9", "'caf\\xe9' (not UTF-8)"),
    ("caf\udce9", "'caf\\xe9' (not UTF-8)"), (None, "(none)"),
])
def test_quote(value, quoted):
    assert quote(value) == quoted
    assert "\n" not in quote(value) and "\n" not in shown(value)


def test_shown_is_quote_without_quotes():
    assert shown("/run/payloadhook/x.iso") == "/run/payloadhook/x.iso"
    assert shown("a\nb" + "c" * 100, 10) == "a\\nbccccccc…"


@pytest.mark.parametrize("document", [
    b"<domain><name>PAYLOADHOOK-SECRET</nom></domain>",
    b"<domain><name>&PAYLOADHOOK-SECRET;</name></domain>",
    b"<domain><PAYLOADHOOK-SECRET attr='1' attr='2'/></domain>",
    b"<domain><name>x</name><metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'><pl:PAYLOADHOOK-SECRET>"
    b"</pl:payloads></metadata></domain>",
])
@pytest.mark.parametrize("parse", [xmlsafe.parse_xml, xmlsafe.read_xml], ids=["lxml", "expat"])
def test_parse_errors_never_quote_the_document(document, parse):
    with pytest.raises(XMLError) as info:
        parse(document)
    assert "SECRET" not in str(info.value) and re.search(r"line \d+, column \d+", str(info.value))


def test_a_huge_target_is_cut_in_every_message():
    xml = domain(f'<pl:payload type="cdrom" target="{"t" * 100000}">{FILE}</pl:payload>', CD.format("hdc"))
    with pytest.raises(BindingError) as info:
        read_domain(xml).bindings()
    assert len(str(info.value)) < 200


def test_disk_describe_escapes_its_target():
    assert Disk(target="a\nb", device="cdrom", kind="file", source=None, bus=None).describe() == "disk a\\nb"
