"""The presets judged by their consumers' own code: Debian's cloud-init package (22.4 on
Debian 12; tests/run-all installs it, disabled), imported from /usr/lib/python3/dist-packages.
Each image is built by the command, extracted with xorriso (Rock Ridge, as Linux mounts
it), and read by cloud-init's readers, which must return exactly what was given.

- NoCloud: ``util.pathprefix2dict`` with DataSourceNoCloud's required and optional names,
  then its seed merge (``_merge_new_seed``: ``util.load_yaml`` of meta-data and
  network-config); the label through ``util.find_devs_with`` (blkid), as it finds seeds.
- Config drive: ``DataSourceConfigDrive.read_config_drive``, and the version its reader picks.
- OVF: ``DataSourceOVF.get_ovf_env`` and ``read_ovf_environment``.
- User data: cloud-init's ``UserDataProcessor`` recognises what our check accepts, and
  nothing of what it refuses for want of a header.
"""

import base64
import gzip
import json
import os
import subprocess
import sys
import tempfile

import pytest

from payloadhook.cli import main
from payloadhook.errors import PayloadError
from payloadhook.media import write_image
from payloadhook.presets import Identity, cloudinit, configdrive, ovfenv
from payloadhook.presets.formats import check_user_data
from tests.conftest import MARKER
from tests.test_presets import DOMAIN, GOOD_USER_DATA, NETWORK_V2, USER_DATA, UUID

try:
    sys.path.append("/usr/lib/python3/dist-packages")
    import cloudinit as _cloudinit  # noqa: F401
    from cloudinit import helpers, user_data, util
    from cloudinit.sources import DataSourceConfigDrive, DataSourceNoCloud, DataSourceOVF
    from cloudinit.sources.helpers import openstack
except ImportError as exc:   # a failure, not a skip: these tests are the proof
    raise ImportError(f"Debian's cloud-init package is needed here (tests/run-all installs it): {exc}") from None

NOCLOUD = {"required": ["user-data", "meta-data"], "optional": ["vendor-data", "network-config"]}
META_DATA = b"instance-id: iid-given\nlocal-hostname: given\npublic-keys: [ssh-ed25519 AAAA " + MARKER.encode() + b"]\n"
VENDOR_DATA = b"#cloud-config\npackages: [htop]\n"


def extract(image, into):
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(image), "-extract", "/", str(into)], check=True,
                   capture_output=True)
    return str(into)


def write(payload, path):
    with open(path, "wb") as stream:
        write_image(payload, stream)
    return path


def found_by_label(image, label):
    """cloud-init's own device search (blkid), pointed at the image."""
    return util.find_devs_with(f"LABEL={label}", no_cache=True, path=str(image)) == [str(image)]


def nocloud_seed(directory):
    """What DataSourceNoCloud makes of a seed directory (its _get_data, less the devices)."""
    seeded = util.pathprefix2dict(directory, **NOCLOUD)
    return DataSourceNoCloud._merge_new_seed({"meta-data": {}, "user-data": b"", "vendor-data": b""}, seeded)


# -- NoCloud ----------------------------------------------------------------------------------

def test_nocloud_reads_back_what_build_was_given(tmp_path):
    for name, content in (("ud", USER_DATA), ("md", META_DATA), ("nc", NETWORK_V2), ("vd", VENDOR_DATA)):
        (tmp_path / name).write_bytes(content)
    image = tmp_path / "seed.iso"
    assert main(["build", "--cloud-init", f"user-data={tmp_path}/ud,meta-data={tmp_path}/md,"
                 f"network-config={tmp_path}/nc,vendor-data={tmp_path}/vd", "-o", str(image)]) == 0
    assert found_by_label(image, "cidata")
    seed = nocloud_seed(extract(image, tmp_path / "x"))
    assert seed["user-data"] == USER_DATA and seed["vendor-data"] == VENDOR_DATA
    assert seed["meta-data"] == util.load_yaml(META_DATA) == {
        "instance-id": "iid-given", "local-hostname": "given", "public-keys": [f"ssh-ed25519 AAAA {MARKER}"]}
    assert seed["network-config"] == {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}}


def test_nocloud_generated_meta_data_names_the_domain(tmp_path):
    image = write(cloudinit.build({"user-data": USER_DATA}, DOMAIN), tmp_path / "seed.iso")
    seed = nocloud_seed(extract(image, tmp_path / "x"))
    assert seed["meta-data"] == {"instance-id": UUID, "local-hostname": "web-01-example"}
    assert seed["user-data"] == USER_DATA and "network-config" not in seed


def test_nocloud_generated_meta_data_of_build(tmp_path):
    (tmp_path / "ud").write_bytes(USER_DATA)
    image = tmp_path / "seed.iso"
    assert main(["build", "--cloud-init", f"user-data={tmp_path}/ud", "-o", str(image)]) == 0
    seed = nocloud_seed(extract(image, tmp_path / "x"))
    assert set(seed["meta-data"]) == {"instance-id"} and seed["meta-data"]["instance-id"].startswith("iid-")


# -- config drive -----------------------------------------------------------------------------

NETWORK_DATA = {"links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}],
                "networks": [{"id": "n0", "link": "eth0", "type": "ipv4_dhcp"}], "services": []}
VENDOR_JSON = {"cloud-init": "#cloud-config\npackages: [htop]\n"}


