"""Presets that configure (section 7's additions): ``--instance-id``, ``--net``, the config
drive's ``meta-data=``, the NoCloud floppy and ``--ovf-env user-data=F``; what each lays out
(the generated documents against golden files in tests/data/golden/), and each refusal with
one line and nothing written. cloud-init's own code reads the same output in
tests/test_presets_configure_consumers.py."""

import base64
import json
import re

import pytest
from lxml import etree

from payloadhook.errors import PayloadError, PayloadhookError, UsageError
from payloadhook.presets import Identity, cloudinit, configdrive, network
from tests.conftest import MARKER
from tests.harness import readback
from tests.test_presets import DOMAIN, USER_DATA, UUID, files_of, run

MAC0, MAC1 = "52:54:00:12:34:56", "52:54:00:ab:cd:ef"
NETS = (f"{MAC0}=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53+2001:db8::53", f"{MAC1.upper()}=dhcp,name=lan1")


def nics(*texts, interfaces=None):
    return network.resolve(tuple(network.parse(t) for t in texts), interfaces)


# -- --instance-id -----------------------------------------------------------------------------

def meta_of(payload):
    return files_of(payload)["meta-data"].decode()


def test_instance_id_stable_is_the_domains_uuid_by_default():
    assert meta_of(cloudinit.build({"user-data": USER_DATA}, DOMAIN)).startswith(f'instance-id: "{UUID}"\n')
    assert meta_of(cloudinit.build({"user-data": USER_DATA}, DOMAIN, instance_id="stable")).startswith(
        f'instance-id: "{UUID}"\n')


def test_instance_id_content_changes_exactly_when_the_payload_does():
    def iid(parts, identity=DOMAIN):
        return meta_of(cloudinit.build(parts, identity, instance_id="content")).splitlines()[0]
    first = iid({"user-data": USER_DATA})
    assert first == iid({"user-data": USER_DATA}) and first.startswith('instance-id: "iid-')
    assert first != iid({"user-data": USER_DATA + b"# changed\n"})
    assert first != iid({"user-data": USER_DATA, "vendor-data": b"#!/bin/sh\n"})
    assert first != iid({"user-data": USER_DATA}, Identity(uuid=UUID, name="renamed"))    # local-hostname too
    # the domain's UUID is not part of the payload: another domain with the same seed is the same content
    assert first == iid({"user-data": USER_DATA}, Identity(uuid="0" * 8 + UUID[8:], name=DOMAIN.name))


def test_instance_id_content_of_the_config_drive():
    def uuid(parts):
        return json.loads(files_of(configdrive.build(parts, DOMAIN, instance_id="content"))
                          ["openstack/latest/meta_data.json"])["uuid"]
    assert uuid({"user-data": USER_DATA}) == uuid({"user-data": USER_DATA}) != UUID
    assert uuid({"user-data": USER_DATA}) != uuid({"user-data": USER_DATA + b"#\n"})


def test_instance_id_literal_value():
    assert meta_of(cloudinit.build({"user-data": USER_DATA}, DOMAIN, instance_id="i-42")).startswith(
        'instance-id: "i-42"\n')


def test_build_keeps_its_content_default_and_refuses_stable():
    """The default of a build without a domain is the digest it always was."""
    assert meta_of(cloudinit.build({"user-data": USER_DATA}, Identity())) == \
        meta_of(cloudinit.build({"user-data": USER_DATA}, Identity(), instance_id="content"))
    with pytest.raises(PayloadError, match="--instance-id stable is the domain's UUID, and build has no domain"):
        cloudinit.build({"user-data": USER_DATA}, Identity(), instance_id="stable")


# -- the config drive's meta-data= ---------------------------------------------------------------

def meta_json(parts, identity=None, instance_id=None):
    identity = identity or Identity()
    configdrive.check(parts, 1 << 20)
    return json.loads(files_of(configdrive.build(parts, identity, instance_id=instance_id))
                      ["openstack/latest/meta_data.json"])


def test_config_drive_meta_data_names_an_offline_host():
    given = {"uuid": "c0ffee00-0000-4000-8000-000000000001", "name": "Build Box", "public_keys": {"k": "ssh-ed25519 A"}}
    assert meta_json({"user-data": USER_DATA, "meta-data": json.dumps(given).encode()}) == {
        **given, "hostname": "build-box", "files": []}


