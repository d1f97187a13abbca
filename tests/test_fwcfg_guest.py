"""fw_cfg payloads in a TCG guest: ``attach --ignition`` and ``attach --type fwcfg`` through a
real libvirtd, the hook writing each entry's file at prepare and removing it at release, and
the guest's kernel reading the entries in /sys/firmware/qemu_fw_cfg."""

import hashlib
import json

import pytest

from tests.conftest import MARKER
from tests.harness.domains import IMAGE_DIR, domain, images_of, wait_state
from tests.harness.tinyguest import parse_console
from tests.test_cli import payloadhook

pytestmark = [pytest.mark.integration, pytest.mark.guest]

IGNITION = json.dumps({"ignition": {"version": "3.4.0"}, "storage": {"files": [
    {"path": "/etc/motd", "contents": {"source": "data:," + MARKER}}]}}).encode()


def test_the_guest_reads_its_fwcfg_entries_and_release_removes_their_files(libvirtd, workdir, guest_kernel):
    name = "ph-fwcfg"
    console = workdir / "console.log"
    extra = bytes(range(256)) * 3
    path = workdir / "guest.xml"
    cmdline_names = "opt/com.coreos/config,opt/org.example/extra"
    path.write_text(domain(name, [], kernel=guest_kernel, console=str(console)).replace(
        "payloadtest.devs=", f"payloadtest.fwcfg={cmdline_names} payloadtest.devs="))
    libvirtd.virsh("define", str(path))
    try:
        (workdir / "config.ign").write_bytes(IGNITION)
        (workdir / "extra").write_bytes(extra)
        said = payloadhook(libvirtd, "attach", name, "--ignition", str(workdir / "config.ign"), "--no-seal")
        assert said.stdout == f"attached fwcfg payload (1 file) of {name}\n"
        said = payloadhook(libvirtd, "attach", name, "--type", "fwcfg", "--no-seal",
                           f"opt/org.example/extra={workdir / 'extra'}")
        assert said.stdout == f"attached fwcfg payload (1 file) of {name}\n"
        xml = libvirtd.virsh("dumpxml", name).stdout
        assert (f"<entry name='opt/com.coreos/config' file='{IMAGE_DIR}/{name}-fwcfg-opt_com.coreos_config'/>"
                in xml)
        shown = payloadhook(libvirtd, "show", name).stdout
        assert "fwcfg (QEMU fw_cfg entries) (Ignition config), 1 file" in shown
        libvirtd.virsh("start", name)
        assert images_of(libvirtd, name) == [f"{name}-fwcfg-opt_com.coreos_config",
                                             f"{name}-fwcfg-opt_org.example_extra"]
        wait_state(libvirtd, name, "shut off", timeout=120)
        report = parse_console(console.read_text(errors="replace"))
        assert report["fwcfg"] == {"opt/com.coreos/config": hashlib.sha256(IGNITION).hexdigest(),
                                   "opt/org.example/extra": hashlib.sha256(extra).hexdigest()}, report
        assert images_of(libvirtd, name) == []
        said = payloadhook(libvirtd, "detach", name, "--type", "fwcfg")
        assert "fw_cfg entry opt/com.coreos/config removed" in said.stdout
        assert "qemu_fw_cfg" not in libvirtd.virsh("dumpxml", name).stdout
        assert "type='fwcfg'" not in libvirtd.virsh("dumpxml", name).stdout
    finally:
        libvirtd.virsh("destroy", name, check=False)
        libvirtd.virsh("undefine", name, check=False)
