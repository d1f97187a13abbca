"""The hook under a real libvirtd: define, start, stop (README, "The hook")."""

import os
import pwd

import pytest

from payloadhook.model import Payload, PayloadFile
from tests.conftest import MARKER
from tests.harness.domains import IMAGE_DIR, defined, disk, images_of

pytestmark = pytest.mark.integration

CDROM = Payload(type="cdrom", volume_id="cidata", files=(
    PayloadFile("user-data", b"#cloud-config\n# " + MARKER.encode() + b"\n"),
    PayloadFile("meta-data", b"instance-id: iid-1\n")))
FLOPPY = Payload(type="floppy", files=(PayloadFile("Unattend.xml", MARKER.encode()),))


def test_start_builds_images_and_destroy_removes_them(libvirtd, workdir):
    name = "ph-start-stop"
    with defined(libvirtd, workdir, name, [disk("cdrom", "hdc", f"{IMAGE_DIR}/{name}-hdc.iso"),
                                           disk("floppy", "fda", f"{IMAGE_DIR}/{name}-fda.img")], [CDROM, FLOPPY]):
        libvirtd.virsh("start", name)
        assert f"{name}-hdc.iso" in images_of(libvirtd) and f"{name}-fda.img" in images_of(libvirtd)
        # libvirt relabelled our root-only image for qemu after prepare
        st = os.stat(libvirtd.path(f"{IMAGE_DIR}/{name}-hdc.iso"))
        assert pwd.getpwuid(st.st_uid).pw_name == "libvirt-qemu"
        assert st.st_size % 4096 == 0
        assert os.stat(libvirtd.path(f"{IMAGE_DIR}/{name}-fda.img")).st_size == 1474560
        libvirtd.virsh("destroy", name)
        assert not images_of(libvirtd, name)
        # and again: a second start after a stop works the same
        libvirtd.virsh("start", name)
        assert f"{name}-hdc.iso" in images_of(libvirtd)
        libvirtd.virsh("destroy", name)
        assert not images_of(libvirtd, name)


def test_refused_prepare_refuses_the_start_with_our_line(libvirtd, workdir):
    name = "ph-refused"
    bad = Payload(type="cdrom", files=(PayloadFile("x", MARKER.encode()),))
    with defined(libvirtd, workdir, name, [disk("cdrom", "hdc", "/etc/ph-evil.iso")], [bad]):
        result = libvirtd.virsh("start", name, check=False)
        assert result.returncode != 0
        assert "payloadhook: domain ph-refused: disk source '/etc/ph-evil.iso' is outside the image directory" \
            in result.stderr
        assert MARKER not in result.stderr
        assert not os.path.exists(libvirtd.path("/etc/ph-evil.iso"))
        assert libvirtd.virsh("domstate", name).stdout.strip() == "shut off"


def test_domain_without_payload_is_untouched(libvirtd, workdir):
    name = "ph-plain"
    with defined(libvirtd, workdir, name, []):
        before = images_of(libvirtd)
        libvirtd.virsh("start", name)
        assert images_of(libvirtd) == before


def test_change_media_then_stop_removes_only_what_was_built(libvirtd, workdir):
    """The <source> at release is not trusted: the record says what to delete."""
    name = "ph-change-media"
    other = workdir / "other.iso"
    other.write_bytes(b"\0" * 4096)
    with defined(libvirtd, workdir, name, [disk("cdrom", "hdc", f"{IMAGE_DIR}/{name}-hdc.iso")], [CDROM]):
        # paused: the firmware, probing the drive for a boot record, locks the tray, and QEMU
        # then refuses to swap the medium even with --force (seen under load); paused, no
        # firmware runs, and the hook's prepare has run all the same
        libvirtd.virsh("start", name, "--paused")
        libvirtd.virsh("change-media", name, "hdc", str(other), "--update", "--force")
        libvirtd.virsh("destroy", name)
        assert other.read_bytes() == b"\0" * 4096
        assert not images_of(libvirtd, name)


def test_read_only_clients_see_inline_content(libvirtd, workdir):
    """As the contract warns: inline content is for data that is not secret."""
    name = "ph-readonly"
    with defined(libvirtd, workdir, name, [disk("cdrom", "hdc", f"{IMAGE_DIR}/{name}-hdc.iso")], [CDROM]):
        dumped = libvirtd.virsh("dumpxml", name, ro=True).stdout
        assert "urn:payloadhook:payload:1" in dumped and "<pl:content" in dumped


def test_an_image_another_running_domain_owns_is_refused(libvirtd, workdir):
    first, second = "ph-owner", "ph-intruder"
    source = f"{IMAGE_DIR}/{first}-hdc.iso"
    intruder = Payload(type="cdrom", files=(PayloadFile("x", b"intruder"),))
    with defined(libvirtd, workdir, first, [disk("cdrom", "hdc", source)], [CDROM]), \
            defined(libvirtd, workdir, second, [disk("cdrom", "hdc", source)], [intruder]):
        libvirtd.virsh("start", first)
        before = open(libvirtd.path(source), "rb").read()
        result = libvirtd.virsh("start", second, check=False)
        assert result.returncode != 0
        assert f"belongs to domain '{first}', which has not released it" in result.stderr
        assert open(libvirtd.path(source), "rb").read() == before
        libvirtd.virsh("destroy", first)
        assert not os.path.exists(libvirtd.path(source))