def test_config_drive_meta_data_is_merged_over_the_domains_identity():
    document = meta_json({"user-data": USER_DATA, "meta-data": b'{"hostname": "www", "availability_zone": "z1"}'},
                         DOMAIN)
    assert document == {"uuid": UUID, "name": DOMAIN.name, "hostname": "www", "availability_zone": "z1", "files": []}


@pytest.mark.parametrize("given,fragment", [
    (b"[1]", "--config-drive meta-data is not a JSON object"),
    (b'{"uuid": 7}', "uuid is not a non-empty string"),
    (b'{"hostname": ""}', "hostname is not a non-empty string"),
    (b'{"uuid": "a/b"}', "is not one path component"),
    (b'{"public_keys": ["x"]}', "public_keys is not an object of strings"),
    (b'{"random_seed": "!!"}', "random_seed is not base64"),
    (b'{"files": [{"path": "/etc/x", "content_path": "/content/0000"}]}', "files names content/ files"),
    (b'{"a": 1', "--config-drive meta-data is not valid JSON"),
    (b'{"network_config": {"content_path": "/content/0000"}}', "network_config names a content/ file"),
    (b'{"meta": "x"}', "meta is not a JSON object"),
    (b'{"x": NaN}', "holds NaN, Infinity or a number too big for a float"),
    (b'{"y": 1e999}', "holds NaN, Infinity or a number too big for a float"),
    (b'{"z": -Infinity}', "holds NaN, Infinity or a number too big for a float"),
])
def test_config_drive_meta_data_refused(given, fragment):
    with pytest.raises(PayloadError, match=re.escape(fragment)):
        configdrive.check({"user-data": USER_DATA, "meta-data": given}, 1 << 20)


def test_a_uuid_and_an_instance_id_both_given_are_refused():
    with pytest.raises(PayloadError, match="gives a uuid, and --instance-id another"):
        meta_json({"user-data": USER_DATA, "meta-data": b'{"uuid": "u1"}'}, DOMAIN, instance_id="content")


# -- --net -------------------------------------------------------------------------------------------

def test_net_makes_network_config_v2_and_network_data_json(golden):
    bound = nics(*NETS)
    golden.compare("preset-net-network-config", network.network_config(bound), "yaml")
    golden.compare("preset-net-network-data", network.network_data(bound), "json")


INTERFACES = (network.Interface(mac=MAC0, target="vnet7"), network.Interface(mac=MAC1, target=None))


@pytest.mark.parametrize("iface,mac", [(MAC0, MAC0), (MAC1.upper(), MAC1), ("vnet7", MAC0), ("0", MAC0), ("1", MAC1)])
def test_net_names_a_domain_interface_by_mac_target_or_index(iface, mac):
    assert nics(f"{iface}=dhcp", interfaces=INTERFACES)[0].mac == mac


def test_interfaces_are_read_from_the_domain_xml():
    root = etree.fromstring(f"""<domain><devices>
        <interface type='network'><mac address='{MAC0.upper()}'/><target dev='vnet7'/></interface>
        <interface type='bridge'><mac address='{MAC1}'/></interface>
        <interface type='user'/></devices></domain>""")
    assert network.interfaces_of(root) == (*INTERFACES, network.Interface(mac=None, target=None))


