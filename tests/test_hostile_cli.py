"""The command run as root on paths other users control (issue 13, classes 9 and 10).

Each test is an attack: a file planted where the command reads or writes, a FIFO, a
device, a link. The command must refuse with one line (status 1), or do what it was told
and nothing else; it never hangs, never reads without bound, never writes outside the
place named, never changes the mode of another file.
"""

import os
import socket
import stat
import subprocess
import sys
import threading

import pytest

from tests.conftest import MARKER
from tests.harness import readback

CLI = [sys.executable, "-m", "payloadhook.cli"]


def run(*argv, timeout=30, cwd=None, env=None, input=None):
    """The command in a process of its own (a hang is caught by ``timeout``, not by the suite)."""
    result = subprocess.run([*CLI, *map(str, argv)], capture_output=True, timeout=timeout, cwd=cwd,
                            env={**os.environ, **(env or {})}, input=input)
    assert MARKER.encode() not in result.stdout + result.stderr
    return result


def refused(result, fragment):
    """Status 1, one line on stderr, holding ``fragment``."""
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("payloadhook: "), stderr
    assert fragment in stderr, stderr
    return stderr


@pytest.fixture
def secret(tmp_path):
    """A root-only file outside the inputs: what an attacker wants in a payload."""
    path = tmp_path / "root-only" / "secret"
    path.parent.mkdir(mode=0o700)
    path.write_text(MARKER)
    path.chmod(0o600)
    return path


@pytest.fixture
def seed(tmp_path):
    path = tmp_path / "seed"
    path.mkdir()
    (path / "user-data").write_bytes(b"#cloud-config\n")
    return path


# -- outputs --------------------------------------------------------------------------------

def test_output_onto_a_device_node_is_refused_and_the_node_kept(tmp_path, seed):
    """`build -o /dev/null` as root replaced the device node; here a node of our own, never /dev's."""
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    refused(run("build", "--type", "cdrom", "-o", node, seed), "not a regular file")
    assert stat.S_ISCHR(os.lstat(node).st_mode) and os.lstat(node).st_rdev == os.makedev(1, 3)


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory", "socket"])
def test_output_onto_anything_but_a_regular_file_is_refused(tmp_path, seed, secret, kind):
    out = tmp_path / "out.iso"
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "symlink":
        out.symlink_to(secret)
    elif kind == "directory":
        out.mkdir()
    else:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(out))
    before = os.lstat(out)
    result = run("build", "--type", "cdrom", "-o", out, seed, timeout=20)
    assert result.returncode == 1 and b"payloadhook: " in result.stderr
    after = os.lstat(out)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert secret.read_text() == MARKER and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert [p for p in os.listdir(tmp_path) if p.startswith(".payloadhook")] == []


def test_a_new_image_is_0600_whatever_the_umask(tmp_path, seed):
    out = tmp_path / "new.iso"
    result = subprocess.run(["sh", "-c", 'umask 0; exec "$@"', "sh", *CLI, "build", "--type", "cdrom", "-o",
                             str(out), str(seed)], capture_output=True)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_an_existing_output_keeps_its_mode_and_owner(tmp_path, seed):
    out = tmp_path / "seed.iso"
    out.write_bytes(b"old")
    os.chown(out, 65534, 65534)
    out.chmod(0o640)
    assert run("build", "--type", "cdrom", "-o", out, seed).returncode == 0
    st = out.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 65534, 65534)
    assert readback.iso_files(str(out)) == {"user-data": b"#cloud-config\n"}


def test_output_dash_is_standard_output(tmp_path, seed):
    result = run("build", "--type", "floppy", "-o", "-", seed)
    assert result.returncode == 0 and len(result.stdout) == 1474560
    assert result.stderr.decode().startswith("wrote -: floppy")
    image = tmp_path / "from-stdout.img"
    image.write_bytes(result.stdout)
    assert readback.fat_files(str(image)) == {"user-data": b"#cloud-config\n"}
    result = run("build", "--type", "cdrom", "-o", "-", seed)
    image.write_bytes(result.stdout)
    assert readback.iso_files(str(image)) == {"user-data": b"#cloud-config\n"}


