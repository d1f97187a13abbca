"""The command run as root on paths other users control.

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
#: The other user: owns what an attacker plants (nobody, as on every Linux system).
NOBODY = 65534


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
    """A file of root's (the one running the command) keeps its mode and its group."""
    out = tmp_path / "seed.iso"
    out.write_bytes(b"old")
    os.chown(out, 0, NOBODY)
    out.chmod(0o640)
    assert run("build", "--type", "cdrom", "-o", out, seed).returncode == 0
    st = out.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, NOBODY)
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


# -- paths another user owns: the one rule of payloadhook.local.paths ----------------------------
# A directory or a link another user made (here: chowned to nobody) is as /tmp/ph-u of the
# attack reproducers; tmp_path/"tmp" plays /tmp (root's, sticky, world-writable).

def shared_tmp(tmp_path):
    path = tmp_path / "tmp"
    path.mkdir()
    path.chmod(0o1777)
    return path


def planted_dir(path):
    path.mkdir()
    os.chown(path, NOBODY, NOBODY)
    return path


def planted_link(path, target):
    path.symlink_to(target)
    os.lchown(path, NOBODY, NOBODY)
    return path


@pytest.fixture
def victim_dir(tmp_path):
    """A root-only directory holding a root-only file: where a planted link points."""
    path = tmp_path / "root-only-dir"
    path.mkdir(mode=0o700)
    (path / "seed.iso").write_text(MARKER)
    (path / "seed.iso").chmod(0o600)
    return path


def assert_untouched(victim_dir):
    assert sorted(os.listdir(victim_dir)) == ["seed.iso"]
    st = (victim_dir / "seed.iso").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0)
    assert (victim_dir / "seed.iso").read_text() == MARKER


def test_output_through_a_link_in_another_users_directory_is_refused(tmp_path, seed, victim_dir):
    """t2_build_dirlink: nobody owns /tmp/ph-u and made `out` a link to a root-only directory."""
    user = planted_dir(shared_tmp(tmp_path) / "ph-u")
    planted_link(user / "out", victim_dir)
    stderr = refused(run("build", "--type", "cdrom", "-o", user / "out" / "seed.iso", seed),
                     f"cannot write {user}/out/seed.iso: {user} belongs to another user (uid {NOBODY}); "
                     "write it elsewhere, or run the command as that user")
    assert MARKER not in stderr
    assert_untouched(victim_dir)


def test_output_in_another_users_directory_is_refused(tmp_path, seed):
    """Its entries can be swapped under the writer: nothing is written there, link or not."""
    user = planted_dir(shared_tmp(tmp_path) / "ph-u")
    refused(run("build", "--type", "cdrom", "-o", user / "seed.iso", seed), f"{user} belongs to another user")
    assert os.listdir(user) == []


def test_a_link_another_user_owns_is_not_followed_to_an_output(tmp_path, seed, victim_dir):
    """A link nobody planted in the sticky shared directory, as fs.protected_symlinks would refuse."""
    link = planted_link(shared_tmp(tmp_path) / "out", victim_dir)
    refused(run("build", "--type", "cdrom", "-o", link / "seed.iso", seed),
            f"{link} is a symbolic link owned by another user (uid {NOBODY})")
    assert_untouched(victim_dir)


@pytest.mark.parametrize("verb", ["build", "ovf export", "ovf merge", "ovf import"])
def test_every_output_refuses_another_users_directory(tmp_path, seed, victim_dir, verb):
    """build -o, ovf export -o, ovf merge (in place) and ovf import -o (in place) write through
    the one writer. The file edited in place is read (reading in another user's directory is
    allowed), never written back there."""
    from tests.test_ovf import domain_file
    domain = domain_file(tmp_path)
    user = planted_dir(shared_tmp(tmp_path) / "ph-u")
    planted_link(user / "out", victim_dir)
    carried = user / "vm.ovf"
    assert run("ovf", "export", domain, "-o", tmp_path / "vm.ovf", "--with-content").returncode == 0
    carried.write_bytes((tmp_path / "vm.ovf").read_bytes())
    xml = user / "target.xml"
    xml.write_text("<domain><name>t</name><devices/></domain>")
    argv = {"build": ["build", "--type", "cdrom", "-o", user / "out" / "seed.iso", seed],
            "ovf export": ["ovf", "export", domain, "-o", user / "out" / "seed.iso", "--with-content"],
            "ovf merge": ["ovf", "merge", domain, carried],
            "ovf import": ["ovf", "import", tmp_path / "vm.ovf", "-o", xml, "--no-seal"]}[verb]
    refused(run(*argv), f"{user} belongs to another user (uid {NOBODY})")
    assert_untouched(victim_dir)
    assert carried.read_bytes() == (tmp_path / "vm.ovf").read_bytes()
    assert xml.read_text() == "<domain><name>t</name><devices/></domain>"
    assert sorted(os.listdir(user)) == ["out", "target.xml", "vm.ovf"]


