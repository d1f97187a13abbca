"""The RPM (packaging/payloadhook.spec via packaging/build-rpm) and install-hook on a real libvirtd."""

import configparser
import os
import signal
import subprocess
import sys
import time

import pytest

import payloadhook
from payloadhook.model import Payload, PayloadFile
from tests.conftest import REPO
from tests.harness.domains import IMAGE_DIR, disk, domain
from tests.harness.libvirtd import Libvirtd

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rpm(tmp_path_factory):
    out = tmp_path_factory.mktemp("rpm")
    result = subprocess.run(["bash", os.path.join(REPO, "packaging", "build-rpm"), str(out)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    (package,) = [os.path.join(out, f) for f in os.listdir(out) if f.endswith(".noarch.rpm")]
    return package


def rpm_query(package, *args):
    return subprocess.run(["rpm", "-qp", *args, package], capture_output=True, text=True, check=True).stdout.split("\n")


def test_file_list(rpm):
    files = rpm_query(rpm, "-l")
    for expected in ("/etc/libvirt/hooks/qemu.d/50-payloadhook", "/etc/payloadhook/payloadhook.conf",
                     "/usr/bin/payloadhook", "/usr/share/payloadhook/redact.xsl", "/usr/share/payloadhook/ovf-payloads.xsl",
                     "/usr/lib/tmpfiles.d/payloadhook.conf", "/usr/lib/systemd/system/payloadhook-gc.service",
                     "/usr/share/payloadhook/payloads.rng", "/usr/lib/systemd/system/payloadhook-seed.service"):
        assert expected in files
    assert any(f.endswith("/payloadhook/hook.py") for f in files)
    assert not any("__pycache__" in f or ".egg-info" in f for f in files)
    assert rpm_query(rpm, "-c") == ["/etc/payloadhook/payloadhook.conf", ""]


def test_directories_are_0755_owned_by_root(rpm):
    """Whatever the builder's umask: libvirtd runs as root whatever lies in qemu.d."""
    lines = rpm_query(rpm, "--qf", "[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME}\n]")
    modes = {path: rest for path, _, rest in (line.partition(" ") for line in lines if line)}
    for directory in ("/etc/libvirt/hooks/qemu.d", "/etc/payloadhook", "/usr/share/payloadhook"):
        assert modes[directory] == "drwxr-xr-x root:root", directory


def test_requires_match_setup_cfg(rpm):
    requires = set(rpm_query(rpm, "--requires"))
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, "setup.cfg"))
    lines = [line.strip() for line in setup["options"]["install_requires"].splitlines()]
    dependencies = [line for line in lines if line and not line.startswith("#")]
    assert "cryptography" in dependencies and "PyYAML" in dependencies
    for dependency in dependencies:     # Fedora names them python3-<name in lower case>
        assert f"python3-{dependency.lower()}" in requires
    assert "python3-libvirt" in requires and setup["options.extras_require"]["cli"].strip() == "libvirt-python"
    for dependency in setup["options.extras_require"]["seed"].split():    # payloadhook serve
        assert f"python3-{dependency.lower()}" in requires
    assert "noarch" in rpm


def test_scripts_reload_libvirt_only_where_systemd_runs(rpm):
    scripts = "\n".join(rpm_query(rpm, "--scripts"))
    assert "postinstall scriptlet" in scripts and "postuninstall scriptlet" in scripts
    assert 'if [ -d /run/systemd/system ]; then' in scripts
    assert "systemctl try-reload-or-restart" in scripts
    # without systemd the scriptlets do nothing and succeed
    post = scripts.split("postinstall scriptlet (using /bin/sh):\n")[1].split("postuninstall")[0]
    assert subprocess.run(["/bin/sh", "-c", post], env={"PATH": "/nonexistent"}).returncode == 0


