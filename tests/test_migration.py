"""A real live migration between two libvirtds on this machine, each a host of its own
(mount and UTS namespaces, its own /run and image_dir, its own host UUID), over TCP on
127.0.0.1. The guest keeps re-reading its payload while it moves."""


import pytest

from tests.harness.domains import images_of
from tests.harness.fleet import two_libvirtds
from tests.test_lifecycle import EXPECTED, define_looping_guest, pass_report, wait_whole_pass

pytestmark = [pytest.mark.integration, pytest.mark.guest]


@pytest.fixture
def two_hosts():
    with two_libvirtds("ph") as hosts:
        yield hosts


def test_live_migration_keeps_the_payload_readable(two_hosts, workdir, guest_kernel):
    source, destination = two_hosts
    name = "ph-migrating"
    console = define_looping_guest(source, workdir, guest_kernel, name)
    source.virsh("start", name)
    before = wait_whole_pass(console, 0)
    assert pass_report(console, before) == EXPECTED
    assert len(images_of(source, name)) == 2 and images_of(destination, name) == []

    result = source.virsh("migrate", "--live", name, destination.tcp_uri, "--migrateuri", "tcp://127.0.0.1",
                          check=False)
    assert result.returncode == 0, result.stderr
    assert destination.virsh("domstate", name).stdout.strip() == "running"
    # the destination's prepare built the images in its own image_dir; the source's release removed its own
    assert len(images_of(destination, name)) == 2
    assert images_of(source, name) == []
    after = wait_whole_pass(console, before)
    assert pass_report(console, after) == EXPECTED
    destination.virsh("destroy", name)
    assert images_of(destination, name) == []
