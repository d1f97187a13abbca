"""Payloads without a device (network seed, fw_cfg): binding, attach and detach plans, and the
hook's prepare and release, in-process (the guest and the seed service: test_fwcfg_guest.py,
test_seed*.py)."""

import fcntl
import io
import json
import os

import pytest
from lxml import etree

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.domain.deviceless import SEED_SERIAL
from payloadhook.domain.plan import apply_attach, apply_detach, plan_attach, plan_detach
from payloadhook.domain.view import read_domain, view_of
from payloadhook.errors import BindingError
from payloadhook.hook import main, run
from payloadhook.model import Payload, PayloadFile
from payloadhook.seed import LOCK_NAME, service_running
from payloadhook.seed.record import read_seed, read_taps
from tests.conftest import MARKER

UUID = "6f0b0d1e-93b2-4a53-9f57-1f1e1c3b2a10"
IGNITION = b'{"ignition": {"version": "3.4.0"}, "x": "' + MARKER.encode() + b'"}'


def domain(image_dir="/run/payloadhook", extra="", interfaces=None, name="vm1"):
    if interfaces is None:
        interfaces = ("<interface type='network'><mac address='52:54:00:12:34:56'/>"
                      "<source network='default'/><model type='virtio'/></interface>")
    return xmlsafe.parse_xml(f"""<domain type='qemu'>
  <name>{name}</name>
  <uuid>{UUID}</uuid>
  <memory>131072</memory>
  {extra}
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>
    {interfaces}
  </devices>
</domain>""")


def normal(root) -> bytes:
    """The document without the whitespace between elements (the layout is layout.py's)."""
    copy = etree.fromstring(etree.tostring(root))
    for element in copy.iter():
        if element.text is not None and not element.text.strip():
            element.text = None
        if element.tail is not None and not element.tail.strip():
            element.tail = None
    return etree.tostring(copy)


def attach(root, payload, image_dir="/run/payloadhook"):
    view = view_of(root)
    plan = plan_attach(view, payload, image_dir)
    apply_attach(view, plan)
    return plan


def detach(root, payload_type, image_dir="/run/payloadhook"):
    view = view_of(root)
    plan = plan_detach(view, image_dir, payload_type)
    apply_detach(view, plan)
    return plan


NETWORK = Payload("network", (PayloadFile("user-data", b"#cloud-config\n"), PayloadFile("meta-data", b"{}")))
FWCFG = Payload("fwcfg", (PayloadFile("opt/com.coreos/config", IGNITION),))


def test_attach_network_sets_the_serial_smbios_and_filter_and_detach_undoes_exactly_that():
    root = domain()
    before = normal(root)
    plan = attach(root, NETWORK)
    assert plan.changes == (f"SMBIOS serial set to {SEED_SERIAL}", "<smbios mode='sysinfo'/> added",
                            "clean-traffic added to interface 52:54:00:12:34:56")
    assert root.find("sysinfo[@type='smbios']/system/entry[@name='serial']").text == SEED_SERIAL
    assert root.find("os/smbios").get("mode") == "sysinfo"
    assert root.find("devices/interface/filterref").get("filter") == "clean-traffic"
    view = read_domain(xmlsafe.serialize(root))
    assert view.network_payload().files == NETWORK.files and view.bindings() == ()
    detach(root, "network")
    assert normal(root) == before


def test_detach_keeps_what_the_user_had():
    extra = (f"<sysinfo type='smbios'><system><entry name='serial'>{SEED_SERIAL}</entry></system></sysinfo>")
    interfaces = ("<interface type='network'><mac address='52:54:00:12:34:56'/><source network='default'/>"
                  "<filterref filter='clean-traffic'/></interface>"
                  "<interface type='bridge'><mac address='52:54:00:12:34:57'/><source bridge='br0'/></interface>")
    root = domain(extra=extra, interfaces=interfaces)
    root.find("os").append(etree.fromstring("<smbios mode='sysinfo'/>"))
    before = normal(root)
    plan = attach(root, NETWORK)
    assert plan.changes == ("clean-traffic added to interface 52:54:00:12:34:57",)
    detach(root, "network")
    assert normal(root) == before


@pytest.mark.parametrize("extra,os_extra,said", [
    ("<sysinfo type='smbios'><system><entry name='serial'>ABC123</entry></system></sysinfo>", "",
     "SMBIOS system serial is 'ABC123'"),
    ("", "<smbios mode='host'/>", "<smbios mode='host'>"),
])
def test_attach_network_refuses_to_overwrite_the_users_sysinfo(extra, os_extra, said):
    root = domain(extra=extra)
    if os_extra:
        root.find("os").append(etree.fromstring(os_extra))
    with pytest.raises(BindingError, match=said):
        attach(root, NETWORK)


