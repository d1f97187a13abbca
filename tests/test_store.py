"""The image directory: confinement, atomic writes, records, release (README, "The hook")."""

import json
import os

import pytest

from payloadhook.errors import StoreError
from payloadhook.store.images import Image, ImageStore
from payloadhook.store.records import RECORDS


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "images"), str(tmp_path / "index"))


def files_in(store):
    return sorted(os.listdir(store.image_dir))


def replace_file(path, content):
    """What virsh change-media and an admin's cp+mv do: a new file (a new inode: the old one
    still exists when the new one is made, so no file system can give its number again)."""
    with open(path + ".new", "wb") as stream:
        stream.write(content)
    os.replace(path + ".new", path)


def test_prepare_writes_atomically_and_records(store):
    paths = store.prepare("dom", None, [Image.of(store.image_dir + "/dom-hdc.iso", b"iso"),
                                  Image.of(store.image_dir + "/dom-fda.img", b"fat")])
    assert paths == [store.image_dir + "/dom-hdc.iso", store.image_dir + "/dom-fda.img"]
    assert files_in(store) == [RECORDS, "dom-fda.img", "dom-hdc.iso"]
    assert open(paths[0], "rb").read() == b"iso"
    assert os.stat(paths[0]).st_mode & 0o777 == 0o600
    assert os.stat(store.image_dir).st_mode & 0o777 == 0o711
    (record,) = os.listdir(os.path.join(store.image_dir, RECORDS))
    content = json.load(open(os.path.join(store.image_dir, RECORDS, record)))
    assert content["domain"] == "dom"
    assert [i["name"] for i in content["images"]] == ["dom-hdc.iso", "dom-fda.img"]
    assert [(r.domain, r.names) for r in store.records()] == [("dom", ("dom-hdc.iso", "dom-fda.img"))]


def test_release_removes_what_prepare_built_and_is_idempotent(store):
    store.prepare("dom", None, [Image.of(store.image_dir + "/dom-hdc.iso", b"iso")])
    assert store.release("dom") == [store.image_dir + "/dom-hdc.iso"]
    assert files_in(store) == [RECORDS]
    assert os.listdir(os.path.join(store.image_dir, RECORDS)) == []
    assert store.release("dom") == []


def test_release_without_prepare_is_harmless(store, tmp_path):
    assert store.release("never-started") == []
    assert not os.path.exists(store.image_dir)


def test_prepare_again_replaces_own_image(store):
    store.prepare("dom", None, [Image.of(store.image_dir + "/dom-hdc.iso", b"one")])
    store.prepare("dom", None, [Image.of(store.image_dir + "/dom-hdc.iso", b"two")])
    assert open(store.image_dir + "/dom-hdc.iso", "rb").read() == b"two"
    store.release("dom")
    assert files_in(store) == [RECORDS]


def test_release_never_deletes_a_replaced_file(store):
    """After virsh change-media (or anything else) put another file there, release leaves it."""
    path = store.image_dir + "/dom-hdc.iso"
    store.prepare("dom", None, [Image.of(path, b"ours")])
    replace_file(path, b"someone else's")
    assert store.release("dom") == []
    assert open(path, "rb").read() == b"someone else's"


def test_a_replaced_file_is_reported_in_one_line(store, monkeypatch):
    import io

    from payloadhook import log
    warnings = io.StringIO()
    monkeypatch.setattr(log, "stream", warnings)
    path = store.image_dir + "/dom-hdc.iso"
    store.prepare("dom", None, [Image.of(path, b"ours")])
    replace_file(path, b"")
    store.release("dom")
    assert warnings.getvalue() == f"payloadhook: {path} was replaced since it was built; left in place\n"


@pytest.mark.parametrize("source,fragment", [
    ("/etc/passwd", "outside the image directory"),
    ("{d}/../escape.iso", "not an absolute, normalized path"),
    ("{d}/sub/x.iso", "outside the image directory"),
    ("{d}//x.iso", "not an absolute, normalized path"),
    ("relative.iso", "not an absolute"),
    ("{d}/.payloadhook", "reserved"),
    ("{d}/.hidden.iso", "reserved"),
])
def test_sources_outside_image_dir_are_refused(store, source, fragment):
    with pytest.raises(StoreError, match=fragment):
        store.prepare("dom", None, [Image.of(source.format(d=store.image_dir), b"x")])
    assert not os.path.exists("/escape.iso")


