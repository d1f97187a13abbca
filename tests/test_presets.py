"""Presets (README, "Presets"): what each lays out, what each refuses, and the flags of
``build`` (attach and run-once share the same code: tests/test_presets_guest.py runs them
through a real libvirtd). cloud-init's own readers judge the images in
tests/test_presets_consumers.py."""

import gzip
import json
import os
import subprocess
import sys

import pytest

from payloadhook.cli import main
from payloadhook.errors import PayloadError, XMLError
from payloadhook.model import Payload, PayloadFile
from payloadhook.presets import (
    CLOUD_INIT,
    CONFIG_DRIVE,
    OVF_ENV,
    SYSPREP,
    Identity,
    cloudinit,
    configdrive,
    ovfenv,
    recognise,
    sysprep,
)
from payloadhook.presets.formats import check_user_data
from tests.conftest import MARKER
from tests.harness import readback

UUID = "3f2c1b7e-9d4a-4e8b-a1c2-6f5e4d3c2b1a"
DOMAIN = Identity(uuid=UUID, name="web_01.Example")
USER_DATA = b"#cloud-config\nruncmd: [echo " + MARKER.encode() + b"]\n"
NETWORK_V2 = b"version: 2\nethernets:\n  eth0: {dhcp4: true}\n"
ANSWER = (b'<?xml version="1.0" encoding="utf-8"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend">'
          b"<!-- " + MARKER.encode() + b" --></unattend>\n")
LIMIT = 16 * 1024 * 1024


def files_of(payload):
    return {f.name: f.content for f in payload.files}


# -- what each preset lays out ---------------------------------------------------------------

def test_cloud_init_generates_meta_data_from_the_domain():
    parts = {"user-data": USER_DATA, "network-config": NETWORK_V2}
    payload = cloudinit.build(parts, DOMAIN)
    assert (payload.type, payload.label) == ("cdrom", "cidata")
    assert files_of(payload) == {"user-data": USER_DATA, "network-config": NETWORK_V2,
                                 "meta-data": f'instance-id: "{UUID}"\nlocal-hostname: "web-01-example"\n'.encode()}


def test_cloud_init_keeps_a_given_meta_data():
    parts = {"user-data": USER_DATA, "meta-data": b"instance-id: mine\n", "vendor-data": b"#!/bin/sh\n"}
    assert files_of(cloudinit.build(parts, DOMAIN)) == parts


def test_build_without_a_domain_makes_the_instance_id_from_the_files():
    """Same seed, same instance; a changed network-config is a new instance (cloud-init applies
    first-boot network configuration per instance)."""
    first = files_of(cloudinit.build({"user-data": USER_DATA}, Identity()))["meta-data"]
    again = files_of(cloudinit.build({"user-data": USER_DATA}, Identity()))["meta-data"]
    other = files_of(cloudinit.build({"user-data": USER_DATA, "network-config": NETWORK_V2}, Identity()))["meta-data"]
    assert first == again and first != other
    assert first.startswith(b'instance-id: "iid-') and b"local-hostname" not in first


def test_config_drive_writes_latest_and_the_newest_dated_version():
    parts = {"user-data": USER_DATA, "network-data": b'{"links": [], "networks": [], "services": []}',
             "vendor-data": b"{}"}
    payload = configdrive.build(parts, DOMAIN)
    assert (payload.type, payload.label) == ("cdrom", "config-2")
    files = files_of(payload)
    for version in ("latest", "2018-08-27"):
        assert files[f"openstack/{version}/user_data"] == USER_DATA
        assert files[f"openstack/{version}/network_data.json"] == parts["network-data"]
        assert files[f"openstack/{version}/vendor_data.json"] == b"{}"
        assert json.loads(files[f"openstack/{version}/meta_data.json"]) == {
            "uuid": UUID, "name": "web_01.Example", "hostname": "web-01-example", "files": []}
    assert len(files) == 8


@pytest.mark.parametrize("medium", ["floppy", "cdrom"])
def test_sysprep_writes_both_names_windows_searches(medium):
    payload = sysprep.build(ANSWER, medium)
    assert payload.type == medium
    assert files_of(payload) == {"Autounattend.xml": ANSWER, "Unattend.xml": ANSWER}


