"""Issue 13 against the image store, as an attacker, a failing disk and a careless admin would try it.

Class 1: what the store reads back from disk (records, directories) is input.
Class 4: lifecycle state is never lost (full disks, long names, a moved image_dir, a second prepare).
Class 5: gc asks about the right domain, and removes only what it checked.
Class 3: images are written one at a time, after every source is checked.
"""

import json
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from payloadhook.errors import StoreError
from payloadhook.store.book import CorruptRecord
from payloadhook.store.images import Image, ImageStore
from payloadhook.store.records import RECORDS, record_name, tmp_name
from tests.conftest import REPO

HOOK = os.path.join(REPO, "hooks", "qemu")
NOBODY = 65534


@pytest.fixture
def index(tmp_path):
    return str(tmp_path / "index")


@pytest.fixture
def store(tmp_path, index):
    return ImageStore(str(tmp_path / "images"), index)


@pytest.fixture
def warnings(monkeypatch):
    import io

    from payloadhook import log
    stream = io.StringIO()
    monkeypatch.setattr(log, "stream", stream)
    return stream


def plant(store, domain, content):
    """A record for ``domain`` as someone else wrote it: bytes, or JSON from a dict."""
    records = os.path.join(store.image_dir, RECORDS)
    os.makedirs(records, exist_ok=True)
    path = os.path.join(records, record_name(domain))
    with open(path, "wb") as stream:
        stream.write(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def record(domain="dom", images=(), pending=(), **extra):
    return {"domain": domain, "host": os.uname().nodename, "uuid": None,
            "images": [{"name": n, "dev": d, "ino": i} for n, d, i in images], "pending": list(pending), **extra}


def victim_at(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(b"precious")
    st = os.stat(path)
    return st.st_dev, st.st_ino


# -- class 1: records are input ------------------------------------------------------------

def hostile_names(tmp_path, store):
    """Names a record might hold, each pointing (if followed) at a file we must never touch."""
    return {
        "../x": str(tmp_path / "x"),
        str(tmp_path / "abs"): str(tmp_path / "abs"),        # an absolute path: /etc/x in the attack
        "sub/x": os.path.join(store.image_dir, "sub", "x"),
        "..": None, ".": None, "": None,
        ".payloadhook": None,                                # our own record directory
        "x" * 256: None,                                     # over NAME_MAX
    }


@pytest.mark.parametrize("field", ["images", "pending"])
def test_a_record_naming_anything_but_a_plain_name_is_corrupt_and_never_acted_on(tmp_path, store, field):
    for name, victim in hostile_names(tmp_path, store).items():
        dev, ino = victim_at(victim) if victim else (0, 0)
        content = record(images=[(name, dev, ino)]) if field == "images" else record(pending=[name])
        path = plant(store, "dom", content)
        with pytest.raises(CorruptRecord) as info:
            store.release("dom")
        assert str(info.value).startswith(f"record {path} is corrupt (")
        assert "\n" not in str(info.value)
        if victim:
            assert open(victim, "rb").read() == b"precious", name
        assert os.path.exists(path)          # reported, never acted on: the record stays too


def test_a_pending_name_must_be_one_of_our_temporary_names(store, tmp_path):
    victim_at(os.path.join(store.image_dir, "innocent.iso"))
    plant(store, "dom", record(pending=["innocent.iso"]))
    with pytest.raises(CorruptRecord, match="pending name"):
        store.release("dom")
    assert os.path.exists(os.path.join(store.image_dir, "innocent.iso"))


def test_gc_reports_a_corrupt_record_in_one_line_and_removes_nothing(tmp_path, store, warnings):
    dev, ino = victim_at(str(tmp_path / "x"))
    path = plant(store, "dom", record(images=[("../x", dev, ino)]))
    assert store.collect(lambda record: False) == []
    assert open(tmp_path / "x", "rb").read() == b"precious"
    assert warnings.getvalue().startswith(f"payloadhook: record {path} is corrupt (")
    assert warnings.getvalue().count("\n") == 1


SHAPES = {
    "empty": b"",
    "truncated": b'{"domain": "dom", "host": "h", "ima',
    "a list": b"[]",
    "no images": json.dumps({"domain": "dom", "host": "h"}).encode(),
    "another domain's name": json.dumps(record(domain="other")).encode(),
    "dev as a string": json.dumps(record(images=[("a.iso", "1", 2)])).encode(),
    "ino as a boolean": json.dumps(record(images=[("a.iso", 1, True)])).encode(),
    "a bad uuid": json.dumps(record(uuid="../../etc")).encode(),
    "not UTF-8": b'{"domain": "\xff"}',
    # JSON's \ud800 reads as a lone surrogate, which no file name holds (the speed review)
    "a lone surrogate in a name": json.dumps(record(images=[("a\ud800", 1, 2)])).encode(),
    "a lone surrogate in a pending name": json.dumps(record(pending=[".a\ud800.tmp"])).encode(),
    "a lone surrogate in the domain": json.dumps(record(domain="dom\ud800")).encode(),
    "a lone surrogate in the host": json.dumps(record(host="h\udfff")).encode(),
    "huge": b" " * (2 << 20),
}


def plant_kind(store, kind, tmp_path):
    records = os.path.join(store.image_dir, RECORDS)
    os.makedirs(records, exist_ok=True)
    path = os.path.join(records, record_name("dom"))
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text(json.dumps(record()))
        os.symlink(target, path)
    elif kind == "directory":
        os.mkdir(path)
    else:
        plant(store, "dom", SHAPES[kind])
    return path


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory", *SHAPES])
def test_one_bad_record_affects_its_own_domain_only(tmp_path, store, kind, warnings):
    path = plant_kind(store, kind, tmp_path)
    # another domain starts and stops as if nothing were wrong
    assert store.prepare("other", None, [Image.of(store.image_dir + "/other.iso", b"o")])
    assert store.release("other") == [store.image_dir + "/other.iso"]
    # its own domain is refused with one line naming the record, at prepare and at release
    for attempt in (lambda: store.prepare("dom", None, [Image.of(store.image_dir + "/dom.iso", b"d")]),
                    lambda: store.release("dom")):
        with pytest.raises(CorruptRecord) as info:
            attempt()
        assert str(info.value).startswith(f"record {path} is corrupt (")
        assert "\n" not in str(info.value)
    assert not os.path.exists(store.image_dir + "/dom.iso")
    assert os.path.lexists(path)


def test_a_fifo_record_never_hangs_the_hook_holding_the_lock(tmp_path):
    """Through the real hook: a FIFO where a record should be, then a prepare of another domain."""
    image_dir = tmp_path / "images"
    (image_dir / RECORDS).mkdir(parents=True)
    os.mkfifo(image_dir / RECORDS / record_name("dom"))
    environ = hook_environ(tmp_path, image_dir)
    result = run_hook(["dom", "release", "end", "-"], b"", environ)
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1 and "is corrupt (not a regular file)" in result.stderr.decode()
    result = run_hook(["other", "prepare", "begin", "-"], domain_xml(image_dir, "other"), environ)
    assert result.returncode == 0, result.stderr


def test_an_image_dir_another_user_owns_is_refused_with_the_fix(tmp_path, index):
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    os.chmod(image_dir, 0o777)
    os.chown(image_dir, NOBODY, NOBODY)
    victim = tmp_path / "victim"
    dev, ino = victim_at(str(victim))
    store = ImageStore(str(image_dir), index)
    plant(store, "dom", record(images=[("../victim", dev, ino)]))
    for attempt in (lambda: store.prepare("dom", None, [Image.of(f"{image_dir}/dom.iso", b"d")]),
                    lambda: store.release("dom"), lambda: store.collect(lambda r: False)):
        with pytest.raises(StoreError) as info:
            attempt()
        assert str(info.value) == (f"directory {image_dir} (owner uid {NOBODY}, mode 0777) may be written by "
                                   f"someone other than root; refused (fix: chown root:root {image_dir} && "
                                   f"chmod 0711 {image_dir})")
    assert victim.read_bytes() == b"precious"
    assert not os.path.exists(image_dir / "dom.iso")


@pytest.mark.parametrize("which, mode", [("image_dir", 0o757), ("image_dir", 0o771), ("records", 0o777),
                                         ("records", 0o720)])
def test_a_directory_others_can_write_is_refused(tmp_path, store, which, mode):
    records = os.path.join(store.image_dir, RECORDS)
    os.makedirs(records)
    path = store.image_dir if which == "image_dir" else records
    os.chmod(path, mode)
    with pytest.raises(StoreError, match=rf"^directory {path} .* chmod 0{711 if which == 'image_dir' else 700} "):
        store.prepare("dom", None, [Image.of(store.image_dir + "/dom.iso", b"d")])
    assert not os.path.exists(store.image_dir + "/dom.iso")


def test_modes_are_exact_whatever_the_umask(store, index):
    old = os.umask(0)
    try:
        store.prepare("dom", None, [Image.of(store.image_dir + "/dom.iso", b"d")])
    finally:
        os.umask(old)
    records = os.path.join(store.image_dir, RECORDS)
    modes = {path: stat.S_IMODE(os.stat(path).st_mode) for path in
             (store.image_dir, records, index, store.image_dir + "/dom.iso",
              os.path.join(records, record_name("dom")))}
    assert list(modes.values()) == [0o711, 0o700, 0o700, 0o600, 0o600]
    assert all(stat.S_IMODE(os.stat(os.path.join(index, e)).st_mode) == 0o600 for e in os.listdir(index))


def test_modes_are_exact_under_a_restrictive_umask_too(store):
    old = os.umask(0o777)
    try:
        store.prepare("dom", None, [Image.of(store.image_dir + "/dom.iso", b"d")])
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store.image_dir).st_mode) == 0o711


