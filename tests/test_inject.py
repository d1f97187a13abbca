"""payloadhook inject, the parts that need neither libvirt nor libguestfs: the record in the
domain's metadata (and every payload edit keeping it), the rule for guest paths, which disk
is written and which are refused, the KVM check, and the command line's refusals.
tests/test_inject_libvirt.py refuses through a real libvirtd, tests/test_inject_appliance.py
writes real disks through libguestfs's appliance."""

import json
import os
import subprocess
import sys

import pytest

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.errors import GuestError, PayloadError, UsageError
from payloadhook.inject import appliance, disks, ledger, paths, record
from payloadhook.model import Payload, PayloadFile
from tests.conftest import MARKER

SEED = "/var/lib/cloud/seed/nocloud"
KEY = bytes(range(32))


def domain_xml(devices: str = "", payloads: str = "") -> bytes:
    return f"""<domain type='qemu'>
  <name>vm</name>
  <uuid>3f2c1b7e-9d4a-4e8b-a1c2-6f5e4d3c2b1a</uuid>
  <metadata>
    <app:x xmlns:app="urn:example:app">kept</app:x>{payloads}
  </metadata>
  <devices>{devices}</devices>
</domain>""".encode()


def injection(sealed: bool = False) -> record.Injection:
    content = MARKER.encode()
    return record.Injection(disk="vda", when="2026-12-01T12:00:00Z", directories=("/var/lib/cloud",), files=(
        record.file_record(SEED + "/user-data", content, "k1" if sealed else None, KEY if sealed else None),))


# -- the record --------------------------------------------------------------------------------

@pytest.mark.parametrize("sealed", [False, True])
def test_the_record_reads_back_as_written(sealed):
    root = xmlsafe.parse_xml(domain_xml())
    record.set_injection(root, "vda", injection(sealed))
    again = xmlsafe.parse_xml(xmlsafe.serialize(root))
    assert record.read_injections(again) == (injection(sealed),)
    text = xmlsafe.serialize(root)
    assert MARKER.encode() not in text
    assert b"urn:example:app" in text


def test_a_sealed_record_holds_no_hash_of_the_content_and_a_mac_bound_to_the_path():
    import hashlib
    item = injection(sealed=True).files[0]
    assert item.sha256 is None and item.size == len(MARKER)
    assert hashlib.sha256(MARKER.encode()).hexdigest() not in xmlsafe.serialize(record.element_of(
        injection(sealed=True))).decode()
    assert item.mac == record.mac_of(KEY, SEED + "/user-data", MARKER.encode())
    assert item.mac != record.mac_of(KEY, SEED + "/meta-data", MARKER.encode())
    assert item.mac != record.mac_of(bytes(32), SEED + "/user-data", MARKER.encode())


def test_removing_the_last_record_removes_what_it_alone_needed():
    root = xmlsafe.parse_xml(domain_xml())
    record.set_injection(root, "vda", injection())
    record.set_injection(root, "vda", None)
    assert metadata.payloads_root(root) is None
    assert root.find("metadata") is not None    # other applications' metadata stays


def test_payload_edits_keep_the_record_and_the_hook_reads_past_it():
    root = xmlsafe.parse_xml(domain_xml())
    record.set_injection(root, "vda", injection())
    metadata.set_payloads(root, [Payload(type="cdrom", files=(PayloadFile("a", b"x"),))])
    assert record.read_injections(root) == (injection(),)
    assert [p.type for p in metadata.read_payloads(root)] == ["cdrom"]
    metadata.set_payloads(root, [])      # detach: the media go, the record stays
    assert metadata.read_payloads(root) == []
    assert record.read_injections(root) == (injection(),)


