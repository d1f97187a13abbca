"""contrib/ansible's role, run by Debian's ansible-playbook against two debootstrap chroots
(Ansible's chroot connection) forming one migration group: the package installed, the
configuration written, the group's vault-encrypted keys on both hosts; a second run changes
nothing."""

import os
import re
import shutil
import subprocess

import pytest

from payloadhook.model import Payload, PayloadFile
from payloadhook.seal.keys import KeyStore
from payloadhook.seal.sealing import seal_payload
from tests.conftest import REPO
from tests.harness import readback
from tests.harness.debroot import DebRoot, beside
from tests.harness.fleet import vault_keys
from tests.harness.paths import WORK_ROOT
from tests.test_seal_hook import SECRET, UUID, domain_xml

pytestmark = pytest.mark.integration

VAULT_PASSWORD = "test-vault-password-for-the-role"
KEY_IDS = ("20261130-0a1b2c3d", "20261201-3f2a9c1b")


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    """The controller's side: the .deb, the group's keys encrypted with ansible-vault, an
    inventory of two chroot hosts in the group rack_a."""
    top = tmp_path_factory.mktemp("controller")
    result = subprocess.run(["bash", os.path.join(REPO, "packaging", "build-deb"), str(top)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    (deb,) = [f for f in os.listdir(top) if f.endswith("_all.deb")]
    plain = vault_keys(top, "rack_a", KEY_IDS, VAULT_PASSWORD, ansible_env(top))
    keys = top / "keys" / "rack_a"
    hosts = [DebRoot.copy(os.path.join(WORK_ROOT, f"ansible-{name}-{os.getpid()}")) for name in ("hv1", "hv2")]
    (top / "inventory").write_text(
        "[rack_a]\n" + "".join(f"hv{n} ansible_host={host.path}\n" for n, host in enumerate(hosts, 1)) +
        "\n[hypervisors:children]\nrack_a\n\n[hypervisors:vars]\n"
        "ansible_connection=community.general.chroot\nansible_python_interpreter=/usr/bin/python3\n")
    (top / "group_vars").mkdir()
    (top / "group_vars" / "rack_a.yml").write_text(
        f"payloadhook_deb: {top / deb}\n"
        "payloadhook_install_recommends: false\n"
        f"payloadhook_keys_dir: {keys}\n"
        f"payloadhook_current_key: {KEY_IDS[1]}\n"
        "payloadhook_config:\n  max_payload_size: 128M\n  max_files: 500\n")
    shutil.copy(os.path.join(REPO, "contrib", "ansible", "site.yml"), top / "site.yml")
    yield top, hosts, plain
    for host in hosts:
        host.remove()


def ansible_env(top):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(top), "LC_ALL": "C.UTF-8",
            "ANSIBLE_ROLES_PATH": os.path.join(REPO, "contrib", "ansible", "roles"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(top / "ansible-tmp"), "ANSIBLE_HOST_KEY_CHECKING": "False"}


def playbook(top, hosts):
    result = beside(hosts, ["ansible-playbook", "-i", str(top / "inventory"), "--vault-password-file",
                            str(top / "vault-password"), str(top / "site.yml")], ansible_env(top), start_libvirtd=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    recap = dict(re.findall(r"^(hv\d)\s+:\s+ok=\d+\s+changed=(\d+)", result.stdout, re.M))
    assert set(recap) == {"hv1", "hv2"}, result.stdout[-2000:]
    return {host: int(changed) for host, changed in recap.items()}, result.stdout


def test_role_installs_configures_and_gives_the_group_its_keys_then_changes_nothing(controller):
    top, hosts, plain = controller
    changed, output = playbook(top, hosts)
    assert all(count > 0 for count in changed.values())
    for key_id in KEY_IDS:
        assert plain[key_id].hex() not in output    # no_log: no key in what Ansible prints
    for host in hosts:
        assert host.run("dpkg-query -W -f '${db:Status-Status}' payloadhook").stdout == "installed"
        conf = open(host.file("/etc/payloadhook/payloadhook.conf")).read()
        assert "\nmax_files = 500\nmax_payload_size = 128M\n" in conf
        for key_id in KEY_IDS:
            path = host.file(f"/etc/payloadhook/keys/{key_id}.key")
            assert open(path, "rb").read() == plain[key_id]
            assert oct(os.stat(path).st_mode & 0o777) == "0o600" and os.stat(path).st_uid == 0
        assert oct(os.stat(host.file("/etc/payloadhook/keys")).st_mode & 0o777) == "0o700"
        # payloadhook itself reads them: both keys, the second current
        listing = host.run("payloadhook key list").stdout
        assert KEY_IDS[0] in listing and re.search(rf"{KEY_IDS[1]}.*current", listing), listing
    # content sealed under hv1's current key opens in hv2's installed hook, as after a migration
    keys = KeyStore(hosts[0].file("/etc/payloadhook/keys"))
    plain = Payload(type="cdrom", files=(PayloadFile("Autounattend.xml", SECRET),))
    xml = domain_xml("/tmp/images", [seal_payload(plain, UUID, keys, keys.current())])
    assert SECRET not in xml
    with open(hosts[1].file("/tmp/sealed.xml"), "wb") as stream:
        stream.write(xml)
    hosts[1].run("printf '[payloadhook]\\nimage_dir = /tmp/images\\n' > /tmp/images.conf && "
                 "env -i LC_ALL=C PAYLOADHOOK_CONF=/tmp/images.conf PAYLOADHOOK_INDEX=/tmp/index "
                 "/etc/libvirt/hooks/qemu.d/50-payloadhook sealed-vm prepare begin - </tmp/sealed.xml")
    assert readback.iso_files(hosts[1].file("/tmp/images/sealed-vm-hdc.iso")) == {"Autounattend.xml": SECRET}

    again, _ = playbook(top, hosts)
    assert again == {"hv1": 0, "hv2": 0}


def test_role_refuses_a_current_key_it_does_not_have(controller):
    top, hosts, _ = controller
    result = beside(hosts[:1], ["ansible-playbook", "-i", str(top / "inventory"), "--limit", "hv1",
                                "--vault-password-file", str(top / "vault-password"), "-e",
                                "payloadhook_current_key=20991231-00000000", str(top / "site.yml")], ansible_env(top))
    assert result.returncode != 0
    assert "payloadhook_current_key must name a KEYID.key file in payloadhook_keys_dir" in result.stdout