@pytest.mark.parametrize("verb", ["build", "ovf export"])
def test_an_output_another_user_planted_is_never_written_over(tmp_path, seed, verb):
    """t1_build_keepowner: nobody made /tmp/ph-out.iso, 0666; root's output would have been
    handed to them (their owner and mode kept), content and all."""
    from tests.test_ovf import domain_file
    planted = shared_tmp(tmp_path) / "ph-out.iso"
    planted.touch()
    os.chown(planted, NOBODY, NOBODY)
    planted.chmod(0o666)
    argv = {"build": ["build", "--type", "cdrom", "-o", planted, seed],
            "ovf export": ["ovf", "export", domain_file(tmp_path), "-o", planted, "--with-content"]}[verb]
    refused(run(*argv), f"cannot write {planted}: it belongs to another user (uid {NOBODY}); refusing to write "
            "over it")
    st = planted.stat()
    assert (st.st_size, st.st_uid, stat.S_IMODE(st.st_mode)) == (0, NOBODY, 0o666)
    assert os.listdir(planted.parent) == ["ph-out.iso"]


def test_a_relative_output_is_written_in_the_working_directory_whoever_owns_it(tmp_path, seed):
    """The caller's working directory is trusted: an admin who cd's into a user's directory
    means to write there."""
    user = planted_dir(tmp_path / "user")
    assert run("build", "--type", "cdrom", "-o", "seed.iso", seed, cwd=user).returncode == 0
    st = (user / "seed.iso").stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert readback.iso_files(str(user / "seed.iso")) == {"user-data": b"#cloud-config\n"}


def test_an_output_straight_into_tmp_is_written(seed):
    """/tmp itself: root's, sticky, world-writable (the real one)."""
    out = f"/tmp/payloadhook-test-{os.getpid()}-{os.urandom(4).hex()}.iso"
    try:
        assert run("build", "--type", "cdrom", "-o", out, seed).returncode == 0
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    finally:
        os.unlink(out)


def test_a_link_of_roots_on_the_output_path_is_followed(tmp_path, seed):
    """An admin's own link (as /var/run -> /run) is followed; its target is walked by the same rule."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to("real")
    assert run("build", "--type", "cdrom", "-o", tmp_path / "alias" / "seed.iso", seed).returncode == 0
    assert readback.iso_files(str(real / "seed.iso")) == {"user-data": b"#cloud-config\n"}
    user = planted_dir(tmp_path / "user")
    (tmp_path / "to-user").symlink_to(user)
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "to-user" / "seed.iso", seed),
            f"{user} belongs to another user")


def test_a_link_loop_on_the_output_path_is_a_clear_error(tmp_path, seed):
    (tmp_path / "loop").symlink_to("loop")
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "loop" / "seed.iso", seed),
            "more than 40 symbolic links on the path")


def test_a_link_another_user_owns_is_not_followed_to_an_input(tmp_path, secret):
    """t8_input_symlink: nobody's /tmp/ph-alice/ud links to a root-only file; as NAME=PATH,
    as a bare PATH, and on the way to a file; and a link to a root-only directory given as
    a directory argument."""
    alice = planted_dir(shared_tmp(tmp_path) / "ph-alice")
    ud = planted_link(alice / "ud", secret)
    dl = planted_link(alice / "dl", secret.parent)
    out = tmp_path / "x.iso"
    for argument in (f"user-data={ud}", ud, f"user-data={dl}/secret", dl / "secret", dl, f"{dl}/"):
        stderr = refused(run("build", "--type", "cdrom", "-o", out, argument),
                         f"is a symbolic link owned by another user (uid {NOBODY}); give --follow-symlinks")
        assert MARKER not in stderr
        assert not out.exists()


def test_a_planted_link_beside_a_good_file_is_refused_all_the_same(tmp_path, secret):
    """Files in one directory share its walk (inputs.Parents): each is still looked at alone."""
    alice = planted_dir(shared_tmp(tmp_path) / "ph-alice")
    (alice / "meta-data").write_bytes(b"instance-id: x\n")
    planted_link(alice / "ud", secret)
    out = tmp_path / "x.iso"
    for arguments in ([f"meta-data={alice}/meta-data", f"user-data={alice}/ud"],
                      [alice / "meta-data", alice / "ud"]):
        refused(run("build", "--type", "cdrom", "-o", out, *arguments), f"input {alice}/ud is a symbolic link owned")
        assert not out.exists()


def test_follow_symlinks_follows_a_link_another_user_owns(tmp_path, secret):
    """The admin's explicit choice: --follow-symlinks follows named links whoever owns them."""
    alice = planted_dir(shared_tmp(tmp_path) / "ph-alice")
    ud = planted_link(alice / "ud", secret)
    dl = planted_link(alice / "dl", secret.parent)
    out = tmp_path / "x.iso"
    assert run("build", "--type", "cdrom", "-o", out, "--follow-symlinks", f"user-data={ud}", dl).returncode == 0
    assert readback.iso_files(str(out)) == {"user-data": MARKER.encode(), "secret": MARKER.encode()}


