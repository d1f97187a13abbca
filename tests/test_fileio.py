"""payloadhook.local.paths.resolve: the one rule for a path a user names (module doc of local/paths.py).

Run as root, as the command is; "another user" is nobody (65534), made with lchown/chown.
"""

import errno
import os

import pytest

from payloadhook.local import paths

NOBODY = 65534


def where(resolved):
    """The directory a Resolved's descriptor is, and the name in it."""
    with resolved:
        return os.readlink(f"/proc/self/fd/{resolved.dir_fd}"), resolved.name


def test_an_absolute_path_is_walked_from_the_root(tmp_path):
    (tmp_path / "a").mkdir()
    assert where(paths.resolve(f"{tmp_path}/a/f")) == (f"{tmp_path}/a", "f")


def test_a_relative_path_is_walked_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert where(paths.resolve("f")) == (f"{tmp_path}/a/b", "f")
    assert where(paths.resolve("../f")) == (f"{tmp_path}/a", "f")
    assert where(paths.resolve("./..//b/./f")) == (f"{tmp_path}/a/b", "f")


def test_a_path_that_ends_at_a_directory_names_it_dot(tmp_path):
    assert where(paths.resolve("/")) == ("/", ".")
    (tmp_path / "a").mkdir()
    assert where(paths.resolve(f"{tmp_path}/a/..")) == (str(tmp_path), ".")


def test_links_of_roots_are_followed_with_their_targets_walked_the_same_way(tmp_path):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "sub" / "f").write_text("x")
    (tmp_path / "rel").symlink_to("real/sub")
    (tmp_path / "abs").symlink_to(tmp_path / "real")
    (tmp_path / "up").symlink_to("real/sub/..")
    assert where(paths.resolve(f"{tmp_path}/rel/f")) == (f"{tmp_path}/real/sub", "f")
    assert where(paths.resolve(f"{tmp_path}/abs/sub/f")) == (f"{tmp_path}/real/sub", "f")
    assert where(paths.resolve(f"{tmp_path}/up/sub/f")) == (f"{tmp_path}/real/sub", "f")
    (tmp_path / "flink").symlink_to("real/sub/f")
    assert where(paths.resolve(f"{tmp_path}/flink")) == (str(tmp_path), "flink")    # the last one: as it is
    with paths.resolve(f"{tmp_path}/flink", last=True) as found:    # ...or followed, with its lstat
        assert found.name == "f" and found.st.st_size == 1


def test_a_link_another_user_owns_is_never_followed_unless_asked(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "theirs").symlink_to("real")
    os.lchown(tmp_path / "theirs", NOBODY, NOBODY)
    (tmp_path / "flink").symlink_to("real/f")
    os.lchown(tmp_path / "flink", NOBODY, NOBODY)
    for path, link, last in ((f"{tmp_path}/theirs/f", f"{tmp_path}/theirs", False),
                             (f"{tmp_path}/flink", f"{tmp_path}/flink", True)):
        with pytest.raises(paths.ForeignOwner) as refused:
            paths.resolve(path, last=last)
        assert (refused.value.kind, refused.value.uid, refused.value.where) == ("link", NOBODY, link)
        with paths.resolve(path, last=last, follow_any=True) as found:
            assert found.name == "f"


def test_a_directory_another_user_owns_refuses_an_output_not_an_input(tmp_path):
    (tmp_path / "user" / "sub").mkdir(parents=True)
    os.chown(tmp_path / "user", NOBODY, NOBODY)
    with pytest.raises(paths.ForeignOwner) as refused:
        paths.resolve(f"{tmp_path}/user/sub/f", owned_dirs=True)
    assert (refused.value.kind, refused.value.where) == ("directory", f"{tmp_path}/user")
    assert str(refused.value) == f"{tmp_path}/user belongs to another user (uid {NOBODY})"
    assert where(paths.resolve(f"{tmp_path}/user/sub/f")) == (f"{tmp_path}/user/sub", "f")
    # a root-owned sticky world-writable directory, as /tmp, is root's
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp").chmod(0o1777)
    assert where(paths.resolve(f"{tmp_path}/tmp/f", owned_dirs=True)) == (f"{tmp_path}/tmp", "f")


def test_more_than_40_links_is_eloop_and_a_missing_component_enoent(tmp_path):
    for index in range(41):
        (tmp_path / f"l{index}").symlink_to(f"l{index + 1}")
    (tmp_path / "l41").mkdir()
    with pytest.raises(OSError) as failed:
        paths.resolve(f"{tmp_path}/l0/f")
    assert failed.value.errno == errno.ELOOP
    assert where(paths.resolve(f"{tmp_path}/l1/f")) == (f"{tmp_path}/l41", "f")
    with pytest.raises(OSError) as failed:
        paths.resolve(f"{tmp_path}/missing/f")
    assert failed.value.errno == errno.ENOENT
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError) as failed:
        paths.resolve(f"{tmp_path}/file/f")
    assert failed.value.errno == errno.ENOTDIR


def test_the_walk_leaves_no_descriptor_open(tmp_path):
    (tmp_path / "theirs").symlink_to(".")
    os.lchown(tmp_path / "theirs", NOBODY, NOBODY)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(paths.ForeignOwner):
            paths.resolve(f"{tmp_path}/theirs/f")
        with pytest.raises(OSError):
            paths.resolve(f"{tmp_path}/missing/f")
        paths.resolve(f"{tmp_path}/f").close()
    assert len(os.listdir("/proc/self/fd")) == before


class Refused(Exception):
    pass


def _private(d):
    with open(f"{d}/f", "wb") as stream:
        stream.write(b"secret")
    os.chmod(f"{d}/f", 0o600)


@pytest.mark.parametrize("make,why", [
    (lambda d: os.symlink(f"{d}/real", f"{d}/f"), "a link, even to a private file"),
    (lambda d: os.mkfifo(f"{d}/f", 0o600), "a FIFO (and opening it did not block)"),
    (lambda d: os.mkdir(f"{d}/f", 0o700), "a directory"),
    (lambda d: (_private(d), os.chmod(f"{d}/f", 0o640)), "readable by its group"),
    (lambda d: (_private(d), os.chmod(f"{d}/f", 0o602)), "writable by others"),
    (lambda d: (_private(d), os.chown(f"{d}/f", NOBODY, -1)), "another user's"),
])
def test_a_private_file_is_refused_unless_a_regular_file_of_its_owner_alone(tmp_path, make, why):
    """fileio.read_private, what the key files and inject's ledger are read with."""
    from payloadhook import fileio
    (tmp_path / "real").write_bytes(b"secret")
    os.chmod(tmp_path / "real", 0o600)
    make(str(tmp_path))
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises((Refused, OSError)) as caught:
            fileio.read_private(fd, "f", 100, os.geteuid(), Refused)
        if "link" in why:
            assert isinstance(caught.value, OSError) and caught.value.errno == errno.ELOOP
        else:
            assert isinstance(caught.value, Refused), why
    finally:
        os.close(fd)


def test_a_private_file_reads_up_to_one_byte_over_its_limit_and_a_missing_one_is_none(tmp_path):
    from payloadhook import fileio
    (tmp_path / "f").write_bytes(b"x" * 1000)
    os.chmod(tmp_path / "f", 0o600)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert fileio.read_private(fd, "f", 10, os.geteuid(), Refused) == b"x" * 11
        assert fileio.read_private(fd, "f", 5000, os.geteuid(), Refused) == b"x" * 1000
        assert fileio.read_private(fd, "missing", 10, os.geteuid(), Refused) is None
    finally:
        os.close(fd)