def test_swapping_the_output_directory_for_a_link_never_writes_through_it(tmp_path, seed):
    """A user who owns the output's directory swaps it for a link to a root-only directory
    while root builds into it. Each write happens wholly in the one directory it opened
    (temporary file, fchmod, rename): never a temporary in one and a rename or chmod by path
    in the other, so the root-only file keeps its mode whichever directory a run landed in,
    and no temporary file is left anywhere."""
    victim_dir = tmp_path / "etc"
    victim_dir.mkdir(mode=0o700)
    victim = victim_dir / "out.iso"
    victim.write_text(MARKER)
    victim.chmod(0o600)
    user_dir = tmp_path / "user"
    user_dir.mkdir()
    stop = threading.Event()

    def swap():
        parked = tmp_path / "user.parked"
        while not stop.is_set():
            try:
                os.rename(user_dir, parked)
                os.symlink(victim_dir, user_dir)
                os.unlink(user_dir)
                os.rename(parked, user_dir)
            except OSError:
                pass

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for _ in range(30):
            run("build", "--type", "cdrom", "-o", user_dir / "out.iso", seed)
    finally:
        stop.set()
        swapper.join()
    assert sorted(os.listdir(victim_dir)) == ["out.iso"]
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert [p for p in os.listdir(user_dir) if p != "out.iso"] == []


# -- inputs ---------------------------------------------------------------------------------

def test_a_fifo_input_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "user-data"
    os.mkfifo(fifo)
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", fifo, timeout=20), "is a FIFO")
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", f"user-data={fifo}", timeout=20), "is a FIFO")
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mkfifo(tree / "meta-data")
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", tree, timeout=20), "is a FIFO")
    assert not (tmp_path / "x.iso").exists()


@pytest.mark.parametrize("device,kind", [("/dev/zero", "character device"), ("/dev/urandom", "character device")])
def test_a_device_input_is_refused_before_it_is_read(tmp_path, device, kind):
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", f"zero={device}", timeout=20), kind)


def test_a_socket_input_is_refused(tmp_path):
    path = tmp_path / "sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", f"s={path}"), "is a socket")


def test_a_file_over_the_limit_is_refused_by_its_size_before_it_is_read(tmp_path):
    """A sparse 64 GiB file: refused from fstat's size at once, not read into memory."""
    big = tmp_path / "big"
    with open(big, "wb") as stream:
        stream.truncate(64 << 30)
    result = run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", big, timeout=20)
    refused(result, "over max_file_size")
    conf = tmp_path / "small.conf"
    conf.write_text("[payloadhook]\nmax_payload_size = 10\n")
    (tmp_path / "a").write_bytes(b"123456")
    (tmp_path / "b").write_bytes(b"123456")
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", tmp_path / "a", tmp_path / "b",
                env={"PAYLOADHOOK_CONF": str(conf)}), "max_payload_size")


def test_links_below_a_directory_input_are_not_followed_unless_asked(tmp_path, seed, secret):
    (seed / "stolen").symlink_to(secret)
    out = tmp_path / "x.iso"
    refused(run("build", "--type", "cdrom", "-o", out, seed), "is a symbolic link; give --follow-symlinks")
    assert not out.exists()
    assert run("build", "--type", "cdrom", "-o", out, "--follow-symlinks", seed).returncode == 0
    assert readback.iso_files(str(out))["stolen"] == MARKER.encode()


def test_a_linked_directory_below_an_input_is_not_entered(tmp_path, seed, secret):
    (seed / "linked").symlink_to(secret.parent, target_is_directory=True)
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", seed), "is a symbolic link")


def test_a_link_loop_is_a_clear_error(tmp_path, seed):
    (seed / "sub").mkdir()
    (seed / "sub" / "up").symlink_to("..", target_is_directory=True)
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", "--follow-symlinks", seed),
            "symbolic link loop")
    (seed / "sub" / "up").unlink()
    (seed / "sub" / "self").symlink_to("self")
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", "--follow-symlinks", seed),
            "symbolic link loop")