def test_ovf_env_from_properties_reads_back_as_given():
    properties = ovfenv.parse_properties("hostname=vm1,user-data=I2Nsb3VkLWNvbmZpZwo=,note=a=b")
    assert properties == {"hostname": "vm1", "user-data": "I2Nsb3VkLWNvbmZpZwo=", "note": "a=b"}
    document = ovfenv.document(properties, Identity(name="vm1"))
    ovfenv.check(document)
    payload = ovfenv.build(document)
    assert (payload.type, [f.name for f in payload.files]) == ("cdrom", ["ovf-env.xml"])
    from lxml import etree
    ns = "{http://schemas.dmtf.org/ovf/environment/1}"
    root = etree.fromstring(document)
    assert root.get(ns + "id") == "vm1"
    assert [(p.get(ns + "key"), p.get(ns + "value")) for p in root.iter(ns + "Property")] == list(properties.items())


@pytest.mark.parametrize("name,host", [("vm1", "vm1"), ("Web Server #2", "web-server-2"), ("日本", None),
                                       ("x" * 80, "x" * 63), (None, None)])
def test_hostnames_are_rfc1123_labels(name, host):
    assert Identity(name=name).hostname == host


# -- refusals: one line, no content ------------------------------------------------------------

GOOD_USER_DATA = [b"#cloud-config\n", b"#!/bin/sh\nprintf '\xff\xfe'\n", b"  #Cloud-Config\nusers: []\n", b"#!/bin/sh\necho hi\n",
                  b"#include\nhttps://example.com/x\n", b"## template: jinja\n#cloud-config\n{{ v }}\n",
                  b"#cloud-boothook\n#!/bin/sh\n", b"#part-handler\n", b"#cloud-config-archive\n- type: text/cloud-config\n  content: 'a: 1'\n",
                  b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                  b"Content-Type: text/cloud-config\n\na: 1\n--b--\n",
                  gzip.compress(b"#cloud-config\n{}\n", mtime=0)]


@pytest.mark.parametrize("data", GOOD_USER_DATA)
def test_user_data_cloud_init_recognises(data):
    check_user_data(data, "user-data", LIMIT)


@pytest.mark.parametrize("data,fragment", [
    (b"", "does not start with a header cloud-init recognises"),
    (MARKER.encode() + b"\n", "does not start with a header cloud-init recognises"),
    (b"cloud-config\n", "does not start with a header"),
    (b"#cloud-config\n- " + MARKER.encode() + b"\n", "#cloud-config but not a YAML mapping"),
    (b"#cloud-config\nkey: [" + MARKER.encode() + b"\n", "is not valid YAML, line"),
    (b"#cloud-config\nkey: \xff\xfe", "is not UTF-8 text"),
    (b"Content-Type: multipart/mixed; boundary=b\n\n--b--\n", "without a MIME-Version header"),
    (gzip.compress(MARKER.encode(), mtime=0), "does not start with a header"),
    (gzip.compress(gzip.compress(b"#!", mtime=0), mtime=0), "gzip within gzip"),
    (gzip.compress(b"#!" + b"\0" * (LIMIT + 10), mtime=0), "decompresses to over"),
    (gzip.compress(b"#!/bin/sh\n", mtime=0)[:-12], "truncated gzip"),
    (b"\x1f\x8bnot gzip", "does not decompress"),
    # mime-version: in a comment makes no MIME message of a #cloud-config: its YAML is read
    (b"#cloud-config\n# mime-version: 1.0\nkey: [" + MARKER.encode() + b"\n", "is not valid YAML, line"),
])
def test_user_data_refused(data, fragment):
    with pytest.raises(PayloadError) as refused:
        check_user_data(data, "--cloud-init user-data", LIMIT)
    message = str(refused.value)
    assert fragment in message and message.startswith("--cloud-init user-data") and MARKER not in message
    assert "\n" not in message