def test_a_uuid_that_is_not_one_is_refused_before_anything_is_written(store):
    with pytest.raises(StoreError, match="^domain UUID '../x' is not a UUID$"):
        store.prepare("dom", "../x", [Image.of(store.image_dir + "/dom.iso", b"d")])
    assert not os.path.exists(store.image_dir)


def test_records_are_written_durably_and_read_back_typed(store):
    store.prepare("dom", "8e3a0b0c-94fa-4e2f-9d31-1bd0e1b0d0a1", [Image.of(store.image_dir + "/a.iso", b"a")])
    (read,) = store.records()
    assert (read.domain, read.uuid, read.image_dir, read.names) == (
        "dom", "8e3a0b0c-94fa-4e2f-9d31-1bd0e1b0d0a1", store.image_dir, ("a.iso",))
    st = os.stat(store.image_dir + "/a.iso")
    assert [(i.dev, i.ino) for i in read.images] == [(st.st_dev, st.st_ino)]


# -- class 4: lifecycle state is never lost --------------------------------------------------

@pytest.fixture
def small(tmp_path):
    """A 64 KiB tmpfs with few inodes: the full image_dir of the attack."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=12,mode=0755", "tmpfs", str(mount)]
                      ).returncode:
        pytest.fail("cannot mount a tmpfs (the tests run as root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def listing(image_dir):
    return sorted(os.listdir(image_dir)), sorted(os.listdir(os.path.join(image_dir, RECORDS)))


def test_no_space_for_an_image_is_one_line_leaves_nothing_and_starts_once_there_is_space(small, index):
    store = ImageStore(str(small / "images"), index)
    filler = small / "filler"
    filler.write_bytes(b"f" * 40_000)
    with pytest.raises(StoreError) as info:
        store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"a" * 4096),
                                    Image.of(store.image_dir + "/b.iso", b"b" * 30_000)])
    assert str(info.value) == f"no space left in {store.image_dir} for the image b.iso"
    assert listing(store.image_dir) == ([RECORDS], [])
    filler.unlink()
    store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"a" * 4096),
                                Image.of(store.image_dir + "/b.iso", b"b" * 30_000)])
    assert listing(store.image_dir) == ([RECORDS, "a.iso", "b.iso"], [record_name("dom")])


def test_a_failed_prepare_keeps_the_earlier_images_and_record(small, index):
    store = ImageStore(str(small / "images"), index)
    store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"first")])
    before = store.records()
    with pytest.raises(StoreError, match="^no space left in .* for the image a.iso$"):
        store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"x" * 100_000)])
    assert open(store.image_dir + "/a.iso", "rb").read() == b"first"
    assert store.records() == before
    assert store.release("dom") == [store.image_dir + "/a.iso"]
    assert listing(store.image_dir) == ([RECORDS], [])


def test_a_failed_prepare_on_a_shared_image_dir_leaves_the_source_hosts_record(small, index, monkeypatch):
    """A migration destination sharing image_dir with its source, on a full disk."""
    store = ImageStore(str(small / "images"), index)
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "source")
    store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"source's")])
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "destination")
    with pytest.raises(StoreError, match="no space left"):
        store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"x" * 100_000)])
    assert store.release("dom") == []                      # libvirt's release after the failed prepare
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "source")
    assert [r.host for r in store.records()] == ["source"]
    assert store.release("dom") == [store.image_dir + "/a.iso"]


def test_no_space_for_the_record_is_one_line_and_leaves_nothing(small, index):
    store = ImageStore(str(small / "images"), index)
    os.makedirs(os.path.join(store.image_dir, RECORDS))
    fill_inodes(small)
    with pytest.raises(StoreError) as info:
        store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"a")])
    assert str(info.value) == f"no space left in {store.image_dir} for the domain's record"
    assert listing(store.image_dir) == ([RECORDS], [])


def test_no_space_for_the_record_directory_is_one_line(small, index):
    store = ImageStore(str(small / "images"), index)
    os.makedirs(store.image_dir)
    fill_inodes(small)
    with pytest.raises(StoreError) as info:
        store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"a")])
    assert str(info.value) == f"no space left in {store.image_dir} for the directory {store.image_dir}/{RECORDS}"
    assert os.listdir(store.image_dir) == []


def fill_inodes(mount):
    for number in range(100):
        try:
            open(mount / f"inode{number}", "wb").close()
        except OSError:
            return
    pytest.fail("the tmpfs has more inodes than asked for")


def test_no_space_through_the_hook_is_its_one_line_refusal(small, tmp_path):
    image_dir = small / "images"
    environ = hook_environ(tmp_path, image_dir)
    (small / "filler").write_bytes(b"f" * 60_000)
    result = run_hook(["full", "prepare", "begin", "-"], domain_xml(image_dir, "full"), environ)
    assert result.returncode == 1
    assert result.stderr.decode() == (f"payloadhook: domain full: no space left in {image_dir} "
                                      "for the image full.iso\n")
    assert listing(image_dir) == ([RECORDS], [])


def test_a_second_prepare_without_release_orphans_nothing(store):
    store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"a"), Image.of(store.image_dir + "/b.img", b"b")])
    store.prepare("dom", None, [Image.of(store.image_dir + "/a.iso", b"a2")])   # b's payload was detached
    assert listing(store.image_dir) == ([RECORDS, "a.iso"], [record_name("dom")])
    store.prepare("dom", None, [Image.of(store.image_dir + "/c.iso", b"c")])
    assert store.release("dom") == [store.image_dir + "/c.iso"]
    assert listing(store.image_dir) == ([RECORDS], [])


@pytest.mark.parametrize("length", [240, 250, 255])
@pytest.mark.parametrize("char", ["x", "é"])
def test_every_legal_source_name_works_and_release_removes_it(store, length, char):
    name = (char * length).encode()[:length].decode("utf-8", "ignore")
    name = name + "y" * (length - len(name.encode()))
    assert len(name.encode()) == length and len(tmp_name(name).encode()) <= 255
    assert len(tmp_name(record_name(name)).encode()) <= 255
    store.prepare(name, None, [Image.of(f"{store.image_dir}/{name}", b"x")])
    assert [r.domain for r in store.records()] == [name]
    collected = store.collect(lambda record: False)
    assert [c.paths for c in collected] == [(f"{store.image_dir}/{name}",)]
    assert listing(store.image_dir) == ([RECORDS], [])


def test_a_source_name_over_name_max_is_refused_up_front(store):
    with pytest.raises(StoreError, match="longer than 255 bytes"):
        store.prepare("dom", None, [Image.of(f"{store.image_dir}/{'x' * 256}", b"x")])
    assert not os.path.exists(store.image_dir)


def test_a_prepare_killed_with_a_long_name_leaves_what_release_removes(store):
    name = "x" * 250
    store.prepare("dom", None, [Image.of(f"{store.image_dir}/{name}", b"x")])
    with open(os.path.join(store.image_dir, tmp_name(name)), "wb") as stream:
        stream.write(b"half")               # as a prepare killed mid-write leaves it
    store.release("dom")
    assert listing(store.image_dir) == ([RECORDS], [])


def test_a_moved_image_dir_strands_nothing(tmp_path, index):
    old = ImageStore(str(tmp_path / "old"), index)
    old.prepare("running", None, [Image.of(old.image_dir + "/r.iso", b"r")])
    old.prepare("crashed", None, [Image.of(old.image_dir + "/c.iso", b"c")])
    new = ImageStore(str(tmp_path / "new"), index)      # the admin changed image_dir meanwhile
    assert sorted(r.domain for r in new.records()) == ["crashed", "running"]
    assert [c.paths for c in new.collect(lambda record: record.domain == "running")] == [(old.image_dir + "/c.iso",)]
    assert new.release("running") == [old.image_dir + "/r.iso"]
    assert listing(old.image_dir) == ([RECORDS], [])
    assert os.listdir(index) == []                      # an empty directory leaves the index


def test_the_hook_releases_where_the_image_was_built(tmp_path):
    environ = hook_environ(tmp_path, tmp_path / "old")
    assert run_hook(["dom", "prepare", "begin", "-"], domain_xml(tmp_path / "old", "dom"), environ).returncode == 0
    (tmp_path / "c.conf").write_text(f"[payloadhook]\nimage_dir = {tmp_path / 'new'}\n")
    result = run_hook(["dom", "release", "end", "-"], b"", environ)
    assert result.returncode == 0, result.stderr
    assert listing(tmp_path / "old") == ([RECORDS], [])


def test_a_second_prepare_killed_anywhere_keeps_the_first_or_leaves_what_release_removes(tmp_path):
    """SIGKILL at a random point of a prepare that replaces a running domain's images: at
    every point, each image is the first prepare's or the second's, whole, and release then
    leaves nothing: no image, no temporary file, no record, no index entry."""
    import random
    import signal
    import time

    from tests.test_hostile import big_domain
    image_dir = tmp_path / "images"
    environ = hook_environ(tmp_path, image_dir)
    xml = big_domain(image_dir, "victim")
    rng = random.Random(2)
    killed = 0
    for attempt in range(12):
        started = time.monotonic()
        assert run_hook(["victim", "prepare", "begin", "-"], xml, environ).returncode == 0
        took = time.monotonic() - started     # the kill lands within a prepare, however fast
        first = {name: open(image_dir / name, "rb").read() for name in ("victim.iso", "victim.img")}
        process = subprocess.Popen([sys.executable, "-I", HOOK, "victim", "prepare", "begin", "-"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)
        process.stdin.write(xml)
        process.stdin.close()
        time.sleep(rng.uniform(0.0, took))
        process.send_signal(signal.SIGKILL)
        killed += process.wait() == -signal.SIGKILL
        for name, content in first.items():   # same payload: the second prepare's bytes differ only in dates
            assert len(open(image_dir / name, "rb").read()) == len(content)
        result = run_hook(["victim", "release", "end", "-"], b"", environ)
        assert result.returncode == 0, result.stderr
        assert listing(image_dir) == ([RECORDS], [])
        assert os.listdir(tmp_path / "index") == []
    assert killed


# -- class 3: one image at a time --------------------------------------------------------------

def test_images_are_built_one_at_a_time_after_every_source_is_checked(store):
    events, sizes = [], {}

    def writer(name):
        def write(out):
            events.append(("build", name, sorted(os.listdir(store.image_dir))))
            sizes[name] = os.path.getsize(os.path.join(store.image_dir, tmp_name("a.iso")))
            out.write(name.encode())
        return write

    with pytest.raises(StoreError, match="outside the image directory"):
        store.prepare("dom", None, [Image(store.image_dir + "/a.iso", writer("a")),
                                    Image("/elsewhere/b.iso", writer("b"))])
    assert events == []
    store.prepare("dom", None, [Image(store.image_dir + "/a.iso", writer("a")),
                                Image(store.image_dir + "/b.iso", writer("b"))])
    # b is built once a is written out in full (its temporary file holds it all): never both in memory
    a, b = tmp_name("a.iso"), tmp_name("b.iso")
    assert events == [("build", "a", sorted([RECORDS, a])), ("build", "b", sorted([RECORDS, a, b]))]
    assert sizes == {"a": 0, "b": 1}


# -- class 5: gc asks about the right domain --------------------------------------------------

def test_gc_finds_a_domain_by_its_recorded_name_and_uuid_never_by_a_uuid_in_its_name(store):
    """libvirt's test driver: A is shut off, B is named like A's UUID and runs. gc must keep
    B's images (it used to look B up as A's UUID, find A shut off, and delete them)."""
    libvirt = pytest.importorskip("libvirt")
    from payloadhook.cli.gc import running_check
    conn = libvirt.open("test:///default")
    a = conn.defineXML("<domain type='test'><name>a</name><memory>1024</memory><os><type>hvm</type></os></domain>")
    b = conn.defineXML(f"<domain type='test'><name>{a.UUIDString()}</name><memory>1024</memory>"
                       "<os><type>hvm</type></os></domain>")
    b.create()
    store.prepare(b.name(), b.UUIDString(), [Image.of(store.image_dir + "/b.iso", b"b")])
    store.prepare("a", a.UUIDString(), [Image.of(store.image_dir + "/a.iso", b"a")])
    # and a record of a domain "a" of another UUID (undefined since): not running either
    store.prepare("gone", "00000000-0000-4000-8000-000000000000", [Image.of(store.image_dir + "/g.iso", b"g")])
    c = conn.defineXML("<domain type='test'><name>gone</name><memory>1024</memory><os><type>hvm</type></os></domain>")
    c.create()
    assert sorted(c.record.domain for c in store.collect(running_check(conn), dry_run=True)) == ["a", "gone"]
    assert sorted(c.record.domain for c in store.collect(running_check(conn))) == ["a", "gone"]
    assert sorted(os.listdir(store.image_dir)) == [RECORDS, "b.iso"]


def test_gc_removes_only_the_record_it_checked(store):
    """A domain started between gc's look-up and its removal keeps its fresh image and record."""
    store.prepare("dom", None, [Image.of(store.image_dir + "/dom.iso", b"stale")])

    def is_running(record):
        # the domain starts right now, after libvirt said it was not running
        store.prepare("dom", None, [Image.of(store.image_dir + "/dom.iso", b"fresh")])
        return False

    assert store.collect(is_running) == []
    assert open(store.image_dir + "/dom.iso", "rb").read() == b"fresh"
    assert [r.domain for r in store.records()] == ["dom"]