@pytest.mark.parametrize("texts,interfaces,fragment", [
    (["52:54:00:00:00:09=dhcp"], INTERFACES, "the domain has no interface with the MAC 52:54:00:00:00:09"),
    (["2=dhcp"], INTERFACES, "the domain has no interface 2 with a MAC (it has 2 interfaces"),
    (["eth0=dhcp"], INTERFACES, "no interface whose target device is 'eth0'"),
    (["eth0=dhcp"], None, "build has no domain, so IFACE is the interface's MAC"),
    (["0=dhcp", f"{MAC0}=dhcp"], INTERFACES, f"names the interface {MAC0} twice"),
    ([f"{MAC0}=dhcp,name=a", f"{MAC1}=dhcp,name=a"], None, "two interfaces are given the same name="),
    (["\u00b2=dhcp"], INTERFACES, "no interface whose target device is '\u00b2'"),
    (["9" * 5000 + "=dhcp"], INTERFACES, "no interface whose target device is '999"),
    ([f"{MAC0}\n=dhcp"], None, "build has no domain, so IFACE is the interface's MAC"),
    ([f"{MAC0}\n=dhcp"], INTERFACES, "no interface whose target device is '52:54:00:12:34:56\\n'"),
    ([f"{MAC0}=dhcp,name=nic1", f"{MAC1}=10.1.1.1/24"], None, "name='nic1' is also the key network-config gives"),
    ([f"{MAC0}=dhcp", f"{MAC1}=dhcp,name=nic0"], None, "name='nic0' is also the key network-config gives"),
])
def test_net_interfaces_refused(texts, interfaces, fragment):
    with pytest.raises(PayloadhookError, match=re.escape(fragment)):
        nics(*texts, interfaces=interfaces)


@pytest.mark.parametrize("text,error,fragment", [
    (f"{MAC0}=192.0.2.10/33", PayloadError, "prefix '33' is not 1 to 32 for an IPv4 address"),
    (f"{MAC0}=192.0.2.10/x", PayloadError, "prefix 'x' is not 1 to 32"),
    (f"{MAC0}=2001:db8::1/129", PayloadError, "is not 1 to 128 for an IPv6 address"),
    (f"{MAC0}=192.0.2.10", UsageError, "is neither dhcp nor ADDR/PREFIX (the prefix is required)"),
    (f"{MAC0}=192.0.2.300/24", PayloadError, "address of '52:54:00:12:34:56' '192.0.2.300' is not an IP address"),
    (f"{MAC0}=192.0.2.0/24", PayloadError, "192.0.2.0 is the network's own or broadcast address"),
    (f"{MAC0}=192.0.2.10/24,gw=198.51.100.1", PayloadError, "gateway 198.51.100.1 is outside the network "
     "192.0.2.0/24"),
    (f"{MAC0}=192.0.2.10/24,gw=2001:db8::1", PayloadError, "gateway 2001:db8::1 is outside the network"),
    (f"{MAC0}=192.0.2.10/24,gw=192.0.2.10", PayloadError, "is the interface's own address"),
    (f"{MAC0}=dhcp,gw=192.0.2.1", UsageError, "gw= goes with a static address"),
    (f"{MAC0}=dhcp,dns=8.8.8", PayloadError, "dns server of '52:54:00:12:34:56' '8.8.8' is not an IP address"),
    (f"{MAC0}=dhcp,mtu=9000", UsageError, "'mtu=9000' is not gw=GW, dns=IP+IP or name=NAME"),
    (f"{MAC0}=dhcp,name=a,name=b", UsageError, "name is given twice"),
    (f"{MAC0}=dhcp,name=a/b", PayloadError, "name 'a/b' is not an interface name"),
    (f"{MAC0}=dhcp,name=eth0\n", PayloadError, "name 'eth0\\n' is not an interface name"),
    (f"{MAC0}=dhcp,name=.", PayloadError, "name '.' is not an interface name"),
    (f"{MAC0}=dhcp,name=..", PayloadError, "name '..' is not an interface name"),
    (f"{MAC0}=dhcp,name=abcdefghijklmnop", PayloadError, "is not an interface name (1 to 15 of"),
    (f"{MAC0}=dhcp,name=a b", PayloadError, "name 'a b' is not an interface name"),
    (f"{MAC0}=10.0.0.5/\u00b2", PayloadError, "is not 1 to 32 for an IPv4 address"),
    (f"{MAC0}=10.0.0.5/" + "2" * 5000, PayloadError, "is not 1 to 32 for an IPv4 address"),
    (f"{MAC0}=10.0.0.5/024", PayloadError, "is not 1 to 32 for an IPv4 address"),
    ("dhcp", UsageError, "'dhcp' is not IFACE=dhcp|ADDR/PREFIX"),
    (f"{MAC0}=2001:db8::5%x\n    up touch PWNED\n#/64", PayloadError, "is not an IP address"),
    (f"{MAC0}=2001:db8::5%eth0/64", PayloadError, "address of '52:54:00:12:34:56' '2001:db8::5%eth0'"),
    (f"{MAC0}=2001:db8::5/64,gw=2001:db8::1%eth0", PayloadError, "gateway of"),
    (f"{MAC0}=dhcp,dns=2001:db8::1%x\n  post-up touch PWNED", PayloadError, "dns server of"),
    (f"{MAC0}=dhcp,dns= 8.8.8.8", PayloadError, "is not an IP address"),
    (f"{MAC0}=\uff11\uff19\uff12.0.2.10/24", PayloadError, "is not an IP address"),
])
def test_net_specs_refused(text, error, fragment):
    with pytest.raises(error) as caught:
        network.parse(text)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_net_writes_each_address_in_its_canonical_form():
    nics = network.resolve((network.parse(f"{MAC0}=2001:DB8:0:0::5/64,gw=2001:db8::0:1,dns=2001:0DB8::53"),), None)
    config = network.network_config(nics).decode()
    data = json.loads(network.network_data(nics))
    assert "2001:db8::5/64" in config and "via: 2001:db8::1" in config and "- 2001:db8::53" in config
    assert "DB8" not in config and "0DB8" not in json.dumps(data)
    assert data["networks"][0]["ip_address"] == "2001:db8::5"
    assert data["networks"][0]["routes"][0]["gateway"] == "2001:db8::1"
    assert data["services"] == [{"type": "dns", "address": "2001:db8::53"}]