@pytest.mark.parametrize("parts,fragment", [
    ({"meta-data": b"- " + MARKER.encode()}, "--cloud-init meta-data is not a YAML mapping"),
    ({"meta-data": b"a: b: c"}, "--cloud-init meta-data is not valid YAML"),
    ({"network-config": b"version: 3\n"}, "--cloud-init network-config has no 'version: 1' or 'version: 2'"),
    ({"network-config": b"ethernets: {}\n"}, "has no 'version: 1'"),
    ({"network-config": b"version: true\n"}, "has no 'version: 1'"),
    ({"network-config": b""}, "network-config is not a YAML mapping"),
    ({"vendor-data": b"plain text"}, "--cloud-init vendor-data does not start with a header"),
])
def test_cloud_init_parts_refused(parts, fragment):
    with pytest.raises(PayloadError, match=fragment):
        cloudinit.check({"user-data": USER_DATA, **parts}, LIMIT)


@pytest.mark.parametrize("data", [b"version: 1\nconfig: []\n", NETWORK_V2, b"network:\n  version: 2\n"])
def test_network_config_versions_cloud_init_reads(data):
    cloudinit.check({"user-data": USER_DATA, "network-config": data, "meta-data": b""}, LIMIT)


@pytest.mark.parametrize("parts,fragment", [
    ({"user-data": b"echo"}, "--config-drive user-data does not start with a header"),
    ({"network-data": b"[]"}, "--config-drive network-data is not a JSON object"),
    ({"network-data": b"{"}, "--config-drive network-data is not valid JSON"),
    ({"vendor-data": b"1"}, "--config-drive vendor-data is not a JSON object, list or string"),
    ({"network-data": b'{"mtu": ' + b"9" * 5000 + b"}"}, "--config-drive network-data holds a number too long"),
])
def test_config_drive_parts_refused(parts, fragment):
    with pytest.raises(PayloadError, match=fragment):
        configdrive.check({"user-data": USER_DATA, **parts}, LIMIT)


@pytest.mark.parametrize("data,fragment", [
    (b"", "not well-formed XML"),
    (b"<unattend>" + MARKER.encode(), "not well-formed XML"),
    (b"<unattend/>", "not <unattend> in the namespace urn:schemas-microsoft-com:unattend"),
    (b'<settings xmlns="urn:schemas-microsoft-com:unattend"/>', "is not an answer file"),
    # a namespace is document text: the refusal never quotes it (it could hold a password)
    (b'<unattend xmlns="urn:x:AdminPassword=' + MARKER.encode() + b'"/>', "is not an answer file"),
    (b'<!DOCTYPE u [<!ENTITY e "x">]><unattend xmlns="urn:schemas-microsoft-com:unattend">&e;</unattend>',
     "DOCTYPE"),
    ('<unattend xmlns="urn:schemas-microsoft-com:unattend"/>'.encode("utf-16"), "not in UTF-8"),
])
def test_answer_files_refused(data, fragment):
    with pytest.raises((PayloadError, XMLError)) as refused:
        sysprep.check(data)
    assert fragment in str(refused.value) and str(refused.value).startswith("--sysprep answer file")
    assert MARKER not in str(refused.value)


@pytest.mark.parametrize("text,fragment", [
    ("a=1,b", "property 'b' is not KEY=VALUE"),
    ("=1", "is not KEY=VALUE"),
    ("a=1,a=2", "property 'a' is given twice"),
    ("a=\x01", "holds a character XML cannot carry"),
])
def test_ovf_properties_refused(text, fragment):
    with pytest.raises(PayloadError, match=fragment):
        ovfenv.parse_properties(text)


@pytest.mark.parametrize("data,fragment", [
    (b"<Environment/>", "has no <Environment> root"),
    (b'<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"/>', "has no <PropertySection>"),
    (b'<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"><PropertySection><Property key="a" '
     b'value="b"/></PropertySection></Environment>', "<Property> 1 lacks oe:key or oe:value"),
])
def test_ovf_documents_refused(data, fragment):
    with pytest.raises(PayloadError, match=fragment):
        ovfenv.check(data)


# -- show names them ---------------------------------------------------------------------------

