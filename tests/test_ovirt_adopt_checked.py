"""oVirt domains on a real libvirtd. ``payloadhook adopt`` (and ``attach``) define nothing the
hook would refuse at the next start: the finished definition is checked as prepare checks it
first, and a refusal leaves the saved definition byte for byte as it was. ``show`` lists a
domain's payloads beside oVirt metadata it cannot read, and says why."""

import base64
import json
import os
import subprocess
import sys

import pytest

from tests.harness.domains import IMAGE_DIR

pytestmark = pytest.mark.integration

UUID = "6b1f0c4e-2d3a-4f5b-9c8d-7e6f5a4b3c2d"


def ovirt_domain(name: str, disk: str, target: str, files: dict[str, bytes]) -> str:
    entries = "".join(f"<ovirt-vm:file path='{path}'>{base64.b64encode(data).decode()}</ovirt-vm:file>"
                      for path, data in files.items())
    return (f"<domain type='qemu'><name>{name}</name><uuid>{UUID}</uuid>"
            "<metadata xmlns:ovirt-vm='http://ovirt.org/vm/1.0'><ovirt-vm:vm>"
            f"<ovirt-vm:device devtype='disk' name='{target}'><ovirt-vm:payload>"
            f"<ovirt-vm:volId>PAYLOAD</ovirt-vm:volId>{entries}</ovirt-vm:payload></ovirt-vm:device>"
            "</ovirt-vm:vm></metadata><memory unit='MiB'>64</memory>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
            f"<devices>{disk}</devices></domain>")


def payloadhook(libvirtd, *args):
    conf = os.path.join(libvirtd.base, "adopt-checked.conf")
    with open(conf, "w") as stream:
        stream.write(f"[payloadhook]\nimage_dir = {IMAGE_DIR}\n")
    return subprocess.run([sys.executable, "-m", "payloadhook", "-c", libvirtd.uri, *args], capture_output=True,
                          text=True, env={**os.environ, "LC_ALL": "C", "PAYLOADHOOK_CONF": conf})


FLOPPY = ("<disk type='file' device='floppy'><driver name='qemu' type='raw'/><source file='PAYLOAD:'/>"
          "<target dev='fda' bus='fdc'/><readonly/></disk>")
QCOW2_CDROM = ("<disk type='file' device='cdrom'><driver name='qemu' type='qcow2'/><source file='PAYLOAD:'/>"
               "<target dev='hdc' bus='ide'/><readonly/></disk>")
EMPTY_QCOW2_CDROM = QCOW2_CDROM.replace("<source file='PAYLOAD:'/>", "")


@pytest.mark.parametrize("disk,target,files,fragment", [
    (FLOPPY, "fda", {"big.bin": b"\0" * 3_000_000}, "a 1.44 MB floppy holds"),
    (QCOW2_CDROM, "hdc", {"user-data": b"#cloud-config\n"}, "a payload image is raw"),
], ids=["over-a-floppy", "qcow2-driver"])
def test_adopt_refuses_what_the_hook_would_refuse_and_leaves_the_definition(libvirtd, workdir, disk, target,
                                                                           files, fragment):
    name = "ph-adopt-checked"
    path = workdir / "adopt-checked.xml"
    path.write_text(ovirt_domain(name, disk, target, files))
    libvirtd.virsh("define", str(path))
    try:
        before = libvirtd.virsh("dumpxml", "--inactive", "--security-info", name).stdout
        refused = payloadhook(libvirtd, "adopt", "--no-seal", name)
        assert refused.returncode == 1 and fragment in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1 and not refused.stdout
        assert libvirtd.virsh("dumpxml", "--inactive", "--security-info", name).stdout == before
    finally:
        libvirtd.virsh("undefine", name)


def test_attach_refuses_a_payload_the_hook_would_refuse_on_that_disk(libvirtd, workdir):
    name = "ph-attach-checked"
    path = workdir / "attach-checked.xml"
    path.write_text(f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
                    "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
                    f"<devices>{EMPTY_QCOW2_CDROM}</devices></domain>")
    (workdir / "ud").write_bytes(b"#cloud-config\n")
    libvirtd.virsh("define", str(path))
    try:
        before = libvirtd.virsh("dumpxml", "--inactive", "--security-info", name).stdout
        refused = payloadhook(libvirtd, "attach", "--no-seal", name, "--type", "cdrom", "--target", "hdc",
                              f"user-data={workdir}/ud")
        assert refused.returncode != 0 and "a payload image is raw" in refused.stderr, refused.stderr
        assert libvirtd.virsh("dumpxml", "--inactive", "--security-info", name).stdout == before
    finally:
        libvirtd.virsh("undefine", name)


def test_show_lists_the_payloads_beside_malformed_ovirt_metadata(libvirtd, workdir):
    name = "ph-show-malformed"
    payloads = ("<pl:payloads xmlns:pl='urn:payloadhook:payload:1'><pl:payload type='cdrom' target='hdc'>"
                "<pl:volume_id>cidata</pl:volume_id><pl:files><pl:file><pl:name>user-data</pl:name>"
                "<pl:content>I2Nsb3VkLWNvbmZpZwo=</pl:content></pl:file></pl:files></pl:payload></pl:payloads>")
    xml = ovirt_domain(name, EMPTY_QCOW2_CDROM.replace("qcow2", "raw"), "hdz", {"x": b"y"})
    path = workdir / "show-malformed.xml"
    path.write_text(xml.replace("<ovirt-vm:vm>", payloads + "<ovirt-vm:vm>"))
    libvirtd.virsh("define", str(path))
    try:
        shown = payloadhook(libvirtd, "show", name)
        assert shown.returncode == 0, shown.stderr
        assert "cidata" in shown.stdout and "user-data" in shown.stdout
        assert "oVirt payload metadata the hook does not build, and adopt would refuse: oVirt payload on 'hdz'" \
            in shown.stdout
        document = json.loads(payloadhook(libvirtd, "show", "--json", name).stdout)
        assert [p["label"] for p in document["payloads"]] == ["cidata"] and "hdz" in document["ovirt_payloads_refused"]
    finally:
        libvirtd.virsh("undefine", name)
