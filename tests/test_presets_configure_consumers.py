"""What section 7's new flags produce, read by Debian's cloud-init (22.4) itself, as
tests/test_presets_consumers.py reads the older presets: the network-config ``--net`` writes
through ``network_state`` (cloud-init 22.4 ships no schema for network-config v2: its
interpreter is what validates it), network_data.json through the config drive's own
``convert_net_json`` and then ``network_state``, the instance-id and hostname through the
NoCloud and ConfigDrive readers, the NoCloud floppy through blkid's label search and
``pathprefix2dict``, and ``--ovf-env user-data=F`` through DataSourceOVF."""

import json
import subprocess

from cloudinit import util  # noqa: E402  (on sys.path through tests.test_presets_consumers)
from cloudinit.net import network_state  # noqa: E402
from cloudinit.sources import DataSourceConfigDrive, DataSourceOVF  # noqa: E402
from cloudinit.sources.helpers import openstack  # noqa: E402

from payloadhook.cli import main
from payloadhook.presets import Identity, cloudinit, configdrive
from tests.test_presets import DOMAIN, USER_DATA, UUID, files_of
from tests.test_presets_configure import MAC0, MAC1, NETS
from tests.test_presets_consumers import extract, found_by_label, nocloud_seed, write

NET_ARGS = [arg for text in NETS for arg in ("--net", text)]


def interfaces(state):
    return {iface["mac_address"]: iface for iface in state.iter_interfaces()}


def expect_state(state, names):
    """What both documents say, as network_state holds it."""
    found = interfaces(state)
    assert set(found) == {MAC0, MAC1}
    static, dhcp = found[MAC0], found[MAC1]
    assert dhcp["name"] == "lan1" and [s["type"] for s in dhcp["subnets"]] == ["dhcp4"]
    assert static["name"] == names[MAC0]
    (subnet,) = static["subnets"]
    assert (subnet["type"], subnet["address"].split("/")[0], subnet["prefix"]) == ("static", "192.0.2.10", 24)
    routes = [(r["network"], r["prefix"], r["gateway"]) for r in subnet.get("routes", [])]
    assert routes == [("0.0.0.0", 0, "192.0.2.1")]
    assert set(state.dns_nameservers) == {"192.0.2.53", "2001:db8::53"}


def test_nocloud_network_config_from_net_is_read_by_network_state(tmp_path):
    (tmp_path / "ud").write_bytes(USER_DATA)
    image = tmp_path / "seed.iso"
    assert main(["build", "--cloud-init", f"user-data={tmp_path}/ud", *NET_ARGS, "-o", str(image)]) == 0
    seed = nocloud_seed(extract(image, tmp_path / "x"))
    config = seed["network-config"]
    assert config["version"] == 2
    state = network_state.parse_net_config_data(config, skip_broken=False)
    # matched on MAC; without name= the guest keeps its own name (the entry's id stands in here)
    assert config["ethernets"]["nic0"]["match"] == {"macaddress": MAC0} and "set-name" not in config["ethernets"]["nic0"]
    expect_state(state, {MAC0: "nic0"})
    # cloud-init's own v2 nameserver handling puts them on the interface's subnet as well
    assert interfaces(state)[MAC0]["subnets"][0]["dns_nameservers"] == ["192.0.2.53", "2001:db8::53"]


def test_config_drive_network_data_from_net_is_converted_by_openstack(tmp_path):
    (tmp_path / "ud").write_bytes(USER_DATA)
    image = tmp_path / "cd.iso"
    assert main(["build", "--config-drive", f"user-data={tmp_path}/ud", *NET_ARGS, "-o", str(image)]) == 0
    results = DataSourceConfigDrive.read_config_drive(extract(image, tmp_path / "x"))
    # the guest's names by MAC, as net.get_interfaces_by_mac() would give them
    converted = openstack.convert_net_json(results["networkdata"], known_macs={MAC0: "ens3", MAC1: "ens4"})
    assert converted["version"] == 1
    expect_state(network_state.parse_net_config_data(converted, skip_broken=False), {MAC0: "ens3"})