def test_recognise_each_preset_and_nothing_else():
    assert recognise(cloudinit.build({"user-data": USER_DATA}, DOMAIN)) == CLOUD_INIT
    assert recognise(configdrive.build({"user-data": USER_DATA}, DOMAIN)) == CONFIG_DRIVE
    assert recognise(sysprep.build(ANSWER, "floppy")) == SYSPREP
    assert recognise(sysprep.build(ANSWER, "cdrom")) == SYSPREP
    assert recognise(Payload("floppy", (PayloadFile("Unattend.xml", ANSWER),))) == SYSPREP   # oVirt's floppy
    assert recognise(ovfenv.build(ovfenv.document({"a": "b"}, DOMAIN))) == OVF_ENV
    # laid out by hand: no preset, whatever the label
    assert recognise(Payload("cdrom", (PayloadFile("user-data", b""), PayloadFile("meta-data", b"")))) is None
    assert recognise(Payload("cdrom", (PayloadFile("user-data", b""), PayloadFile("meta-data", b""),
                                       PayloadFile("extra", b"")), volume_id="cidata")) is None
    assert recognise(Payload("floppy", (PayloadFile("Unattend.xml", b""), PayloadFile("setup.cmd", b"")))) is None


# -- the build command's flags ----------------------------------------------------------------

def run(argv, stdin=b"", timeout=120):
    return subprocess.run([sys.executable, "-m", "payloadhook.cli", *argv], input=stdin, capture_output=True,
                          timeout=timeout)


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "user-data").write_bytes(USER_DATA)
    (tmp_path / "network-config").write_bytes(NETWORK_V2)
    (tmp_path / "answer.xml").write_bytes(ANSWER)
    (tmp_path / "bad").write_bytes(MARKER.encode())
    return tmp_path


def test_build_cloud_init_like_cloud_localds(inputs):
    out = inputs / "seed.iso"
    assert main(["build", "--cloud-init", f"user-data={inputs}/user-data,network-config={inputs}/network-config",
                 "-o", str(out)]) == 0
    files = readback.iso_files(str(out))
    assert files["user-data"] == USER_DATA and files["network-config"] == NETWORK_V2
    assert files["meta-data"].startswith(b'instance-id: "iid-') and set(files) == {"user-data", "network-config",
                                                                                   "meta-data"}
    assert readback.blkid(str(out))["LABEL"] == "cidata"


def test_build_sysprep_is_a_floppy_unless_type_cdrom(inputs):
    out = inputs / "a.img"
    assert main(["build", "--sysprep", str(inputs / "answer.xml"), "-o", str(out)]) == 0
    assert readback.fat_files(str(out)) == {"Autounattend.xml": ANSWER, "Unattend.xml": ANSWER}
    assert readback.fsck_fat(str(out)).returncode == 0
    assert main(["build", "--sysprep", str(inputs / "answer.xml"), "--type", "cdrom", "-o", str(inputs / "a.iso")]) == 0
    assert readback.iso_files(str(inputs / "a.iso")) == {"Autounattend.xml": ANSWER, "Unattend.xml": ANSWER}


def test_files_from_standard_input_and_from_files_json(inputs):
    """json:NAME keeps content off the command line and out of files (the web console's way)."""
    document = json.dumps({"files": [{"name": "ud", "content": __import__("base64").b64encode(USER_DATA).decode()},
                                     {"name": "net", "content": __import__("base64").b64encode(NETWORK_V2).decode()}]})
    out = inputs / "j.iso"
    result = run(["build", "--config-drive", "user-data=json:ud,network-data=json:net", "--files-json", "-",
                  "-o", str(out)], document.encode())
    assert result.returncode == 1 and b"--config-drive network-data is not valid JSON" in result.stderr
    result = run(["build", "--cloud-init", "user-data=json:ud,network-config=json:net", "--files-json", "-",
                  "-o", str(out)], document.encode())
    assert result.returncode == 0, result.stderr
    assert readback.iso_files(str(out))["network-config"] == NETWORK_V2
    result = run(["build", "--sysprep", "-", "-o", str(inputs / "s.img")], ANSWER)
    assert result.returncode == 0, result.stderr
    assert readback.fat_files(str(inputs / "s.img"))["Unattend.xml"] == ANSWER