def test_gc_and_prepare_at_once_never_lose_a_started_domains_image(store):
    """Real concurrency: starts and stops in a thread while gc runs in a loop. The look-up says
    what libvirt says: a domain is active from before its prepare (libvirt gives it an id
    first) until its release. Each start must find its image in place, and gc may remove
    nothing a started domain built. Every other run "crashes" (no release): its record is
    stale, and gc may remove it just as the next start begins."""
    active = threading.Event()
    lost = []

    def starts():
        for round in range(60):
            active.set()
            store.prepare("dom", None, [Image.of(store.image_dir + "/dom.iso", b"%d" % round)])
            try:
                if open(store.image_dir + "/dom.iso", "rb").read() != b"%d" % round:
                    lost.append(round)
            except FileNotFoundError:
                lost.append(round)
            if round % 2:
                store.release("dom")
            active.clear()
            time.sleep(0.001)     # shut off a moment: gc's look-up may see it so

    def looked_up(record):
        running = active.is_set()
        time.sleep(0.002)         # libvirt's answer takes a round trip: the domain may start meanwhile
        return running

    thread = threading.Thread(target=starts)
    thread.start()
    collected = 0
    while thread.is_alive():
        collected += len(store.collect(looked_up))
    thread.join()
    assert lost == []


# -- helpers for the real hook ------------------------------------------------------------------