def test_a_planted_file_named_like_the_argument_does_not_win(tmp_path):
    """`user-data=ud` is NAME=PATH whatever lies on disk: a file planted under the name
    `user-data=ud` in the working directory is never read."""
    (tmp_path / "ud").write_bytes(b"#cloud-config\n")
    (tmp_path / "user-data=ud").write_text(MARKER)
    out = tmp_path / "x.iso"
    assert run("build", "--type", "cdrom", "-o", out, "user-data=ud", cwd=tmp_path).returncode == 0
    assert readback.iso_files(str(out)) == {"user-data": b"#cloud-config\n"}
    # a path holding '=' is given as ./PATH, and is named by its base name
    assert run("build", "--type", "cdrom", "-o", out, "./user-data=ud", cwd=tmp_path).returncode == 0
    assert readback.iso_files(str(out)) == {"user-data=ud": MARKER.encode()}


def test_the_inputs_rule_is_in_the_help():
    help_text = run("build", "--help").stdout.decode()
    assert "NAME=PATH" in help_text and "./a=b" in help_text and "--follow-symlinks" in help_text


# -- class 10: an OVF downloaded from the internet ------------------------------------------

def ovf_without_content(tmp_path, names):
    """An OVF (as `ovf export` writes it without content) naming ``names`` with sizes."""
    files = "".join(f"<file><path>{name}</path><size>{size}</size></file>" for name, size in names)
    path = tmp_path / "download.ovf"
    path.write_text(f"""<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
      xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
      <ovf:VirtualSystem ovf:id="x"><ovf:VirtualHardwareSection><ovf:Item>
      <rasd:ResourceType>15</rasd:ResourceType><Device>cdrom</Device>
      <SpecParams><vmPayload>{files}</vmPayload></SpecParams>
      </ovf:Item></ovf:VirtualHardwareSection></ovf:VirtualSystem></ovf:Envelope>""")
    return path


def import_from(tmp_path, document, files):
    target = tmp_path / "vm.xml"
    target.write_text("<domain><name>vm</name><devices/></domain>")
    result = run("ovf", "import", document, "-o", target, "--files-from", files, timeout=20)
    return result, target


def test_files_from_never_follows_a_link_to_a_root_only_file(tmp_path, secret):
    files = tmp_path / "files"
    files.mkdir()
    (files / "user-data").symlink_to(secret)
    document = ovf_without_content(tmp_path, [("user-data", len(MARKER))])
    result, target = import_from(tmp_path, document, files)
    refused(result, "is a symbolic link")
    assert MARKER.encode() not in target.read_bytes() and b"payloads" not in target.read_bytes()


def test_files_from_never_enters_a_linked_directory(tmp_path, secret):
    files = tmp_path / "files"
    files.mkdir()
    (files / "openstack").symlink_to(secret.parent, target_is_directory=True)
    document = ovf_without_content(tmp_path, [("openstack/secret", len(MARKER))])
    result, target = import_from(tmp_path, document, files)
    refused(result, "symbolic link")
    assert MARKER.encode() not in target.read_bytes()