@pytest.mark.parametrize("argv,status,fragment", [
    (["--cloud-init", "user-data={d}/bad"], 1, "--cloud-init user-data does not start with a header cloud-init "
     "recognises"),
    (["--cloud-init", "user-data={d}/user-data,network-config={d}/user-data"], 1,
     "--cloud-init network-config has no 'version: 1' or 'version: 2'"),
    (["--cloud-init", "meta-data={d}/user-data"], 2, "--cloud-init: user-data=F is required"),
    (["--cloud-init", "userdata={d}/user-data"], 2, "'userdata' is not one of user-data, meta-data"),
    (["--cloud-init", "user-data={d}/user-data,user-data={d}/user-data"], 2, "user-data is given twice"),
    (["--cloud-init", "user-data={d}/missing"], 1, "--cloud-init user-data: {d}/missing does not exist"),
    (["--cloud-init", "user-data=/dev/zero"], 1, "is a character device, not a regular file"),
    (["--cloud-init", "user-data={d}/user-data", "--label", "x"], 2, "needs the label cidata"),
    (["--config-drive", "user-data={d}/user-data", "--type", "floppy"], 2, "--type goes with --sysprep and --cloud-init only"),
    (["--cloud-init", "user-data={d}/user-data", "{d}/bad"], 2, "lays out its own files"),
    (["--cloud-init", "user-data=json:u"], 2, "names 'json:u' but no --files-json document was given"),
    (["--cloud-init", "user-data=-,network-config=-"], 2, "standard input (-) is already taken"),
    (["--cloud-init", "user-data=-", "--files-json", "-"], 2, "standard input (-) is already taken"),
    (["--config-drive", "user-data={d}/answer.xml"], 1, "--config-drive user-data does not start with a header"),
    (["--sysprep", "{d}/user-data"], 1, "--sysprep answer file is not well-formed XML"),
    (["--sysprep", "{d}/answer.xml", "--type", "floppy", "--label", "much too long"], 1, "longer than 11"),
    (["--ovf-env", "{d}/answer.xml"], 1, "--ovf-env document has no <Environment> root"),
    (["--ovf-env", "a=1,b"], 1, "--ovf-env property 'b' is not KEY=VALUE"),
    (["--cloud-init", "user-data={d}/user-data", "--sysprep", "{d}/answer.xml"], 2, "not allowed with argument"),
    ([], 2, "give --type cdrom|floppy|network|fwcfg and the files, or a preset"),
])
def test_build_refusals_write_nothing(inputs, argv, status, fragment):
    out = inputs / "out.img"
    argv = [a.format(d=inputs) for a in argv]
    result = run(["build", *argv, "-o", str(out)])
    stderr = result.stderr.decode()
    assert result.returncode == status, stderr
    assert fragment.format(d=inputs) in stderr and stderr.count("\n") == 1 and MARKER not in stderr
    assert not out.exists()


def test_an_unused_files_json_entry_is_refused(inputs):
    document = json.dumps({"files": [{"name": "extra", "content": "eA=="}]})
    result = run(["build", "--sysprep", str(inputs / "answer.xml"), "--files-json", "-", "-o", str(inputs / "x")],
                 document.encode())
    assert result.returncode == 2 and b"--files-json file 'extra' is not named by the preset" in result.stderr
    assert not os.path.exists(inputs / "x")


def test_one_files_json_entry_may_serve_two_parts_but_names_are_unique(inputs):
    content = __import__("base64").b64encode(b"#cloud-config\n").decode()
    out = inputs / "x.iso"
    result = run(["build", "--cloud-init", "user-data=json:u,vendor-data=json:u", "--files-json", "-", "-o", str(out)],
                 json.dumps({"files": [{"name": "u", "content": content}]}).encode())
    assert result.returncode == 0, result.stderr
    assert readback.iso_files(str(out))["vendor-data"] == b"#cloud-config\n"
    out.unlink()
    result = run(["build", "--cloud-init", "user-data=json:u", "--files-json", "-", "-o", str(out)],
                 json.dumps({"files": [{"name": "u", "content": content}] * 2}).encode())
    assert result.returncode == 1 and b"--files-json: file 'u' appears twice" in result.stderr
    assert not out.exists()