# -- the command: build ------------------------------------------------------------------------------

@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "ud").write_bytes(USER_DATA)
    (tmp_path / "md.json").write_bytes(b'{"uuid": "c0ffee00-0000-4000-8000-000000000001", "name": "build-box"}')
    (tmp_path / "nc").write_bytes(b"version: 2\nethernets: {}\n")
    (tmp_path / "bad").write_bytes(MARKER.encode())
    return tmp_path


def test_build_cloud_init_with_net_and_instance_id(inputs, golden):
    out = inputs / "seed.iso"
    result = run(["build", "--cloud-init", f"user-data={inputs}/ud", "--instance-id", "i-offline",
                  *[arg for text in NETS for arg in ("--net", text)], "-o", str(out)])
    assert result.returncode == 0, result.stderr
    files = readback.iso_files(str(out))
    assert files["meta-data"] == b'instance-id: "i-offline"\n'
    golden.compare("preset-net-network-config", files["network-config"], "yaml")


def test_build_config_drive_with_meta_data_and_net(inputs, golden):
    out = inputs / "cd.iso"
    result = run(["build", "--config-drive", f"user-data={inputs}/ud,meta-data={inputs}/md.json", *[
        arg for text in NETS for arg in ("--net", text)], "-o", str(out)])
    assert result.returncode == 0, result.stderr
    files = readback.iso_files(str(out))
    golden.compare("preset-config-drive-meta-data", files["openstack/latest/meta_data.json"], "json")
    golden.compare("preset-net-network-data", files["openstack/2018-08-27/network_data.json"], "json")


def test_build_cloud_init_on_a_floppy_labelled_cidata(inputs):
    out = inputs / "seed.img"
    assert run(["build", "--cloud-init", f"user-data={inputs}/ud", "--type", "floppy", "-o", str(out)]).returncode == 0
    assert readback.blkid(str(out))["LABEL"] == "CIDATA" and readback.blkid(str(out))["TYPE"] == "vfat"
    assert readback.fsck_fat(str(out)).returncode == 0
    files = readback.fat_files(str(out))
    assert set(files) == {"user-data", "meta-data"} and files["user-data"] == USER_DATA


def test_the_cidata_floppy_is_recognised_as_cloud_init():
    from payloadhook.presets import CLOUD_INIT, recognise
    payload = cloudinit.build({"user-data": USER_DATA}, DOMAIN, medium="floppy")
    assert (payload.type, payload.label, recognise(payload)) == ("floppy", "CIDATA", CLOUD_INIT)


