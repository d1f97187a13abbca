"""``payloadhook adopt`` on a real libvirtd: a domain defined with VDSM's payload metadata (both
forms, the fixtures of tests/test_ovirt.py grafted onto the tiny TCG guest) is shown and checked
as an oVirt payload before, adopted (sealed under the host's key), shown as payloads after,
started, and its guest reads from the media exactly the bytes the oVirt payload held."""

import hashlib

import pytest
from lxml import etree

from payloadhook import xmlsafe
from payloadhook.domain import ovirt
from tests.harness.domains import disk, domain, wait_state
from tests.harness.tinyguest import parse_console
from tests.test_ovirt import ANSWER, HELLO, META, USER_DATA, fixture
from tests.test_seal_libvirt import command, keyed  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.guest]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ovirt_guest(workdir, guest_kernel, case: str, name: str) -> tuple[str, str]:
    """The tiny guest with the fixture's oVirt metadata and payload disks (their VDSM sources)."""
    source = xmlsafe.parse_xml(fixture(case))
    disks, devs = [], []
    for element in source.findall("devices/disk"):
        device, target = element.get("device"), element.find("target").get("dev")
        disks.append(disk(device, target, element.find("source").get("file")))
        devs.append("sr0" if device == "cdrom" else "fd0")
    console = workdir / f"{name}.log"
    root = xmlsafe.parse_xml(domain(name, disks, kernel=guest_kernel, console=str(console), devs=",".join(devs)))
    metadata = etree.Element("metadata")
    root.insert(1, metadata)
    metadata.append(source.find(f"metadata/{ovirt.VM}"))
    path = workdir / f"{name}.xml"
    path.write_bytes(xmlsafe.serialize(root))
    return str(path), str(console)


@pytest.mark.parametrize("case,labels,expected", [
    ("current", {"sr0": "config-2"}, {("sr0", "rock"): {"openstack/latest/meta_data.json": sha(META),
                                   "openstack/latest/user_data": sha(USER_DATA)}}),
    ("older", {"sr0": "PAYLOAD", "fd0": "PAYLOAD"}, {("sr0", "rock"): {"notes/hello.txt": sha(HELLO)}, ("fd0", "vfat"): {"Unattend.xml": sha(ANSWER)}}),
])
def test_adopted_domain_starts_and_its_guest_reads_the_ovirt_bytes(libvirtd, keyed, workdir,  # noqa: F811
                                                                   guest_kernel, case, labels, expected):
    name = f"ph-ovirt-{case}"
    path, console = ovirt_guest(workdir, guest_kernel, case, name)
    libvirtd.virsh("define", path)
    try:
        uuid = libvirtd.virsh("domuuid", name).stdout.strip()
        before = command(libvirtd, "show", name).stdout
        assert f"{name}: no payloads the hook builds" in before
        assert f"{name}: oVirt payload (" in before and f"payloadhook adopt {uuid} makes it" in before
        refused = command(libvirtd, "check", name, check=False)
        assert refused.returncode == 1 and f"run payloadhook adopt {uuid}" in refused.stdout

        out = command(libvirtd, "adopt", name).stdout
        assert out.count("adopted the oVirt payload on ") == len(expected) and f"sealed with key {keyed}" in out
        after = command(libvirtd, "show", name).stdout
        assert "oVirt payload" not in after and f"sealed (key {keyed})" in after
        assert command(libvirtd, "check", name).returncode == 0
        xml = libvirtd.virsh("dumpxml", name, "--inactive").stdout
        assert "ovirt-vm:payload" not in xml and "vmPayload" not in xml and "PAYLOAD:" not in xml
        again = command(libvirtd, "adopt", name, check=False)
        assert again.returncode == 1 and "has no oVirt payload metadata to adopt" in again.stderr

        libvirtd.virsh("start", name)
        wait_state(libvirtd, name, "shut off", timeout=120)
        with open(console, errors="replace") as stream:
            report = parse_console(stream.read())
        assert report["done"], report
        assert report["labels"] == labels
        for where, files in expected.items():
            assert report["files"][where] == files
    finally:
        libvirtd.virsh("destroy", name, check=False)
        libvirtd.virsh("undefine", name, check=False)