def test_symlinked_source_is_refused_and_target_untouched(store, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.makedirs(store.image_dir)
    os.symlink(victim, store.image_dir + "/dom-hdc.iso")
    with pytest.raises(StoreError, match="symbolic link"):
        store.prepare("dom", None, [Image.of(store.image_dir + "/dom-hdc.iso", b"x")])
    assert victim.read_bytes() == b"precious"


def test_symlinked_image_dir_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    store = ImageStore(str(tmp_path / "link"))
    with pytest.raises(StoreError, match="symbolic link"):
        store.prepare("dom", None, [Image.of(str(tmp_path / "link" / "x.iso"), b"x")])
    assert os.listdir(real) == []


def test_symlinked_parent_of_image_dir_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    store = ImageStore(str(tmp_path / "link" / "images"))
    with pytest.raises(StoreError, match="symbolic link"):
        store.prepare("dom", None, [Image.of(store.image_dir + "/x.iso", b"x")])
    assert os.listdir(real) == []


def test_existing_foreign_file_is_not_overwritten(store):
    os.makedirs(store.image_dir)
    with open(store.image_dir + "/dom-hdc.iso", "wb") as stream:
        stream.write(b"admin's")
    with pytest.raises(StoreError, match="exists and was not built by payloadhook"):
        store.prepare("dom", None, [Image.of(store.image_dir + "/dom-hdc.iso", b"x")])
    assert open(store.image_dir + "/dom-hdc.iso", "rb").read() == b"admin's"


def test_image_of_another_domain_is_refused(store):
    store.prepare("first", None, [Image.of(store.image_dir + "/shared.iso", b"first")])
    with pytest.raises(StoreError, match="belongs to domain 'first'"):
        store.prepare("second", None, [Image.of(store.image_dir + "/shared.iso", b"second")])
    assert open(store.image_dir + "/shared.iso", "rb").read() == b"first"
    assert store.release("second") == []
    assert open(store.image_dir + "/shared.iso", "rb").read() == b"first"


def test_two_payloads_on_one_file_are_refused(store):
    with pytest.raises(StoreError, match="same image file"):
        store.prepare("dom", None, [Image.of(store.image_dir + "/x", b"1"), Image.of(store.image_dir + "/x", b"2")])


def test_leftover_temporary_files_are_cleaned_by_release(store):
    """A prepare killed after writing its record and a temporary file: release cleans both."""
    store.prepare("dom", None, [Image.of(store.image_dir + "/dom-hdc.iso", b"x")])
    with open(store.image_dir + "/.dom-hdc.iso.payloadhook-tmp", "wb") as stream:
        stream.write(b"half")
    store.release("dom")
    assert files_in(store) == [RECORDS]


@pytest.mark.integration
def test_write_failure_leaves_nothing(tmp_path):
    """A full file system half-way: no image, no temporary file, no record."""
    if os.geteuid() != 0:
        pytest.fail("needs root to mount a small tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    assert os.system(f"mount -t tmpfs -o size=256k tmpfs {mount}") == 0
    try:
        store = ImageStore(str(mount / "images"))
        with pytest.raises(StoreError, match=r"^no space left in .*/images for the image b\.iso$"):
            store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"x" * 100_000),
                                  Image.of(store.image_dir + "/b.iso", b"x" * 300_000)])
        assert files_in(store) == [RECORDS]
        assert os.listdir(os.path.join(store.image_dir, RECORDS)) == []
    finally:
        os.system(f"umount {mount}")


def test_shared_image_dir_release_leaves_another_hosts_images(store, monkeypatch):
    """An NFS image_dir after a migration: the source host's release must not delete the
    image the destination host's prepare built for the same domain."""
    path = store.image_dir + "/dom-hdc.iso"
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "host-a")
    store.prepare("dom", None, [Image.of(path, b"built on a")])
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "host-b")
    store.prepare("dom", None, [Image.of(path, b"built on b")])      # the destination takes the record over
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "host-a")
    assert store.release("dom") == []                        # the source's late release
    assert store.collect(lambda record: False) == []         # and its gc: host-b's record is not host-a's
    assert open(path, "rb").read() == b"built on b"
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "host-b")
    assert store.release("dom") == [path]


def test_gc_releases_only_domains_not_running(store):
    store.prepare("running", None, [Image.of(store.image_dir + "/running.iso", b"r")])
    store.prepare("crashed", None, [Image.of(store.image_dir + "/crashed.iso", b"c")])
    collected = store.collect(lambda record: record.domain == "running")
    assert [(c.record.domain, c.paths) for c in collected] == [("crashed", (store.image_dir + "/crashed.iso",))]
    assert files_in(store) == [RECORDS, "running.iso"]
    assert [r.domain for r in store.records()] == ["running"]