def test_files_from_takes_regular_files_only(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    os.mkfifo(files / "user-data")
    (files / "dev").mkdir()
    os.mknod(files / "dev" / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    refused(import_from(tmp_path, ovf_without_content(tmp_path, [("user-data", 1)]), files)[0], "is a FIFO")
    refused(import_from(tmp_path, ovf_without_content(tmp_path, [("dev/zero", 1)]), files)[0],
            "is a character device")


def test_files_from_holds_each_file_to_the_limits_before_reading(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    with open(files / "huge", "wb") as stream:
        stream.truncate(64 << 30)
    refused(import_from(tmp_path, ovf_without_content(tmp_path, [("huge", 64 << 30)]), files)[0],
            "over max_file_size")
    refused(import_from(tmp_path, ovf_without_content(tmp_path, [("huge", 10)]), files)[0], "over its limit")


# -- class 10: install-hook and uninstall-hook ------------------------------------------------

def test_install_makes_its_directories_0755_under_umask_0(tmp_path):
    root = tmp_path / "root"
    result = subprocess.run(["sh", "-c", 'umask 0; exec "$@"', "sh", *CLI, "install-hook", "--root", str(root),
                             "--no-reload"], capture_output=True)
    assert result.returncode == 0, result.stderr
    for directory in ("etc", "etc/libvirt", "etc/libvirt/hooks", "etc/libvirt/hooks/qemu.d", "etc/payloadhook",
                      "usr/share/payloadhook", "usr/lib/tmpfiles.d"):
        assert stat.S_IMODE(os.stat(root / directory).st_mode) == 0o755, directory
    for path, mode in (("etc/libvirt/hooks/qemu.d/50-payloadhook", 0o755),
                       ("etc/payloadhook/payloadhook.conf", 0o644)):
        assert stat.S_IMODE(os.stat(root / path).st_mode) == mode


def test_install_secures_a_hook_directory_others_could_write(tmp_path):
    root = tmp_path / "root"
    (root / "etc/libvirt/hooks/qemu.d").mkdir(parents=True)
    (root / "etc/libvirt/hooks/qemu.d").chmod(0o777)
    result = run("install-hook", "--root", root, "--no-reload")
    assert result.returncode == 0 and b"secured" in result.stdout
    assert stat.S_IMODE(os.stat(root / "etc/libvirt/hooks/qemu.d").st_mode) == 0o755


@pytest.mark.parametrize("link", ["etc/libvirt/hooks/qemu.d", "etc/payloadhook", "usr/share", "etc"])
def test_install_root_never_follows_a_link_out_of_it(tmp_path, link):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(outside, target_is_directory=True)
    refused(run("install-hook", "--root", root, "--no-reload"), "symbolic link")
    assert list(outside.iterdir()) == []


def test_uninstall_removes_only_what_install_wrote(tmp_path):
    root = tmp_path / "root"
    assert run("install-hook", "--root", root, "--no-reload").returncode == 0
    hook = root / "etc/libvirt/hooks/qemu.d/50-payloadhook"
    hook.write_text("#!/bin/sh\n# the administrator's own hook, under our name\n")
    xsl = root / "usr/share/payloadhook/redact.xsl"
    xsl.write_text("<!-- edited -->")
    result = run("uninstall-hook", "--root", root, "--no-reload")
    assert result.returncode == 0
    assert hook.exists() and xsl.exists()
    assert f"kept      {hook}" in result.stdout.decode()
    # a hook install wrote for another interpreter is still ours
    assert run("install-hook", "--root", root, "--no-reload", "--python", sys.executable).returncode == 0
    assert run("uninstall-hook", "--root", root, "--no-reload").returncode == 0
    assert not hook.exists()


def test_uninstall_never_follows_a_link_out_of_root(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "50-payloadhook").write_text("not ours")
    (root / "etc/libvirt/hooks").mkdir(parents=True)
    (root / "etc/libvirt/hooks/qemu.d").symlink_to(outside, target_is_directory=True)
    result = run("uninstall-hook", "--root", root, "--no-reload")
    assert result.returncode == 1 and b"symbolic link" in result.stderr
    assert (outside / "50-payloadhook").read_text() == "not ours"


@pytest.mark.parametrize("python,fragment", [
    ("python3", "not an absolute path"),
    ("./python3", "not an absolute path"),
    ("/bin/true", "cannot import payloadhook"),
    ("/nonexistent/python3", "cannot run or cannot import payloadhook"),
])
def test_install_refuses_an_interpreter_the_hook_could_not_run_on(tmp_path, python, fragment):
    root = tmp_path / "root"
    result = run("install-hook", "--root", root, "--no-reload", "--python", python)
    assert result.returncode == 2 and fragment in result.stderr.decode()
    assert not (root / "etc/libvirt/hooks/qemu.d/50-payloadhook").exists()


@pytest.mark.parametrize("verb", [["check"], ["ovf", "export", "-o", "x.ovf"]])
def test_a_file_planted_under_a_domains_name_does_not_stand_in_for_it(tmp_path, verb):
    """DOMAIN|FILE.xml: a file only when the argument holds '/' or ends in .xml, whatever
    lies in the working directory; here the domain is looked up (and the daemon is absent)."""
    (tmp_path / "vm1").write_text("<domain><name>vm1</name></domain>")
    result = run("-c", "qemu:///system?socket=/nonexistent/sock", *verb[:1], *verb[1:2], "vm1", *verb[2:],
                 cwd=tmp_path)
    assert result.returncode == 3 and b"cannot connect" in result.stderr
    assert not (tmp_path / "x.ovf").exists()
