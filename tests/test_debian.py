"""The Debian package (debian/, built by packaging/build-deb): lintian's verdict, then apt
installing, removing and purging it in a debootstrap chroot (tests/harness/debroot.py), and
installing it over a host set up the old way (a virtual environment and install-hook)."""

import os
import re
import shutil
import subprocess

import pytest

from payloadhook import install
from tests.conftest import REPO
from tests.harness.debroot import ENV, DebRoot
from tests.harness.paths import WORK_ROOT

pytestmark = pytest.mark.integration

HOOK = "/etc/libvirt/hooks/qemu.d/50-payloadhook"
CONF = "/etc/payloadhook/payloadhook.conf"
KEYS = "/etc/payloadhook/keys"
#: Where the RPM spec's macros put files on Debian 12.
SPEC_MACROS = {"%{python3_sitelib}": "/usr/lib/python3/dist-packages", "%{_bindir}": "/usr/bin",
               "%{_sysconfdir}": "/etc", "%{_tmpfilesdir}": "/usr/lib/tmpfiles.d", "%{_unitdir}": "/lib/systemd/system",
               "%{_datadir}": "/usr/share"}


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(["bash", os.path.join(REPO, "packaging", "build-deb"), str(out)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    (package,) = [os.path.join(out, f) for f in os.listdir(out) if f.endswith("_all.deb")]
    return package


@pytest.fixture(scope="module")
def root(deb):
    chroot = DebRoot.copy(os.path.join(WORK_ROOT, f"debroot-{os.getpid()}"))
    shutil.copy(deb, chroot.file("/tmp/payloadhook.deb"))
    yield chroot
    chroot.remove()


def apt(root, *args, check=True):
    return root.run("apt-get -q -y --no-install-recommends " + " ".join(args), check=check)


@pytest.fixture
def clean(root):
    """The chroot without payloadhook: purged, its keys removed as purge says."""
    apt(root, "purge payloadhook", check=False)    # unknown to apt before the first install
    root.run(f"rm -rf {KEYS} /opt/payloadhook /usr/local/bin/payloadhook /tmp/src && rmdir /etc/payloadhook || true")
    return root


def dpkg_list(root):
    return root.run("dpkg -L payloadhook").stdout.split("\n")[:-1]


def spec_files():
    """The paths of the RPM spec's %files, on Debian 12."""
    with open(os.path.join(REPO, "packaging", "payloadhook.spec")) as stream:
        section = stream.read().split("\n%files\n")[1].split("\n%changelog")[0]
    paths = []
    for line in section.split("\n"):
        line = re.sub(r"^%(dir|config\(noreplace\)) (%attr\([^)]*\) )?", "", line.strip())
        if not line or line.startswith(("#", "%license", "%doc")):
            continue
        for macro, path in SPEC_MACROS.items():
            line = line.replace(macro, path)
        paths.append(line)
    return paths


def test_the_package_version_is_the_library_version(deb):
    assert os.path.basename(deb) == f"payloadhook_{__import__('payloadhook').__version__}_all.deb"


def test_lintian_reports_nothing(deb):
    result = subprocess.run(["lintian", "--info", "--pedantic", deb], env=ENV, capture_output=True, text=True)
    tags = [line for line in (result.stdout + result.stderr).split("\n")
            if line and "running with root privileges is not recommended" not in line]
    assert (result.returncode, tags) == (0, [])


def test_dpkg_lists_every_installed_file(clean, deb):
    root = clean
    apt(root, "install /tmp/payloadhook.deb")
    listed = dpkg_list(root)
    assert all(os.path.lexists(root.file(path)) for path in listed)
    # what install-hook places and the RPM ships, the package ships
    for relative in (install.HOOK, install.CONF, install.XSL, install.OVF_XSL, install.SCHEMA, install.TMPFILES,
                     *install.COCKPIT):
        assert "/" + relative in listed, relative
    for path in spec_files():
        assert path in listed, path
    assert "/usr/share/man/man1/payloadhook.1.gz" in listed and "/usr/share/doc/payloadhook/copyright" in listed
    # and nothing in its own directories that dpkg does not know (but Python's byte code)
    for top in ("/usr/lib/python3/dist-packages/payloadhook", "/usr/share/payloadhook", "/usr/share/cockpit/payloadhook",
                "/usr/libexec/payloadhook", "/etc/payloadhook"):
        for directory, subdirs, files in os.walk(root.file(top)):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            for name in files:
                inside = "/" + os.path.relpath(os.path.join(directory, name), root.path)
                assert inside in listed, inside
    assert root.run("dpkg --verify payloadhook").stdout == ""
    with open(root.file("/var/lib/dpkg/info/payloadhook.conffiles")) as stream:
        assert stream.read().split() == [CONF]
    # the hook: a link (no conffile to outlive the library) to a script for Debian's python3
    assert os.readlink(root.file(HOOK)) == "/usr/libexec/payloadhook/qemu-hook"
    for script in ("/usr/libexec/payloadhook/qemu-hook", "/usr/bin/payloadhook"):
        with open(root.file(script)) as stream:
            text = stream.read()
        assert text.startswith("#!/usr/bin/python3 -IS\n") and "sys.path += ['/usr/lib/python3/dist-packages']" in text
    # the tmpfiles entry was applied; the units are there, neither enabled
    assert oct(os.stat(root.file("/run/payloadhook")).st_mode & 0o7777) == "0o711"
    assert os.path.exists(root.file("/lib/systemd/system/payloadhook-gc.service"))
    assert not os.path.lexists(root.file("/etc/systemd/system/multi-user.target.wants/payloadhook-gc.service"))


def test_installed_hook_and_command_run_on_debian_python(clean):
    root = clean
    apt(root, "install /tmp/payloadhook.deb")
    shutil.copy(os.path.join(REPO, "tests", "data", "contract-example.xml"), root.file("/tmp/domain.xml"))
    with open(root.file("/tmp/domain.xml"), "rb") as stream:
        xml = stream.read().replace(b"/run/payloadhook", b"/tmp/images")
    with open(root.file("/tmp/domain.xml"), "wb") as stream:
        stream.write(xml)
    with open(root.file("/tmp/test.conf"), "w") as stream:
        stream.write("[payloadhook]\nimage_dir = /tmp/images\n")
    environment = "env -i LC_ALL=C PAYLOADHOOK_CONF=/tmp/test.conf PAYLOADHOOK_INDEX=/tmp/index"
    root.run(f"{environment} {HOOK} win-builder prepare begin - </tmp/domain.xml")
    assert sorted(os.listdir(root.file("/tmp/images"))) == [".payloadhook", "win-builder-fda.img", "win-builder-hdc.iso"]
    root.run(f"{environment} {HOOK} win-builder release end - </tmp/domain.xml")
    assert os.listdir(root.file("/tmp/images")) == [".payloadhook"]
    version = root.run("command -v payloadhook && payloadhook --version").stdout
    assert version == f"/usr/bin/payloadhook\npayloadhook {__import__('payloadhook').__version__}\n"
    # install-hook and uninstall-hook leave dpkg's files to dpkg
    for verb in ("install-hook", "uninstall-hook"):
        refused = root.run(f"payloadhook {verb} --no-reload", check=False)
        assert (refused.returncode, refused.stderr) == (
            2, f"payloadhook: {verb}: / has the Debian package installed, whose files apt manages "
               "(apt remove payloadhook)\n")
    assert root.run("dpkg --verify payloadhook").stdout == ""


def test_remove_keeps_the_configuration_and_purge_leaves_only_the_keys(clean):
    root = clean
    before = root.snapshot()
    apt(root, "install /tmp/payloadhook.deb")
    key = root.run("payloadhook key new").stdout.split()[2]
    with open(root.file(CONF), "a") as stream:
        stream.write("max_files = 100\n")

    apt(root, "remove payloadhook")
    assert not os.path.lexists(root.file(HOOK)) and not os.path.exists(root.file("/usr/bin/payloadhook"))
    assert "max_files = 100\n" in open(root.file(CONF)).read()
    assert root.run("dpkg-query -W -f '${db:Status-Status}' payloadhook").stdout == "config-files"

    purge = apt(root, "purge payloadhook").stdout
    assert f"payloadhook: purge left {KEYS}, the sealing keys" in purge
    told = f"rm -r {KEYS} && rmdir /etc/payloadhook"
    assert f"payloadhook: to remove them too: {told}" in purge
    after = root.snapshot()
    assert before - after == set()
    assert after - before == {"/etc/payloadhook", KEYS, f"{KEYS}/{key}.key", f"{KEYS}/current"}
    root.run(told)
    assert root.snapshot() == before


def test_purge_of_a_host_without_keys_says_nothing_is_left(clean):
    root = clean
    before = root.snapshot()
    apt(root, "install /tmp/payloadhook.deb")
    purge = apt(root, "purge payloadhook").stdout
    assert "payloadhook:" not in purge and "not empty" not in purge
    assert root.snapshot() == before


def old_installation(root):
    """What packaging/install-debian did before the package: a virtual environment in
    /opt/payloadhook with the package pip-installed, /usr/local/bin/payloadhook linked into
    it, then install-hook for the environment's python."""
    copy_tree(root, "/tmp/src")
    root.run("/usr/bin/python3 -m venv --system-site-packages /opt/payloadhook"
             " && /opt/payloadhook/bin/pip install -q --no-index --no-build-isolation /tmp/src"
             " && ln -sf /opt/payloadhook/bin/payloadhook /usr/local/bin/payloadhook"
             " && payloadhook install-hook --python /opt/payloadhook/bin/python3 --no-reload")


@pytest.mark.parametrize("edited", [True, False])
def test_install_over_an_install_hook_host_takes_it_over(clean, edited):
    root = clean
    old_installation(root)
    with open(root.file(HOOK)) as stream:
        assert stream.read().startswith("#!/opt/payloadhook/bin/python3 -IS\n")
    if edited:
        with open(root.file(CONF), "a") as stream:
            stream.write("max_files = 100\n")
    # stale files of install-hook's that the package does not ship
    with open(root.file("/usr/share/cockpit/payloadhook/old.js"), "w") as stream:
        stream.write("// an older page's file\n")

    output = apt(root, "install /tmp/payloadhook.deb").stdout   # standard input closed: dpkg may ask nothing
    assert ("payloadhook: kept your edited" in output) == edited
    assert ("max_files = 100\n" in open(root.file(CONF)).read()) == edited
    assert "payloadhook: removed /usr/local/bin/payloadhook" in output
    assert "payloadhook: removed /opt/payloadhook" in output
    for gone in ("/opt/payloadhook", "/usr/local/bin/payloadhook", "/usr/share/cockpit/payloadhook/old.js",
                 CONF + ".install-hook"):
        assert not os.path.lexists(root.file(gone)), gone
    assert os.readlink(root.file(HOOK)) == "/usr/libexec/payloadhook/qemu-hook"
    assert root.run("command -v payloadhook").stdout == "/usr/bin/payloadhook\n"
    # dpkg knows every file; only an edited configuration differs from the package's
    verify = root.run("dpkg --verify payloadhook").stdout
    assert verify == (f"??5?????? c {CONF}\n" if edited else "")
    # and keeps the edit on the next upgrade, asking nothing
    apt(root, "install --reinstall /tmp/payloadhook.deb")
    assert ("max_files = 100\n" in open(root.file(CONF)).read()) == edited


def copy_tree(root, inside):
    os.makedirs(root.file(inside), exist_ok=True)
    subprocess.run(f"tar -C {REPO} --exclude=.git --exclude=.venv --exclude=__pycache__ --exclude='*.egg-info' "
                   f"--exclude=.hypothesis --exclude=.mypy_cache --exclude=./dist --exclude=./node_modules -cf - . | tar -C {root.file(inside)} -xf -",
                   shell=True, check=True)


def test_install_debian_builds_and_installs_the_package(clean):
    """The README's first set-up command (without --demo: the guest tests boot that guest),
    in the chroot: libvirtd it starts ends with the chroot's PID namespace. Its build of the
    web console runs Debian's own nodejs and npm, with an empty npm cache and no way to the npm
    registry (the chroot is given none): PatternFly comes from the tree."""
    root = clean
    copy_tree(root, "/root/payloadhook")
    result = root.run("cd /root/payloadhook && bash packaging/install-debian && payloadhook list"
                      " && dpkg-query -W -f '${Version} ${db:Status-Status}\\n' payloadhook")
    lines = result.stdout.split("\n")
    assert "install-debian: building the Debian package…" in lines
    assert "install-debian: installing /root/payloadhook/dist/payloadhook_0.1.0_all.deb…" in lines
    assert lines[-3:] == ["DOMAIN  STATE     PAYLOADS", "0.1.0 installed", ""]   # the command reached libvirtd
    assert os.readlink(root.file(HOOK)) == "/usr/libexec/payloadhook/qemu-hook"
    # the console was built by Debian's own nodejs 18 and npm 9 (install-debian installed them)
    versions = root.run("dpkg-query -W -f '${Version}\\n' nodejs npm && npm --version").stdout.split()
    assert versions[0].startswith("18.") and versions[1].startswith("9.") and versions[2].startswith("9."), versions
    assert os.path.exists(root.file("/usr/share/cockpit/payloadhook/patternfly.css"))


@pytest.mark.parametrize("held", ["key_dir", "mount"])
def test_install_leaves_an_old_environment_that_holds_keys_or_a_mount(clean, held):
    """The old /opt/payloadhook is removed only when it is nothing but the virtual environment:
    a key_dir configured in it, or a file system mounted in it, leaves it whole, and says so."""
    root = clean
    old_installation(root)
    if held == "key_dir":
        with open(root.file(CONF), "a") as stream:
            stream.write("key_dir = /opt/payloadhook/keys\n")
        root.run("mkdir -m 0700 /opt/payloadhook/keys && echo secret > /opt/payloadhook/keys/k1.key")
        output = apt(root, "install /tmp/payloadhook.deb").stdout
        assert open(root.file("/opt/payloadhook/keys/k1.key")).read() == "secret\n"
        assert "the configured directory /opt/payloadhook/keys lies in it" in output
    else:
        # the mount lives in the run's own mount namespace: made, installed over and read in one run
        output = root.run("mkdir /opt/payloadhook/lib/data && mount -t tmpfs tmpfs /opt/payloadhook/lib/data"
                          " && echo kept > /opt/payloadhook/lib/data/file"
                          " && apt-get -q -y --no-install-recommends install /tmp/payloadhook.deb"
                          " && cat /opt/payloadhook/lib/data/file").stdout
        assert output.endswith("kept\n")
        assert "a file system is mounted in it" in output
    assert "payloadhook: left /opt/payloadhook" in output and "payloadhook: removed /opt/payloadhook" not in output
    assert os.path.exists(root.file("/opt/payloadhook/bin/payloadhook"))
    assert root.run("command -v payloadhook").stdout == "/usr/bin/payloadhook\n"