def test_build_ovf_env_user_data_from_a_file(inputs):
    out = inputs / "ovf.iso"
    result = run(["build", "--ovf-env", f"hostname=vm1,user-data={inputs}/ud", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    root = etree.fromstring(readback.iso_files(str(out))["ovf-env.xml"])
    values = {p.get("{http://schemas.dmtf.org/ovf/environment/1}key"): p.get(
        "{http://schemas.dmtf.org/ovf/environment/1}value") for p in root.iter("{*}Property")}
    assert base64.b64decode(values["user-data"]) == USER_DATA and values["hostname"] == "vm1"
    result = run(["build", "--ovf-env", "user-data=-", "-o", str(inputs / "stdin.iso")], USER_DATA)
    assert result.returncode == 0, result.stderr


B64_MARKER = base64.b64encode(MARKER.encode()).decode()


@pytest.mark.parametrize("argv,status,fragment", [
    (["--cloud-init", "user-data={d}/ud", "--instance-id", "stable"], 1,
     "--instance-id stable is the domain's UUID, and build has no domain"),
    (["--cloud-init", "user-data={d}/ud", "--instance-id", "a/b"], 2, "--instance-id 'a/b' is not one path component"),
    (["--cloud-init", "user-data={d}/ud", "--instance-id", ""], 2, "--instance-id: give stable, content or a value"),
    (["--cloud-init", "user-data={d}/ud,meta-data={d}/nc", "--instance-id", "x"], 2,
     "a given meta-data=F holds its own instance-id"),
    (["--cloud-init", "user-data={d}/ud,network-config={d}/nc", "--net", f"{MAC0}=dhcp"], 2,
     "--net makes the network-config; give either --net or --cloud-init network-config=F"),
    (["--config-drive", "user-data={d}/ud,network-data={d}/md.json", "--net", f"{MAC0}=dhcp"], 2,
     "give either --net or --config-drive network-data=F"),
    (["--sysprep", "{d}/ud", "--net", f"{MAC0}=dhcp"], 2, "--net and --instance-id go with --cloud-init and"),
    (["--type", "cdrom", "{d}/ud", "--instance-id", "x"], 2, "--net and --instance-id go with --cloud-init and"),
    (["--cloud-init", "user-data={d}/ud", "--net", "eth0=dhcp"], 2, "build has no domain, so IFACE is the"),
    (["--cloud-init", "user-data={d}/ud", "--net", f"{MAC0}=192.0.2.1/40"], 1, "prefix '40' is not 1 to 32"),
    (["--config-drive", "user-data={d}/ud", "--net", f"{MAC0}=192.0.2.5/24,gw=192.0.3.1"], 1,
     "gateway 192.0.3.1 is outside the network 192.0.2.0/24"),
    (["--config-drive", "user-data={d}/ud,meta-data={d}/nc"], 1, "--config-drive meta-data is not valid JSON"),
    (["--config-drive", "user-data={d}/ud,meta-data={d}/md.json", "--instance-id", "x"], 1,
     "gives a uuid, and --instance-id another"),
    (["--config-drive", "user-data={d}/ud", "--type", "floppy"], 2, "--type goes with --sysprep and --cloud-init"),
    (["--ovf-env", "user-data=notbase64!"], 1, "--ovf-env user-data is neither base64 nor a file"),
    (["--ovf-env", f"user-data={B64_MARKER}"], 1, "--ovf-env user-data does not start with a header cloud-init"),
    (["--ovf-env", "user-data={d}/bad"], 1, "--ovf-env user-data does not start with a header cloud-init"),
    (["--ovf-env", "user-data={d}/missing"], 1, "--ovf-env user-data: {d}/missing does not exist"),
])
def test_build_refusals_write_nothing(inputs, argv, status, fragment):
    out = inputs / "out.img"
    result = run(["build", *[a.format(d=inputs) for a in argv], "-o", str(out)])
    stderr = result.stderr.decode()
    assert result.returncode == status, stderr
    assert fragment.format(d=inputs) in stderr and stderr.count("\n") == 1 and MARKER not in stderr
    assert not out.exists()


def test_a_given_ovf_document_holds_base64_user_data(inputs):
    document = (b'<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" '
                b'xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"><PropertySection>'
                b'<Property oe:key="user-data" oe:value="#cloud-config"/></PropertySection></Environment>')
    (inputs / "env.xml").write_bytes(document)
    result = run(["build", "--ovf-env", str(inputs / "env.xml"), "-o", str(inputs / "o.iso")])
    assert result.returncode == 1 and b"--ovf-env user-data is neither base64 nor a file" in result.stderr