def hook_environ(tmp_path, image_dir):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\n")
    return {"PAYLOADHOOK_CONF": str(conf), "PAYLOADHOOK_INDEX": str(tmp_path / "index"), "LC_ALL": "C"}


def run_hook(args, stdin, environ):
    return subprocess.run([sys.executable, "-I", HOOK, *args], input=stdin, capture_output=True, env=environ,
                          timeout=30)


def domain_xml(image_dir, name):
    import base64
    content = base64.b64encode(b"payload").decode()
    return (f"<domain type='kvm'><name>{name}</name><uuid>8e3a0b0c-94fa-4e2f-9d31-1bd0e1b0d0a1</uuid>"
            "<metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'><pl:payload type='cdrom'>"
            f"<pl:files><pl:file><pl:name>a.txt</pl:name><pl:content>{content}</pl:content></pl:file>"
            "</pl:files></pl:payload></pl:payloads></metadata><devices><disk type='file' device='cdrom'>"
            f"<source file='{image_dir}/{name}.iso'/><target dev='hdc'/></disk></devices></domain>").encode()


U1, U2 = "6a1f0d3e-7b2c-4d5e-8f90-a1b2c3d4e5f6", "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"


def test_a_shared_image_dir_is_taken_over_only_by_the_same_domain(tmp_path, index, monkeypatch):
    """Another host's domain of the same name but another UUID cannot replace the images of a
    domain that runs there (found by the attack review); a migration (same UUID) can."""
    store = ImageStore(str(tmp_path / "images"), index)
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "host-a")
    store.prepare("vm", U1, [Image.of(store.image_dir + "/vm-hdc.iso", b"host a's")])
    monkeypatch.setattr("payloadhook.store.images._hostname", lambda: "host-b")
    with pytest.raises(StoreError, match=r"belong to another domain of that name \(UUID 6a1f0d3e-.*\) on host "
                                         r"'host-a'"):
        store.prepare("vm", U2, [Image.of(store.image_dir + "/vm-hdc.iso", b"host b's")])
    assert open(store.image_dir + "/vm-hdc.iso", "rb").read() == b"host a's"
    assert [(r.host, r.uuid) for r in store.records()] == [("host-a", U1)]
    store.prepare("vm", U1.upper(), [Image.of(store.image_dir + "/vm-hdc.iso", b"migrated")])   # same domain
    assert [(r.host, r.uuid) for r in store.records()] == [("host-b", U1.upper())]