@pytest.mark.parametrize("element, fragment", [
    ('<pl:injected disk="vda" when="2026-12-01T12:00:00Z"><pl:file path="etc/x" size="1" sha256="{h}"/>'
     "</pl:injected>", "not an absolute path"),
    ('<pl:injected disk="vda" when="2026-12-01T12:00:00Z"><pl:file path="/a/../b" size="1" sha256="{h}"/>'
     "</pl:injected>", "'..'"),
    ('<pl:injected disk="vda" when="2026-12-01T12:00:00Z"><pl:file path="/a" size="x" sha256="{h}"/>'
     "</pl:injected>", "no size"),
    ('<pl:injected disk="vda" when="2026-12-01T12:00:00Z"><pl:file path="/a" size="1"/></pl:injected>',
     "no sha256"),
    ('<pl:injected disk="vda" when="2026-12-01T12:00:00Z"><pl:file path="/a" size="1" key="k1"/></pl:injected>',
     "needs a mac"),
    ('<pl:injected disk="../x" when="2026-12-01T12:00:00Z"/>', "not a disk target"),
    ('<pl:injected disk="vda" when="yesterday"/>', "not a UTC time"),
    ('<pl:injected disk="vda" when="2026-12-01T12:00:00Z"/><pl:injected disk="vda" when="2026-12-01T12:00:00Z"/>',
     "more than one"),
])
def test_a_malformed_record_is_refused(element, fragment):
    xml = domain_xml(payloads='<pl:payloads xmlns:pl="urn:payloadhook:payload:1">'
                     + element.replace("{h}", "0" * 64) + "</pl:payloads>")
    with pytest.raises(PayloadError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        record.read_injections(xmlsafe.parse_xml(xml))


def test_the_schema_accepts_the_record(tmp_path):
    root = xmlsafe.parse_xml(domain_xml())
    record.set_injection(root, "vda", injection(sealed=True))
    record.set_injection(root, "vdb", injection())
    path = tmp_path / "d.xml"
    path.write_bytes(xmlsafe.serialize(root))
    result = subprocess.run(["xmllint", "--noout", "--relaxng", "schema/payloads.rng", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- guest paths -------------------------------------------------------------------------------

def test_guest_paths():
    assert paths.components("/var/lib/cloud/") == ("var", "lib", "cloud")
    assert paths.components("/") == ()
    assert paths.under(("etc",), "app/conf") == ("etc", "app", "conf")
    for bad in ("var/lib", "/a/../b", "/a/./b", "/a//b", "/a\nb", "/" + "x" * 256):
        with pytest.raises(UsageError):
            paths.components(bad)
    with pytest.raises(UsageError):
        paths.under(("etc",), "/abs")
    with pytest.raises(UsageError):
        paths.under(("etc",), "../up")


# -- disks ---------------------------------------------------------------------------------------

def disk(target, source="/img/a.qcow2", fmt="qcow2", extra="", kind="file", device="disk", boot=""):
    attr = "dev" if kind == "block" else "file"
    src = f"<source {attr}='{source}'/>" if source else ""
    drv = f"<driver name='qemu' type='{fmt}'/>" if fmt else ""
    return f"<disk type='{kind}' device='{device}'>{drv}{src}<target dev='{target}' bus='virtio'/>{boot}{extra}</disk>"


def disks_of(*devices):
    return disks.read_disks(xmlsafe.parse_xml(domain_xml("".join(devices))))


def test_the_disk_written_is_the_one_named_else_the_boot_disk_else_the_first():
    found = disks_of(disk("hdc", device="cdrom"), disk("vda"), disk("vdb", "/img/b", boot="<boot order='1'/>"))
    assert [d.target for d in found] == ["vda", "vdb"]     # CD-ROMs are no place to inject
    assert disks.written_disk(found, None).target == "vdb"
    assert disks.written_disk(found, "vda").target == "vda"
    assert disks.written_disk(disks_of(disk("vda"), disk("vdb", "/img/b")), None).target == "vda"


def test_a_disk_without_a_driver_type_is_raw_as_libvirt_reads_it():
    assert disks_of(disk("vda", fmt=None))[0].format == "raw"


@pytest.mark.parametrize("device, target, fragment", [
    (disk("vda", extra="<readonly/>"), "vda", "read-only"),
    (disk("vda", extra="<shareable/>"), "vda", "shareable"),
    ("<disk type='network' device='disk'><driver type='raw'/><source protocol='nbd' name='x'><host name='h'/>"
     "</source><target dev='vda'/></disk>", "vda", "a network disk"),
    (disk("vda"), "vdz", "no hard disk vdz"),
])
def test_disks_that_are_not_written(device, target, fragment):
    with pytest.raises(GuestError, match=fragment):
        disks.written_disk(disks_of(device), target)


def test_a_domain_without_disks_is_refused():
    with pytest.raises(GuestError, match="no hard disk"):
        disks.written_disk(disks_of(), None)


# -- KVM -------------------------------------------------------------------------------------------

def test_kvm_is_used_only_where_the_cpu_virtualises(tmp_path):
    assert appliance.cpu_virtualises("processor: 0\nflags\t\t: fpu vme vmx sse\n")
    assert appliance.cpu_virtualises("flags : fpu svm\n")
    assert not appliance.cpu_virtualises("flags\t: fpu vme sse hypervisor\n")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags : fpu vme sse\n")
    # /dev/kvm may well open here: without vmx/svm it is not used
    assert not appliance.kvm_runs_guests(cpuinfo_path=str(cpuinfo))
    cpuinfo.write_text("flags : fpu vmx\n")
    assert not appliance.kvm_runs_guests(device=str(tmp_path / "no-kvm"), cpuinfo_path=str(cpuinfo))


# -- the command line --------------------------------------------------------------------------

def run(*argv, stdin=None):
    return subprocess.run([sys.executable, "-m", "payloadhook", "-c", "test:///default", "inject", *argv],
                          capture_output=True, text=True, input=stdin)


@pytest.mark.parametrize("argv, fragment", [
    (["vm", "./x"], "give --into DIR"),
    (["vm", "--into", "/etc"], "give the files"),
    (["vm", "--into", "etc", "./x"], "not an absolute path"),
    (["vm", "--cloud-init", "user-data=/nonexistent", "--into", "/x"], "--into goes with INPUTs only"),
    (["vm", "--remove", "--into", "/x"], "--remove takes out what the record names"),
    (["vm", "--mode", "999", "--into", "/x", "./y"], "not an octal mode"),
    (["vm", "--owner", "root", "--into", "/x", "./y"], "UID[:GID] in numbers"),
])
def test_usage_errors_are_one_line(argv, fragment, tmp_path):
    result = run(*argv)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and len(result.stderr.splitlines()) == 1


def test_inputs_are_checked_before_libvirt_is_called(tmp_path):
    user_data = tmp_path / "ud"
    user_data.write_bytes(b"not user data " + MARKER.encode())
    result = run("vm", "--cloud-init", f"user-data={user_data}")
    assert result.returncode == 1
    assert "user-data" in result.stderr and MARKER not in result.stderr
    assert "connect" not in result.stderr and "domain" not in result.stderr


# -- this host's own copy of the record ------------------------------------------------------------

UUID = "0c5f8a3e-1d2b-4c6a-9e8f-7a6b5c4d3e2f"


def test_only_entries_this_hosts_copy_also_holds_are_proven():
    ours = injection()
    forged = record.InjectedFile(path="/etc/os-release", size=10, sha256="0" * 64)
    defined = record.Injection(disk="vda", when=ours.when, files=ours.files + (forged,),
                               directories=ours.directories + ("/usr/bin",))
    proof = ledger.proven(defined, ours)
    assert proof.injection == ours
    assert proof.unproven == ("/etc/os-release", "/usr/bin")
    assert ledger.proven(defined, None).injection is None
    assert ledger.proven(ours, None).unproven == (SEED + "/user-data", "/var/lib/cloud")
    other_time = record.Injection(disk="vda", when="2026-12-02T12:00:00Z", files=ours.files,
                                  directories=ours.directories)
    assert ledger.proven(other_time, ours).injection is None
    changed = record.Injection(disk="vda", when=ours.when, directories=ours.directories, files=(
        record.InjectedFile(path=SEED + "/user-data", size=ours.files[0].size + 1, sha256=ours.files[0].sha256),))
    assert ledger.proven(changed, ours).injection.files == ()


@pytest.mark.parametrize("sealed", [False, True])
def test_this_hosts_copy_is_kept_root_only_and_reads_back(tmp_path, sealed):
    where = str(tmp_path / "lib" / "injected")
    assert ledger.read(where, UUID, "vda") is None
    ledger.write(where, UUID, "vda", injection(sealed))
    assert ledger.read(where, UUID, "vda") == injection(sealed)
    assert oct(os.stat(where).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(where, f"{UUID}-vda.json")).st_mode & 0o777) == "0o600"
    assert sorted(os.listdir(where)) == [f"{UUID}-vda.json"]
    assert MARKER.encode() not in open(os.path.join(where, f"{UUID}-vda.json"), "rb").read()
    ledger.write(where, UUID, "vda", None)
    assert ledger.read(where, UUID, "vda") is None and os.listdir(where) == []


@pytest.mark.parametrize("change", [
    lambda doc: doc.update(domain="11111111-2222-3333-4444-555555555555"),
    lambda doc: doc["files"][0].update(path="/etc/../passwd"),
    lambda doc: doc["files"][0].update(size="12"),
    lambda doc: doc.update(directories=[7]),
    lambda doc: doc.update(when="yesterday"),
])
def test_a_tampered_copy_is_refused(tmp_path, change):
    where = str(tmp_path / "injected")
    ledger.write(where, UUID, "vda", injection())
    name = os.path.join(where, f"{UUID}-vda.json")
    document = json.loads(open(name).read())
    change(document)
    with open(name, "w") as stream:
        json.dump(document, stream)
    with pytest.raises(GuestError, match="is malformed"):
        ledger.read(where, UUID, "vda")


def test_a_copy_in_a_directory_others_may_write_is_refused(tmp_path):
    where = str(tmp_path / "injected")
    ledger.write(where, UUID, "vda", injection())
    os.chmod(where, 0o770)
    with pytest.raises(GuestError, match="is not this user's alone"):
        ledger.read(where, UUID, "vda")
