"""``--net`` and ``--instance-id`` through a real libvirtd: ``attach`` names the domain's own
interfaces (by index, MAC or target device) and writes their MACs into the seed, the domain's
UUID or a content digest as the instance-id; a MAC the domain lacks, or an index it does not
have, is refused with one line and the definition is left byte for byte as it was. Those domains
are only defined, never started: no network is touched. And the NoCloud floppy, read by the
tiny guest."""

import base64
import json

import pytest
import yaml

from payloadhook.domain.view import read_domain
from tests.harness.domains import domain
from tests.test_presets import USER_DATA
from tests.test_presets_guest import files, machine  # noqa: F401  (fixtures)
from tests.test_seal_libvirt import command

pytestmark = pytest.mark.integration

MACS = ("52:54:00:5e:00:01", "52:54:00:5e:00:02")


@pytest.fixture
def two_nics(libvirtd, workdir):
    name = "ph-net-two-nics"
    xml = domain(name, []).replace("<devices>", "<devices>" + "".join(
        f"<interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>" for mac in MACS), 1)
    path = workdir / f"{name}.xml"
    path.write_text(xml)
    (workdir / "user-data").write_bytes(USER_DATA)
    libvirtd.virsh("define", str(path))
    yield name, workdir / "user-data"
    libvirtd.virsh("undefine", name, check=False)


def seed_files(libvirtd, name):
    (payload,) = read_domain(libvirtd.virsh("dumpxml", name, "--inactive").stdout).payloads
    return {f.name: f.content for f in payload.files}


def test_attach_cloud_init_with_a_static_address_and_the_domains_name(libvirtd, two_nics):
    name, user_data = two_nics
    uuid = libvirtd.virsh("domuuid", name).stdout.strip()
    command(libvirtd, "attach", name, "--cloud-init", f"user-data={user_data}", "--no-seal",
            "--net", "0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53", "--net", f"{MACS[1].upper()}=dhcp")
    seed = seed_files(libvirtd, name)
    assert yaml.safe_load(seed["meta-data"]) == {"instance-id": uuid, "local-hostname": name}
    ethernets = yaml.safe_load(seed["network-config"])["ethernets"]
    assert [e["match"]["macaddress"] for e in ethernets.values()] == list(MACS)
    assert ethernets["nic0"]["addresses"] == ["192.0.2.10/24"] and ethernets["nic1"] == {
        "match": {"macaddress": MACS[1]}, "dhcp4": True}


def test_attach_config_drive_with_net_and_a_content_instance_id(libvirtd, two_nics):
    name, user_data = two_nics
    command(libvirtd, "attach", name, "--config-drive", f"user-data={user_data}", "--no-seal",
            "--instance-id", "content", "--net", f"{MACS[1]}=192.0.2.11/24")
    seed = seed_files(libvirtd, name)
    meta = json.loads(seed["openstack/latest/meta_data.json"])
    uuid = libvirtd.virsh("domuuid", name).stdout.strip()
    assert meta["uuid"] != uuid and meta["hostname"] == name
    links = json.loads(seed["openstack/latest/network_data.json"])["links"]
    assert [link["ethernet_mac_address"] for link in links] == [MACS[1]]


@pytest.mark.parametrize("net,fragment", [
    ("52:54:00:99:99:99=dhcp", "the domain has no interface with the MAC 52:54:00:99:99:99"),
    ("2=dhcp", "the domain has no interface 2 with a MAC (it has 2 interfaces"),
    ("vnet9=dhcp", "no interface whose target device is 'vnet9'"),
    ("0=192.0.2.10/24,gw=10.0.0.1", "gateway 10.0.0.1 is outside the network 192.0.2.0/24"),
])
def test_attach_refusals_leave_the_definition_as_it_was(libvirtd, two_nics, net, fragment):
    name, user_data = two_nics
    before = libvirtd.virsh("dumpxml", name, "--inactive").stdout
    result = command(libvirtd, "attach", name, "--cloud-init", f"user-data={user_data}", "--net", net, check=False)
    assert result.returncode == 1 and fragment in result.stderr and result.stderr.count("\n") == 1
    assert libvirtd.virsh("dumpxml", name, "--inactive").stdout == before
    assert base64.b64encode(USER_DATA).decode()[:20] not in before


@pytest.mark.guest
def test_the_nocloud_floppy_reaches_the_guest(libvirtd, machine, files):  # noqa: F811
    """--cloud-init --type floppy on an i440fx machine: a FAT floppy labelled CIDATA, read by
    the tiny guest's kernel with the content instance-id in its meta-data."""
    import hashlib
    name, _, boot = machine("pc", devs="fd0")
    out = command(libvirtd, "attach", name, "--cloud-init", f"user-data={files}/user-data", "--type", "floppy",
                  "--instance-id", "content", "--no-seal").stdout
    assert f"attached floppy payload (2 files, label CIDATA) to {name} on fda" in out
    meta = seed_files(libvirtd, name)["meta-data"]
    assert meta.startswith(b'instance-id: "iid-')
    report = boot()
    assert report["labels"] == {"fd0": "CIDATA"}
    assert report["files"][("fd0", "vfat")] == {"user-data": hashlib.sha256(USER_DATA).hexdigest(),
                                               "meta-data": hashlib.sha256(meta).hexdigest()}