def test_attach_network_needs_an_interface():
    with pytest.raises(BindingError, match="no interface on a libvirt network or bridge"):
        attach(domain(interfaces=""), NETWORK)


def test_a_second_network_payload_replaces_the_first_and_two_are_refused():
    root = domain()
    attach(root, NETWORK)
    other = Payload("network", (PayloadFile("user-data", b"#cloud-config\nb: 1\n"),))
    plan = attach(root, other)
    assert plan.replaces == (NETWORK,) and plan.changes == ()
    assert [p.files for p in view_of(root).payloads] == [other.files]
    metadata.set_payloads(root, [NETWORK, other])
    with pytest.raises(BindingError, match="2 network payloads; at most one"):
        view_of(root).network_payload()


def test_attach_fwcfg_adds_entries_in_image_dir_and_detach_removes_them():
    root = domain()
    before = normal(root)
    attach(root, FWCFG)
    entry = root.find("sysinfo[@type='fwcfg']/entry")
    assert entry.get("name") == "opt/com.coreos/config"
    assert entry.get("file") == "/run/payloadhook/vm1-fwcfg-opt_com.coreos_config"
    assert [b.item.name for b in view_of(root).entry_bindings()] == ["opt/com.coreos/config"]
    detach(root, "fwcfg")
    assert normal(root) == before


def test_fwcfg_binding_refusals():
    root = domain(extra="<sysinfo type='fwcfg'><entry name='opt/a'>inline</entry></sysinfo>")
    metadata.set_payloads(root, [Payload("fwcfg", (PayloadFile("opt/a", b"x"),))])
    with pytest.raises(BindingError, match="needs file="):
        view_of(root).entry_bindings()
    metadata.set_payloads(root, [Payload("fwcfg", (PayloadFile("opt/b", b"x"),))])
    with pytest.raises(BindingError, match="no <sysinfo type='fwcfg'> entry is named 'opt/b'"):
        view_of(root).entry_bindings()
    with pytest.raises(BindingError, match="the domain's own"):
        attach(root, Payload("fwcfg", (PayloadFile("opt/a", b"x"),)))


@pytest.fixture
def conf(tmp_path):
    image_dir = tmp_path / "images"
    path = tmp_path / "payloadhook.conf"
    path.write_text(f"[payloadhook]\nimage_dir = {image_dir}\nmax_file_size = 1M\n")
    return {"PAYLOADHOOK_CONF": str(path), "PAYLOADHOOK_INDEX": str(tmp_path / "index")}, str(image_dir)


def hook(environ, operation, xml, name="vm1"):
    stderr = io.StringIO()
    status = run(["qemu", name, operation, "begin" if operation != "release" else "end", "-"],
                 io.BytesIO(xml), io.BytesIO(), stderr, environ)
    return status, stderr.getvalue()


def test_prepare_writes_each_fwcfg_file_and_release_removes_it(conf):
    environ, image_dir = conf
    root = domain(image_dir)
    attach(root, FWCFG, image_dir)
    xml = xmlsafe.serialize(root)
    assert hook(environ, "prepare", xml) == (0, "")
    path = f"{image_dir}/vm1-fwcfg-opt_com.coreos_config"
    assert open(path, "rb").read() == IGNITION and os.stat(path).st_mode & 0o777 == 0o600
    assert hook(environ, "release", xml) == (0, "")
    assert not os.path.exists(path)


def test_an_fwcfg_entry_may_not_read_another_domains_image(conf):
    environ, image_dir = conf
    root = domain(image_dir, extra=f"<sysinfo type='fwcfg'><entry name='opt/x' file='{image_dir}/vm2-hdc.iso'/>"
                  "</sysinfo>")
    metadata.set_payloads(root, [Payload("cdrom", (PayloadFile("a", b"x"),))])
    root.find("devices").append(etree.fromstring(
        f"<disk type='file' device='cdrom'><source file='{image_dir}/vm1-hdc.iso'/><target dev='hdc'/></disk>"))
    status, said = hook(environ, "prepare", xmlsafe.serialize(root))
    assert status == 1 and "fw_cfg entry opt/x reads" in said and "receives no payload of this domain" in said
    assert not os.path.exists(f"{image_dir}/vm1-hdc.iso")