def test_inputs_in_a_tree_of_roots_follow_its_links(tmp_path, seed):
    """Links root made are followed, as a file, on the way and as a directory argument."""
    (tmp_path / "ud").symlink_to(seed / "user-data")
    (tmp_path / "seed-link").symlink_to("seed")
    out = tmp_path / "x.iso"
    assert run("build", "--type", "cdrom", "-o", out, f"user-data={tmp_path}/ud",
               f"meta-data={tmp_path}/seed-link/user-data").returncode == 0
    assert readback.iso_files(str(out)) == {"user-data": b"#cloud-config\n", "meta-data": b"#cloud-config\n"}
    assert run("build", "--type", "cdrom", "-o", out, tmp_path / "seed-link").returncode == 0
    assert readback.iso_files(str(out)) == {"user-data": b"#cloud-config\n"}
    assert run("build", "--type", "cdrom", "-o", out, "user-data=../ud", cwd=seed).returncode == 0


def test_inputs_in_another_users_directory_are_read(tmp_path):
    """Reading is not writing: a regular file in another user's directory is read as named."""
    alice = planted_dir(shared_tmp(tmp_path) / "ph-alice")
    (alice / "ud").write_bytes(b"#cloud-config\n")
    out = tmp_path / "x.iso"
    assert run("build", "--type", "cdrom", "-o", out, f"user-data={alice}/ud", alice).returncode == 0
    assert readback.iso_files(str(out)) == {"user-data": b"#cloud-config\n", "ud": b"#cloud-config\n"}


def test_a_chain_of_more_than_40_links_is_a_clear_error(tmp_path, seed):
    for index in range(41):
        (tmp_path / f"l{index}").symlink_to(f"l{index + 1}")
    (tmp_path / "l41").symlink_to(seed / "user-data")
    refused(run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", f"user-data={tmp_path}/l0"),
            "more than 40 symbolic links on its path")
    assert run("build", "--type", "cdrom", "-o", tmp_path / "x.iso", f"user-data={tmp_path}/l2").returncode == 0


def test_named_documents_follow_no_link_another_user_owns(tmp_path, secret):
    """--files-json FILE, ovf show FILE.ovf, a domain XML file, --files-from DIR."""
    from tests.test_ovf import domain_file
    alice = planted_dir(shared_tmp(tmp_path) / "ph-alice")
    carried = tmp_path / "vm.ovf"
    assert run("ovf", "export", domain_file(tmp_path), "-o", carried).returncode == 0
    target = tmp_path / "target.xml"
    target.write_text("<domain><name>t</name><devices/></domain>")
    cases = [
        (["build", "--type", "cdrom", "-o", tmp_path / "x.iso", "--files-json", planted_link(alice / "j", secret)],
         "--files-json file"),
        (["ovf", "show", planted_link(alice / "o.ovf", carried)], "OVF"),
        (["ovf", "export", planted_link(alice / "d.xml", domain_file(tmp_path)), "-o", tmp_path / "y.ovf"],
         "domain XML file"),
        (["ovf", "import", carried, "-o", target, "--files-from", planted_link(alice / "files", secret.parent)],
         "--files-from"),
    ]
    for argv, what in cases:
        stderr = refused(run(*argv), f"is a symbolic link owned by another user (uid {NOBODY})")
        assert stderr.startswith(f"payloadhook: {what} ") and MARKER not in stderr
    assert not (tmp_path / "x.iso").exists() and not (tmp_path / "y.ovf").exists()