def test_standard_input_is_bounded_by_max_file_size(inputs, monkeypatch):
    conf = inputs / "small.conf"
    conf.write_text("[payloadhook]\nmax_file_size = 1024\n")
    result = subprocess.run([sys.executable, "-m", "payloadhook.cli", "build", "--sysprep", "-", "-o",
                             str(inputs / "x")], input=ANSWER + b" " * 2048, capture_output=True,
                            env={**os.environ, "PAYLOADHOOK_CONF": str(conf)})
    assert result.returncode == 1 and b"standard input is over max_file_size (1024 bytes)" in result.stderr
    assert not os.path.exists(inputs / "x")


@pytest.mark.parametrize("document", [b"a: " + b"[" * 100000 + b"]" * 100000,
                                      b"".join(b" " * i + b"a:\n" for i in range(3000))])
def test_deeply_nested_yaml_is_refused_not_a_crash(inputs, document):
    """libyaml composes by recursion in C: this nesting crashed the command (a segfault)
    before the depth was measured on its flat event stream."""
    (inputs / "deep").write_bytes(b"#cloud-config\n" + document)
    (inputs / "meta").write_bytes(document)
    for parts in (f"user-data={inputs}/deep", f"user-data={inputs}/user-data,meta-data={inputs}/meta"):
        result = run(["build", "--cloud-init", parts, "-o", str(inputs / "x.iso")])
        assert result.returncode == 1 and b"nests collections over 100 levels deep" in result.stderr
    assert not (inputs / "x.iso").exists()


@pytest.mark.parametrize("part", ["user-data", "meta"])
def test_yaml_that_grows_through_aliases_is_refused_at_once(inputs, part):
    """The billion laughs of YAML: each level of merge keys over aliases multiplies the work by
    eight (a 645-byte file ran for minutes). Refused on the event stream, before composing."""
    levels = [b"l0: &l0 {a: 1}"] + [b"l%d: &l%d {<<: [%s]}" % (i, i, b", ".join([b"*l%d" % (i - 1)] * 8))
                                    for i in range(1, 12)]
    bomb = b"\n".join(levels) + b"\n"
    (inputs / "bomb").write_bytes((b"#cloud-config\n" if part == "user-data" else b"") + bomb)
    parts = (f"user-data={inputs}/bomb" if part == "user-data"
             else f"user-data={inputs}/user-data,meta-data={inputs}/bomb")
    result = run(["build", "--cloud-init", parts, "-o", str(inputs / "x.iso")], timeout=30)
    assert result.returncode == 1 and b"nodes through its aliases" in result.stderr
    assert result.stderr.count(b"\n") == 1 and not (inputs / "x.iso").exists()


def test_a_few_aliases_are_fine(inputs):
    (inputs / "ud").write_bytes(b"#cloud-config\nbase: &b {a: 1, b: 2}\nx: {<<: *b, c: 3}\ny: *b\n")
    result = run(["build", "--cloud-init", f"user-data={inputs}/ud", "-o", str(inputs / "x.iso")])
    assert result.returncode == 0, result.stderr


def test_a_files_json_nested_too_deeply_is_one_line(inputs):
    document = b'{"files": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    result = run(["build", "--type", "cdrom", "--files-json", "-", "-o", str(inputs / "x.iso")], stdin=document)
    assert result.returncode == 1 and b"nested too deeply" in result.stderr and b"internal" not in result.stderr


def test_the_command_tells_a_preset_by_the_flags_the_presets_name():
    """local/payload.py knows the presets' flags without importing the presets (a build
    without one does not pay for them): the same flags as payloadhook.presets.KINDS."""
    from payloadhook import presets
    from payloadhook.local.payload import PRESET_ATTRIBUTES
    assert PRESET_ATTRIBUTES == tuple(kind.replace("-", "_") for kind in presets.KINDS)