def test_config_drive_reads_back_what_was_given(tmp_path):
    parts = {"user-data": USER_DATA, "network-data": json.dumps(NETWORK_DATA).encode(),
             "vendor-data": json.dumps(VENDOR_JSON).encode()}
    configdrive.check(parts, 1 << 20)
    image = write(configdrive.build(parts, DOMAIN), tmp_path / "cd.iso")
    assert found_by_label(image, "config-2")
    root = extract(image, tmp_path / "x")
    # the reader picks the newest dated version it knows, which we write besides latest
    assert openstack.ConfigDriveReader(root)._find_working_version() == "2018-08-27"
    results = DataSourceConfigDrive.read_config_drive(root)
    assert results["version"] == 2
    assert results["userdata"] == USER_DATA
    assert results["networkdata"] == NETWORK_DATA and results["vendordata"] == VENDOR_JSON
    assert results["files"] == {}
    metadata = results["metadata"]
    assert (metadata["uuid"], metadata["instance-id"], metadata["name"], metadata["hostname"],
            metadata["local-hostname"]) == (UUID, UUID, "web_01.Example", "web-01-example", "web-01-example")


def test_config_drive_latest_serves_a_reader_that_knows_no_dated_version(tmp_path):
    image = write(configdrive.build({"user-data": USER_DATA}, DOMAIN), tmp_path / "cd.iso")
    root = extract(image, tmp_path / "x")
    subprocess.run(["rm", "-r", os.path.join(root, "openstack", "2018-08-27")], check=True)
    assert openstack.ConfigDriveReader(root)._find_working_version() == "latest"
    results = DataSourceConfigDrive.read_config_drive(root)
    assert results["userdata"] == USER_DATA and results["metadata"]["instance-id"] == UUID


def test_config_drive_of_build_has_an_instance_id(tmp_path):
    (tmp_path / "ud").write_bytes(USER_DATA)
    image = tmp_path / "cd.iso"
    assert main(["build", "--config-drive", f"user-data={tmp_path}/ud", "-o", str(image)]) == 0
    results = DataSourceConfigDrive.read_config_drive(extract(image, tmp_path / "x"))
    assert results["userdata"] == USER_DATA and results["metadata"]["instance-id"]


# -- OVF environment ----------------------------------------------------------------------------

def test_ovf_environment_from_properties(tmp_path):
    network = b"network:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}\n"
    properties = (f"instance-id=iid-ovf,hostname=vm1,password={MARKER},"
                  f"user-data={base64.b64encode(USER_DATA).decode()},"
                  f"network-config={base64.b64encode(network).decode()}")
    image = tmp_path / "ovf.iso"
    assert main(["build", "--ovf-env", properties, "-o", str(image)]) == 0
    name, contents = DataSourceOVF.get_ovf_env(extract(image, tmp_path / "x"))
    assert name == "ovf-env.xml"
    metadata, userdata, config = DataSourceOVF.read_ovf_environment(contents, read_network=True)
    assert userdata == USER_DATA
    assert metadata == {"instance-id": "iid-ovf", "local-hostname": "vm1",
                        "network-config": {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}}}
    assert config == {"password": MARKER}


def test_ovf_environment_given_whole_for_a_domain(tmp_path):
    document = ovfenv.document({"hostname": "vm1", "seedfrom": "http://192.0.2.1/"}, Identity(name="vm1"))
    (tmp_path / "env.xml").write_bytes(document)
    image = tmp_path / "ovf.iso"
    assert main(["build", "--ovf-env", str(tmp_path / "env.xml"), "-o", str(image)]) == 0
    name, contents = DataSourceOVF.get_ovf_env(extract(image, tmp_path / "x"))
    assert contents.encode() == document
    assert DataSourceOVF.read_ovf_environment(contents) == ({"local-hostname": "vm1",
                                                             "seedfrom": "http://192.0.2.1/"}, None, {})


def test_a_document_our_check_refuses_breaks_cloud_inits_reader():
    """The Property rule of ovfenv.check is cloud-init's: without oe:key its reader fails."""
    bad = (b'<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"><PropertySection>'
           b'<Property key="a" value="b"/></PropertySection></Environment>')
    with pytest.raises(Exception):
        DataSourceOVF.read_ovf_environment(bad.decode())


# -- user data: our check and cloud-init agree ----------------------------------------------

def content_types(data):
    paths = helpers.Paths({"cloud_dir": tempfile.mkdtemp()})
    message = user_data.UserDataProcessor(paths).process(data)
    return [part.get_content_type() for part in message.walk() if not part.is_multipart()]


@pytest.mark.parametrize("data", [d for d in GOOD_USER_DATA if not d.startswith(b"#include")])
def test_cloud_init_recognises_the_user_data_we_accept(data):
    check_user_data(data, "user-data", 1 << 20)
    types = content_types(data)
    assert types and "text/x-not-multipart" not in types


def test_cloud_init_recognises_include():
    from cloudinit import handlers
    assert handlers.type_from_starts_with(b"#include\nhttps://example.com/x\n") == "text/x-include-url"


@pytest.mark.parametrize("data", [b"", MARKER.encode() + b"\n", b"cloud-config\n", b"\xff#!/bin/sh\n",
                                  b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: "
                                  b"text/cloud-config\n\na: 1\n--b--\n", gzip.compress(MARKER.encode(), mtime=0)])
def test_cloud_init_ignores_the_user_data_we_refuse_for_want_of_a_header(data):
    with pytest.raises(PayloadError, match="header"):
        check_user_data(data, "user-data", 1 << 20)
    assert content_types(data) == ["text/x-not-multipart"]