def test_nocloud_reader_returns_the_instance_id_each_policy_gives(tmp_path):
    seen = {}
    for policy in ("stable", "content", "i-literal"):
        image = write(cloudinit.build({"user-data": USER_DATA}, DOMAIN, instance_id=policy), tmp_path / f"{policy}.iso")
        seen[policy] = nocloud_seed(extract(image, tmp_path / policy))["meta-data"]
    assert seen["stable"] == {"instance-id": UUID, "local-hostname": "web-01-example"}
    assert seen["content"]["instance-id"].startswith("iid-") and seen["content"]["local-hostname"] == "web-01-example"
    assert seen["i-literal"]["instance-id"] == "i-literal"


def test_nocloud_reader_returns_a_literal_instance_id_exactly(tmp_path):
    for index, value in enumerate(["vm-\U0001f600", "vm-\u00e9t\u00e9", 'vm-"q"\\b', "vm-\u2028x"]):
        meta = cloudinit.meta_data({"user-data": USER_DATA}, DOMAIN, value)
        seed = tmp_path / str(index)
        seed.mkdir()
        (seed / "meta-data").write_bytes(meta)
        (seed / "user-data").write_bytes(USER_DATA)
        assert nocloud_seed(str(seed))["meta-data"]["instance-id"] == value
        assert util.read_seeded(f"file://{seed}/")[0]["instance-id"] == value


def test_config_drive_reader_returns_the_hostname_of_an_offline_drive(tmp_path):
    (tmp_path / "ud").write_bytes(USER_DATA)
    (tmp_path / "md").write_bytes(b'{"uuid": "c0ffee00-0000-4000-8000-000000000001", "name": "Build Box"}')
    image = tmp_path / "cd.iso"
    assert main(["build", "--config-drive", f"user-data={tmp_path}/ud,meta-data={tmp_path}/md", "-o", str(image)]) == 0
    metadata = DataSourceConfigDrive.read_config_drive(extract(image, tmp_path / "x"))["metadata"]
    assert (metadata["instance-id"], metadata["local-hostname"], metadata["name"]) == (
        "c0ffee00-0000-4000-8000-000000000001", "build-box", "Build Box")


def test_config_drive_reader_returns_the_content_instance_id(tmp_path):
    def instance_id(parts):
        image = write(configdrive.build(parts, DOMAIN, instance_id="content"), tmp_path / "cd.iso")
        subprocess.run(["rm", "-rf", str(tmp_path / "x")], check=True)
        return DataSourceConfigDrive.read_config_drive(extract(image, tmp_path / "x"))["metadata"]["instance-id"]
    first = instance_id({"user-data": USER_DATA})
    assert first == instance_id({"user-data": USER_DATA}) != instance_id({"user-data": USER_DATA + b"#\n"})
    assert first != UUID


def test_nocloud_floppy_is_found_by_its_label_and_read(tmp_path):
    image = write(cloudinit.build({"user-data": USER_DATA}, Identity(name="vm1"), medium="floppy"), tmp_path / "f.img")
    assert found_by_label(image, "CIDATA")      # NoCloud's _get_devices asks for LABEL=CIDATA and cidata
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["mcopy", "-s", "-n", "-i", str(image), "::*", str(out)], check=True, capture_output=True)
    seed = nocloud_seed(str(out))
    assert seed["user-data"] == USER_DATA and seed["meta-data"]["local-hostname"] == "vm1"
    assert seed["meta-data"]["instance-id"].startswith("iid-")


def test_ovf_user_data_from_a_file_is_what_the_reader_returns(tmp_path):
    (tmp_path / "ud").write_bytes(USER_DATA)
    image = tmp_path / "ovf.iso"
    assert main(["build", "--ovf-env", f"instance-id=iid-ovf,user-data={tmp_path}/ud", "-o", str(image)]) == 0
    _, contents = DataSourceOVF.get_ovf_env(extract(image, tmp_path / "x"))
    metadata, userdata, _ = DataSourceOVF.read_ovf_environment(contents)
    assert userdata == USER_DATA and metadata == {"instance-id": "iid-ovf"}


def test_meta_data_json_stays_what_cloud_init_loads():
    files = files_of(configdrive.build({"user-data": USER_DATA, "meta-data": json.dumps(
        {"availability_zone": "z1"}).encode()}, DOMAIN))
    assert util.load_json(files["openstack/latest/meta_data.json"])["availability_zone"] == "z1"