def test_release_makes_the_records_removal_durable(store, monkeypatch):
    """After a power loss no record comes back naming images release removed: the images'
    directory is synced before the record goes, and the record directory after (the system
    calls themselves are watched, in order)."""
    from payloadhook.store.records import record_name
    path = store.image_dir + "/dom-hdc.iso"
    store.prepare("dom", None, [Image.of(path, b"x")])
    image_dir, records = (os.stat(p) for p in (store.image_dir, os.path.join(store.image_dir, RECORDS)))
    calls = []
    real_fsync, real_unlink = os.fsync, os.unlink

    def fsync(fd):
        st = os.fstat(fd)
        calls.append(("fsync", (st.st_dev, st.st_ino)))
        real_fsync(fd)

    def unlink(name, *, dir_fd=None):
        calls.append(("unlink", os.fsdecode(name)))
        real_unlink(name, dir_fd=dir_fd)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "unlink", unlink)
    assert store.release("dom") == [path]
    removed = calls.index(("unlink", record_name("dom")))
    assert ("fsync", (image_dir.st_dev, image_dir.st_ino)) in calls[:removed]
    assert ("fsync", (records.st_dev, records.st_ino)) in calls[removed + 1:]


def test_missing_parent_of_image_dir_is_refused(tmp_path):
    store = ImageStore(str(tmp_path / "no" / "such" / "images"))
    with pytest.raises(StoreError, match="cannot be created: a parent is missing"):
        store.prepare("dom", None, [Image.of(store.image_dir + "/x.iso", b"x")])
    assert not os.path.exists(tmp_path / "no")


def test_half_written_record_is_cleaned_by_release(tmp_path):
    """A prepare killed while writing its first record leaves only the record's temporary file;
    the hook's release (whose fast path looks for records) still finds and removes it."""
    from payloadhook.hook import release
    from payloadhook.store.records import record_name, tmp_name
    image_dir = tmp_path / "images"
    (image_dir / RECORDS).mkdir(parents=True)
    half = image_dir / RECORDS / tmp_name(record_name("dom"))
    half.write_text('{"domain": "do')
    conf = tmp_path / "c.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\n")
    assert release("dom", {"PAYLOADHOOK_CONF": str(conf)}) == []
    assert os.listdir(image_dir / RECORDS) == []


def test_without_a_stream_warnings_go_through_logging(store, caplog):
    path = store.image_dir + "/dom-hdc.iso"
    store.prepare("dom", None, [Image.of(path, b"ours")])
    replace_file(path, b"")
    store.release("dom")
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("payloadhook.store.images", "WARNING", f"{path} was replaced since it was built; left in place")]


# -- the records' JSON (store/jsontext.py): json's own output, read and written alike ------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from payloadhook.store import jsontext  # noqa: E402

_records = st.fixed_dictionaries({
    "domain": st.text(min_size=1), "uuid": st.none() | st.uuids().map(str), "host": st.text(min_size=1),
    "image_dir": st.text(), "pending": st.lists(st.text()),
    "images": st.lists(st.fixed_dictionaries({"name": st.text(), "dev": st.integers(0, 2**64),
                                              "ino": st.integers(0, 2**64)}))})


@settings(max_examples=300, deadline=None)
@given(_records)
def test_records_are_written_as_json_writes_them_and_read_back(record):
    text = jsontext.dumps(record)
    assert text == json.dumps(record, sort_keys=True)
    assert jsontext.loads(text.encode("ascii")) == record


_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text()
                            | st.floats(allow_nan=False, allow_infinity=False),
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                            max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_json_values, st.sampled_from([None, 2]), st.booleans())
def test_any_json_text_reads_as_json_reads_it(value, indent, ascii_only):
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    assert jsontext.loads(text.encode("utf-8")) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", "[1,]", '{"a": 1,}', "01", "1.", ".5", "-", '"\\x"', '"a\nb"', '{"a" 1}',
                                  "nul", "[1 2]", '"\\u12"', "{1: 2}", "[] x", '"abc', "[" * 100 + "]" * 100,
                                  "\xff"])
def test_what_is_not_json_is_refused(text):
    with pytest.raises(ValueError):
        jsontext.loads(text.encode("utf-8", "surrogateescape") if text != "\xff" else b"\xff")


@pytest.mark.parametrize("depth", [1, 12], ids=["short path: named in hex", "long path: named by its hash"])
def test_releases_cheap_look_finds_a_record_wherever_image_dir_was(tmp_path, depth):
    """has_record, what the hook asks at every release before importing the store: a record
    in image_dir, or in a directory the index names (read from the entry's name, or from its
    file where the path was too long to be the name), and nothing for a domain without one."""
    from payloadhook.store.records import has_record
    old = tmp_path.joinpath(*["a-rather-long-directory-name"] * depth)
    old.parent.mkdir(parents=True, exist_ok=True)
    index = str(tmp_path / "index")
    ImageStore(str(old), index).prepare("dom", None, [Image.of(f"{old}/d.iso", b"d")])
    new = str(tmp_path / "new")
    assert has_record(str(old), "dom", index) and has_record(new, "dom", index)
    assert not has_record(new, "dom", None)             # without the index, only image_dir is looked at
    assert not has_record(new, "other", index)
    ImageStore(new, index).release("dom")
    assert not has_record(new, "dom", index)