def test_prepare_of_a_network_payload_is_refused_in_one_line_without_the_service(conf):
    environ, image_dir = conf
    root = domain(image_dir)
    attach(root, NETWORK, image_dir)
    status, said = hook(environ, "prepare", xmlsafe.serialize(root))
    assert (status, said) == (1, "payloadhook: domain vm1: the network seed service is not running: "
                                 "systemctl start payloadhook-seed\n")
    assert not os.path.exists(f"{image_dir}/vm1-network.seed")


def test_prepare_records_the_seed_and_started_the_taps_while_the_service_runs(conf):
    environ, image_dir = conf
    os.makedirs(image_dir, mode=0o711)
    lock = os.open(f"{image_dir}/{LOCK_NAME}", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        assert service_running(image_dir)
        root = domain(image_dir)
        attach(root, NETWORK, image_dir)
        assert hook(environ, "prepare", xmlsafe.serialize(root)) == (0, "")
        seed = read_seed(open(f"{image_dir}/vm1-network.seed", "rb").read())
        assert (seed.domain, seed.uuid, seed.payload.files) == ("vm1", UUID, NETWORK.files)
        assert seed.interfaces == (("52:54:00:12:34:56", "clean-traffic"),)
        # at started, libvirt's live XML names the tap ('lo' stands in for it here)
        root.find("devices/interface").append(etree.fromstring("<target dev='lo'/>"))
        assert hook(environ, "started", xmlsafe.serialize(root)) == (0, "")
        taps = read_taps(open(f"{image_dir}/vm1-network.taps", "rb").read(), UUID)
        assert [(t.mac, t.dev, t.ifindex, t.filter) for t in taps] == [("52:54:00:12:34:56", "lo", 1, "clean-traffic")]
        assert hook(environ, "release", xmlsafe.serialize(root)) == (0, "")
        assert sorted(os.listdir(image_dir)) == [".payloadhook", LOCK_NAME]
    finally:
        os.close(lock)
    assert not service_running(image_dir)


def test_the_no_payload_started_path_reads_nothing_else(conf):
    environ, _ = conf
    assert main("plain", "started", "begin", io.BytesIO(b"<domain><name>plain</name></domain>"), io.BytesIO(),
                environ) == 0


@pytest.mark.parametrize("data", [b"", b"{}", b"[]", b'{"seed": 1}', b'{"seed": 1, "domain": "a", "uuid": "u", '
                                  b'"interfaces": [], "files": [{"name": "../x", "content": ""}]}',
                                  b'{"seed": 1, "domain": 1, "uuid": "u", "interfaces": [], "files": []}'])
def test_a_seed_record_that_is_not_one_serves_nothing(data):
    assert read_seed(data) is None


def test_the_seed_record_holds_sealed_content_still_sealed():
    from payloadhook.model import Sealed
    from payloadhook.seed.record import seed_document
    sealed = Payload("network", (PayloadFile("user-data", b"", Sealed("k1", b"\0" * 40)),))
    document = seed_document("vm1", UUID, (), sealed)
    assert read_seed(document).payload == sealed
    assert json.loads(document)["files"][0] == {"name": "user-data", "sealed": "A" * 54 + "==", "key": "k1"}


@pytest.mark.parametrize("suffix", ["-network.taps", "-network.seed"])
def test_no_file_of_a_domain_may_take_the_name_of_another_domains_seed_record(conf, suffix):
    """A forged OTHER-network.taps (an fw_cfg file's content is the definer's) would name
    the forger's tap as OTHER's to the seed service."""
    environ, image_dir = conf
    root = domain(image_dir, extra=f"<sysinfo type='fwcfg'><entry name='opt/x' file='{image_dir}/victim{suffix}'/>"
                  "</sysinfo>")
    metadata.set_payloads(root, [Payload("fwcfg", (PayloadFile("opt/x", b'{"taps": 1}'),))])
    status, said = hook(environ, "prepare", xmlsafe.serialize(root), name="evil")
    assert status == 1 and "names kept for the network seed's records" in said
    assert not os.path.exists(f"{image_dir}/victim{suffix}")


def test_the_migrate_filter_moves_fwcfg_files_into_this_hosts_image_dir(conf):
    environ, image_dir = conf
    root = domain("/srv/other-host")
    attach(root, FWCFG, "/srv/other-host")
    stdout = io.BytesIO()
    assert main("vm1", "migrate", "begin", io.BytesIO(xmlsafe.serialize(root)), stdout, environ) == 0
    moved = xmlsafe.parse_xml(stdout.getvalue())
    assert moved.find("sysinfo[@type='fwcfg']/entry").get("file") == f"{image_dir}/vm1-fwcfg-opt_com.coreos_config"