def test_unpacked_hook_builds_a_contract_example(rpm, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    subprocess.run(f"rpm2cpio {rpm} | cpio -idm --quiet", shell=True, cwd=tree, check=True)
    hook = tree / "etc/libvirt/hooks/qemu.d/50-payloadhook"
    assert hook.read_text().startswith("#!/usr/bin/python3 -IS\n") and os.access(hook, os.X_OK)
    assert "sys.path += ['/usr/lib/python3" in hook.read_text()
    (sitelib,) = [os.path.join(d, "..") for d, _, files in os.walk(tree) if "hook.py" in files]
    conf = tmp_path / "c.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {tmp_path}/images\n")
    xml = open(os.path.join(REPO, "tests", "data", "contract-example.xml"), "rb").read()
    xml = xml.replace(b"/run/payloadhook", f"{tmp_path}/images".encode())
    # this test's interpreter has pyfatfs and lxml; the library is the RPM's
    env = {"LC_ALL": "C", "PAYLOADHOOK_CONF": str(conf), "PYTHONPATH": os.path.abspath(sitelib)}
    result = subprocess.run([sys.executable, str(hook), "win-builder", "prepare", "begin", "-"], input=xml,
                            capture_output=True, env=env)
    assert (result.returncode, result.stderr) == (0, b"")
    assert sorted(os.listdir(tmp_path / "images")) == [".payloadhook", "win-builder-fda.img", "win-builder-hdc.iso"]
    probe = subprocess.run([sys.executable, "-c", "import payloadhook; print(payloadhook.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True)
    assert probe.stdout.startswith(str(tree))
    command = tree / "usr/bin/payloadhook"
    assert command.read_text().startswith("#!/usr/bin/python3 -IS\n") and os.access(command, os.X_OK)
    version = subprocess.run([sys.executable, str(command), "--version"], env=env, capture_output=True, text=True)
    assert version.stdout == f"payloadhook {payloadhook.__version__}\n"


def test_install_hook_then_start_then_uninstall_leaves_nothing(tmp_path):
    daemon = Libvirtd().start(hook=False)
    try:
        # a staging root whose etc/libvirt and etc/payloadhook are the daemon's private ones:
        # bind-mounted there in a mount namespace of the command's own (install-hook follows
        # no symbolic link out of its root, and the host's mounts stay as they are)
        root = tmp_path / "root"
        (root / "etc" / "libvirt").mkdir(parents=True)
        (root / "etc" / "payloadhook").mkdir()
        binds = (f"mount --bind {daemon.base}/etc {root}/etc/libvirt && "
                 f"mount --bind {daemon.base}/payloadhook-etc {root}/etc/payloadhook && exec \"$@\"")
        cli = ["unshare", "-m", "--propagation", "private", "sh", "-c", binds, "sh",
               sys.executable, "-m", "payloadhook.cli"]
        subprocess.run(cli + ["install-hook", "--root", str(root)], check=True, capture_output=True)
        os.kill(daemon.daemon_pid("libvirtd"), signal.SIGHUP)   # what install-hook does for --root /
        time.sleep(1)
        workdir = tmp_path / "xml"
        workdir.mkdir()
        (workdir / "d.xml").write_text(domain("ph-installed", [disk("cdrom", "hdc", f"{IMAGE_DIR}/ph-installed.iso")],
                                              [Payload(type="cdrom", files=(PayloadFile("a", b"a"),))]))
        daemon.virsh("define", str(workdir / "d.xml"))
        daemon.virsh("start", "ph-installed")
        assert os.path.exists(daemon.path(f"{IMAGE_DIR}/ph-installed.iso"))
        daemon.virsh("destroy", "ph-installed")
        assert not os.path.exists(daemon.path(f"{IMAGE_DIR}/ph-installed.iso"))
        subprocess.run(cli + ["uninstall-hook", "--root", str(root)], check=True, capture_output=True)
        assert os.listdir(os.path.join(daemon.base, "etc", "hooks", "qemu.d")) == []
        left = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]
        assert left == [], left
    finally:
        daemon.virsh("undefine", "ph-installed", check=False)
        daemon.stop()
