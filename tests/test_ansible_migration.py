"""A sealed domain migrates live between two hosts after contrib/ansible gave both the keys.

Two private libvirtds, each a host of its own (tests/harness/libvirtd.py), form the migration
group rack_a. Debian's ansible-playbook runs the role's key distribution (contrib/ansible/
keys.yml) against both, through Ansible's chroot connection into each daemon's mount namespace
(/proc/PID/root: there /etc/payloadhook is that host's own), with the keys held encrypted by
ansible-vault on the controller. Content sealed under the group's current key on the first
host then starts there, moves to the second with `virsh migrate --live`, and the second host's
hook builds the images from the sealed metadata with the key the role gave it: they are read
back there with xorriso and mtools. A second run of the playbook changes nothing."""

import os
import re
import shutil
import subprocess

import pytest

from payloadhook.seal.keys import KeyStore
from tests.conftest import REPO
from tests.harness import readback
from tests.harness.domains import IMAGE_DIR, images_of
from tests.harness.fleet import two_libvirtds, vault_keys
from tests.test_lifecycle import CD, FD
from tests.test_seal_libvirt import assert_no_secret, keys_of, sealed_guest

pytestmark = pytest.mark.integration

VAULT_PASSWORD = "test-vault-password-for-the-migration-group"
KEY_IDS = ("20261201-0c0ffee0", "20261202-5ea1ed00")


@pytest.fixture
def two_hosts():
    with two_libvirtds("ph-fleet") as hosts:
        yield hosts


def ansible_env(top):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(top), "LC_ALL": "C.UTF-8",
            "ANSIBLE_ROLES_PATH": os.path.join(REPO, "contrib", "ansible", "roles"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(top / "ansible-tmp")}


def controller(top, hosts):
    """The controller's side: the group's keys made and encrypted with ansible-vault, an
    inventory of the two hosts in rack_a, its group_vars, and the role's keys.yml playbook."""
    plain = vault_keys(top, "rack_a", KEY_IDS, VAULT_PASSWORD, ansible_env(top))
    keys = top / "keys" / "rack_a"
    (top / "inventory").write_text(
        "[rack_a]\n" + "".join(f"hv{n} ansible_host={host.root}\n" for n, host in enumerate(hosts, 1)) +
        "\n[hypervisors:children]\nrack_a\n\n[hypervisors:vars]\n"
        "ansible_connection=community.general.chroot\nansible_python_interpreter=/usr/bin/python3\n")
    (top / "group_vars").mkdir()
    (top / "group_vars" / "rack_a.yml").write_text(
        f"payloadhook_keys_dir: {keys}\npayloadhook_current_key: {KEY_IDS[1]}\n")
    shutil.copy(os.path.join(REPO, "contrib", "ansible", "keys.yml"), top / "keys.yml")
    return plain


def playbook(top):
    result = subprocess.run(["ansible-playbook", "-i", str(top / "inventory"), "--vault-password-file",
                             str(top / "vault-password"), str(top / "keys.yml")], capture_output=True, text=True,
                            env=ansible_env(top))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    recap = dict(re.findall(r"^(hv\d)\s+:\s+ok=\d+\s+changed=(\d+)", result.stdout, re.M))
    assert set(recap) == {"hv1", "hv2"}, result.stdout[-2000:]
    return {host: int(changed) for host, changed in recap.items()}, result.stdout


def test_a_sealed_domain_migrates_between_the_hosts_the_role_gave_the_keys(two_hosts, workdir, tmp_path):
    source, destination = two_hosts
    assert not os.path.exists(keys_of(destination).key_dir)     # a new host: no key of its own
    plain = controller(tmp_path, (source, destination))

    changed, output = playbook(tmp_path)
    assert changed["hv1"] > 0 and changed["hv2"] > 0
    for key in plain.values():
        assert key.hex() not in output
    for host in (source, destination):
        keys = keys_of(host)
        assert keys.current() == KEY_IDS[1]
        for key_id, key in plain.items():
            path = os.path.join(keys.key_dir, f"{key_id}.key")
            assert open(path, "rb").read() == key
            assert oct(os.stat(path).st_mode & 0o777) == "0o600" and os.stat(path).st_uid == 0
        assert oct(os.stat(keys.key_dir).st_mode & 0o777) == "0o700"

    # sealed on the first host, under the group's current key; nothing of it in the definition
    name = "ph-fleet-migrating"
    sealed_guest(source, workdir, None, name)
    xml = source.virsh("dumpxml", "--inactive", name).stdout
    assert f'key="{KEY_IDS[1]}"' in xml
    source.virsh("start", name)
    assert len(images_of(source, name)) == 2 and images_of(destination, name) == []

    result = source.virsh("migrate", "--live", name, destination.tcp_uri, "--migrateuri", "tcp://127.0.0.1",
                          check=False)
    assert result.returncode == 0, result.stderr
    assert destination.virsh("domstate", name).stdout.strip() == "running"
    assert images_of(source, name) == []
    # the destination's hook opened the sealed files with the key the role gave it
    iso = destination.path(f"{IMAGE_DIR}/{name}-hdc.iso")
    floppy = destination.path(f"{IMAGE_DIR}/{name}-fda.img")
    assert readback.iso_files(iso) == {f.name: f.content for f in CD.files}
    assert readback.fat_files(floppy) == {f.name: f.content for f in FD.files}
    assert_no_secret(destination.virsh("dumpxml", name, ro=True).stdout.encode(), "the destination's dumpxml")
    destination.virsh("destroy", name)
    assert images_of(destination, name) == []

    again, _ = playbook(tmp_path)
    assert again == {"hv1": 0, "hv2": 0}
    assert KeyStore(keys_of(destination).key_dir).current() == KEY_IDS[1]
