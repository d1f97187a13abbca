"""A real guest kernel reads the images: the judge of what we build.

The tiny guest (tests/harness/tinyguest.py) mounts each device and prints the
SHA-256 of every file it finds, through Rock Ridge, through Joliet and through
VFAT, with the volume label; the test compares them with what was declared.
"""

import hashlib

import pytest

from payloadhook.model import Payload, PayloadFile
from tests.conftest import MARKER
from tests.harness.domains import IMAGE_DIR, defined, disk, wait_state
from tests.harness.tinyguest import parse_console

pytestmark = [pytest.mark.integration, pytest.mark.guest]

JOLIET_LONG = "a-very-long-name-" + "x" * 60 + ".json"
CD_FILES = (
    PayloadFile("openstack/latest/meta_data.json", b'{"uuid": "' + MARKER.encode() + b'"}\n'),
    PayloadFile("Ünïcödé/日本語のファイル名.txt", "こんにちは\n".encode()),
    PayloadFile("emoji-\U0001F600.txt", b"smile"),
    PayloadFile("user-data", b"#cloud-config\n"),
    PayloadFile(JOLIET_LONG, b"long"),
    PayloadFile("empty", b""),
)
FD_FILES = (
    PayloadFile("Unattend.xml", b'<?xml version="1.0"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend"/>\n'),
    PayloadFile("$OEM$/$1/Install Script.cmd", b"@echo off\r\n"),
    PayloadFile("Ünïcödé файл.txt", MARKER.encode()),
    PayloadFile("emoji-\U0001F600.txt", b"smile"),
    PayloadFile("a-255-character-long-name-" + "x" * 225 + ".txt", b"longest FAT name"),
    # 8.3 names in one entry each: upper case, and lower case by the NT case bits; a non-ASCII one
    PayloadFile("R001.TXT", b"upper"),
    PayloadFile("readme.txt", b"lower"),
    PayloadFile("setup.CMD", b"lower base"),
    PayloadFile("¥.txt", b"yen"),
)


def sums(files):
    return {f.name: hashlib.sha256(f.content).hexdigest() for f in files}


def boot(libvirtd, workdir, guest_kernel, name, disks, payloads, devs, machine="pc"):
    console = workdir / "console.log"
    with defined(libvirtd, workdir, name, disks, payloads, kernel=guest_kernel, console=str(console), devs=devs,
                 machine=machine):
        libvirtd.virsh("start", name)
        wait_state(libvirtd, name, "shut off", timeout=120)
    return parse_console(console.read_text(errors="replace"))


def test_guest_reads_cdrom_and_floppy(libvirtd, workdir, guest_kernel):
    name = "ph-guest"
    report = boot(libvirtd, workdir, guest_kernel, name,
                  [disk("cdrom", "hdc", f"{IMAGE_DIR}/{name}-hdc.iso"),
                   disk("floppy", "fda", f"{IMAGE_DIR}/{name}-fda.img")],
                  [Payload(type="cdrom", volume_id="config-2", files=CD_FILES),
                   Payload(type="floppy", volume_id="oemdrv", files=FD_FILES)], "sr0,fd0")
    assert report["done"], report
    assert report["labels"] == {"sr0": "config-2", "fd0": "OEMDRV"}
    assert report["files"][("sr0", "rock")] == sums(CD_FILES)
    joliet = dict(sums(CD_FILES))
    long_sum = joliet.pop(JOLIET_LONG)
    seen = dict(report["files"][("sr0", "joliet")])
    shortened = [n for n in seen if n.startswith("a-very-long-name-")]
    assert len(shortened) == 1 and len(shortened[0]) == 64 and shortened[0].endswith(".json")
    assert seen.pop(shortened[0]) == long_sum
    assert seen == joliet
    assert report["files"][("fd0", "vfat")] == sums(FD_FILES)


def test_guest_reads_a_sata_cdrom_on_q35(libvirtd, workdir, guest_kernel):
    name = "ph-guest-q35"
    files = (PayloadFile("meta-data", b"instance-id: q35\n"), PayloadFile("user-data", b"#cloud-config\n"))
    report = boot(libvirtd, workdir, guest_kernel, name,
                  [disk("cdrom", "sda", f"{IMAGE_DIR}/{name}-sda.iso", bus="sata")],
                  [Payload(type="cdrom", volume_id="cidata", files=files)], "sr0", machine="q35")
    assert report["labels"] == {"sr0": "cidata"}
    assert report["files"][("sr0", "rock")] == sums(files)
    assert report["files"][("sr0", "joliet")] == sums(files)
