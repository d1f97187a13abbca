"""``payloadhook build`` streams its input files into the image (docs/speed.md): each file is
held open from its check to its copy, and its bytes go into the image by the kernel, never
held in the command's memory. What a user sees of that: a file much larger than memory-cheap
comes out byte for byte (read back by xorriso, isoinfo and mtools, not by payloadhook); the
command's peak memory does not grow with the file; a file that changes size, or is removed,
between its check and its copy is refused in one line and leaves no image; standard output
and standard input work as before."""

import errno
import hashlib
import os
import subprocess
import sys

import pytest

from payloadhook.config import load_config
from payloadhook.errors import PayloadError
from payloadhook.local.files import files_from_args
from payloadhook.local.output import write_output
from payloadhook.media import write_image
from payloadhook.model import Payload, PayloadFile
from tests.harness import readback

MiB = 1024 * 1024
BIG = 64 * MiB


@pytest.fixture
def big_limits(tmp_path, monkeypatch):
    """A configuration whose limits let a 64 MiB file through (the default is 16 MiB a file)."""
    conf = tmp_path / "payloadhook.conf"
    conf.write_text("[payloadhook]\nmax_file_size = 100M\nmax_payload_size = 200M\nmax_image_size = 300M\n")
    monkeypatch.setenv("PAYLOADHOOK_CONF", str(conf))
    return conf


def sparse_file(path, size: int, marks: dict[int, bytes]) -> str:
    """A sparse file of ``size`` bytes with ``marks`` written at their offsets; its SHA-256."""
    with open(path, "wb") as stream:
        stream.truncate(size)
        for offset, data in marks.items():
            stream.seek(offset)
            stream.write(data)
    return sha256_of(path)


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def run_build(*argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "payloadhook.cli", "build", *map(str, argv)], capture_output=True,
                          **kwargs)


def test_a_64_mib_file_comes_out_byte_for_byte(tmp_path, big_limits):
    tree = tmp_path / "tree"
    (tree / "deep").mkdir(parents=True)
    marks = {0: b"first", 2047: b"across a sector", 33 * MiB + 5: os.urandom(100_000), BIG - 3: b"end"}
    want = sparse_file(tree / "deep" / "big.bin", BIG, marks)
    (tree / "small.txt").write_bytes(b"small\n")
    image = tmp_path / "big.iso"
    result = run_build("--type", "cdrom", "-o", image, tree)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(image), "-extract", "/", str(out)], check=True,
                   capture_output=True)
    assert sha256_of(out / "deep" / "big.bin") == want
    assert (out / "small.txt").read_bytes() == b"small\n"
    isoinfo = subprocess.Popen(["isoinfo", "-i", str(image), "-R", "-x", "/deep/big.bin"], stdout=subprocess.PIPE)
    digest = hashlib.sha256()
    while chunk := isoinfo.stdout.read(MiB):
        digest.update(chunk)
    assert isoinfo.wait() == 0
    assert digest.hexdigest() == want


def _peak_kib_of_build(tmp_path, source, image) -> int:
    """The peak RSS of a build in a process of its own, started as a fork of a small shell
    (a process begun as a copy of pytest would count pytest's memory as its own)."""
    report = tmp_path / "peak"
    code = ("import resource, sys\nfrom payloadhook.cli import main\n"
            f"status = main(['build', '--type', 'cdrom', '-o', {str(image)!r}, {str(source)!r}])\n"
            f"open({str(report)!r}, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
            "sys.exit(status)\n")
    subprocess.run(["/bin/sh", "-c", '"$@" & wait $!', "sh", sys.executable, "-c", code], check=True)
    return int(report.read_text())


def test_peak_memory_does_not_grow_with_the_file(tmp_path, big_limits):
    small = tmp_path / "small"
    small.write_bytes(os.urandom(4096))
    big = tmp_path / "big"
    with open(big, "wb") as stream:    # written out (not sparse), as any large input
        for _ in range(BIG // MiB):
            stream.write(os.urandom(MiB))
    baseline = _peak_kib_of_build(tmp_path, small, tmp_path / "small.iso")
    peak = _peak_kib_of_build(tmp_path, big, tmp_path / "big.iso")
    assert sha256_of(tmp_path / "big.iso") != sha256_of(tmp_path / "small.iso")
    # held in memory, 64 MiB of content would raise the peak by 64 MiB at least
    assert peak - baseline < 4 * 1024, (baseline, peak)


@pytest.mark.parametrize("change,said", [
    (lambda path: path.write_bytes(path.read_bytes() + b"more"), "changed size (100000 bytes, now 100004)"),
    (lambda path: os.truncate(path, 10), "changed size (100000 bytes, 10 copied)"),
    (lambda path: path.unlink(), "was removed"),
    (lambda path: os.rename(path.with_name("other"), path), "was removed"),
])
@pytest.mark.parametrize("kind", ["cdrom", "floppy"])
def test_a_file_changed_between_its_check_and_its_copy_is_refused_and_no_image_left(tmp_path, kind, change, said):
    from payloadhook.errors import error_line
    tree = tmp_path / "tree"
    tree.mkdir()
    victim = tree / "b-victim"
    victim.write_bytes(os.urandom(100_000))
    (tree / "a-first").write_bytes(os.urandom(5000))
    (tree / "other").write_bytes(b"x" * 100_000)
    outdir = tmp_path / "out"
    outdir.mkdir()
    # the command's own steps: the files read and checked, then the image written
    payload = Payload(type=kind, files=files_from_args([str(tree)], load_config(), stream=True))
    assert all(not isinstance(item.data, bytes) for item in payload.files)   # held open, not read
    change(victim)
    with pytest.raises(PayloadError) as refused:
        write_output(str(outdir / "image"), lambda stream: write_image(payload, stream))
    line = error_line(refused.value, "build")
    assert line == f"input {tree}/b-victim {said} while the image was built", line
    assert os.listdir(outdir) == []    # no image, no temporary file


def test_standard_output_carries_the_same_image(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(30):
        (tree / f"f{index}.bin").write_bytes(os.urandom(index * 1000 + 1))
    piped = tmp_path / "piped.iso"
    for kind in ("cdrom", "floppy"):
        with open(piped, "wb") as sink:
            # through a pipe (cat), which the kernel's file copy cannot write to: sendfile does
            command = subprocess.Popen([sys.executable, "-m", "payloadhook.cli", "build", "--type", kind, "-o", "-",
                                        str(tree)], stdout=subprocess.PIPE)
            subprocess.run(["cat"], stdin=command.stdout, stdout=sink, check=True)
            assert command.wait() == 0
        read = readback.iso_files(str(piped)) if kind == "cdrom" else readback.fat_files(str(piped))
        assert read == {path.name: path.read_bytes() for path in tree.iterdir()}


def test_files_json_from_a_pipe_still_builds(tmp_path):
    import base64
    import json
    document = json.dumps({"files": [{"name": "a/b.txt", "content": base64.b64encode(b"piped\n").decode()}]})
    image = tmp_path / "x.img"
    result = run_build("--type", "floppy", "-o", image, "--files-json", "-", input=document.encode())
    assert result.returncode == 0, result.stderr
    assert readback.fat_files(str(image)) == {"a/b.txt": b"piped\n"}


def test_a_fifo_input_is_refused_as_before(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = run_build("--type", "cdrom", "-o", tmp_path / "x.iso", f"f={fifo}", text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("is a FIFO, not a regular file"), result.stderr
    assert not (tmp_path / "x.iso").exists()


def test_more_files_than_descriptors_still_build(tmp_path):
    """Past the open files the process may hold, files are read into memory as before."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(300):
        (tree / f"f{index:03}").write_bytes(b"%d\n" % index)
    image = tmp_path / "x.iso"
    code = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))\n"
            "from payloadhook.cli import main\n"
            f"sys.exit(main(['build', '--type', 'cdrom', '-o', {str(image)!r}, {str(tree)!r}]))\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert readback.iso_files(str(image)) == {f"f{index:03}": b"%d\n" % index for index in range(300)}


def test_a_streamed_payload_gives_the_image_its_bytes_give(tmp_path):
    """Held open or read into memory, the same files make the same image, byte for byte."""
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    for index, size in enumerate((0, 1, 2047, 2048, 2049, 70_000)):
        (tree / "d" / f"f{index}").write_bytes(os.urandom(size))
    streamed = files_from_args([str(tree)], load_config(), stream=True)
    held = tuple(PayloadFile(name=item.name, content=item.content) for item in streamed)
    assert any(not isinstance(item.data, bytes) for item in streamed)
    from payloadhook.media.floppy import write_floppy
    from payloadhook.media.iso import write_iso
    for writer, kind in ((write_iso, "cdrom"), (write_floppy, "floppy")):
        images = []
        for files in (streamed, held):
            path = tmp_path / f"{kind}-{len(images)}"
            with open(path, "wb") as stream:
                writer(Payload(type=kind, files=files), stream, when=1_700_000_000)
            images.append(path.read_bytes())
        assert images[0] == images[1]


def test_a_build_without_a_preset_imports_no_preset_and_no_dataclasses(tmp_path):
    """What a build imports stays what it uses (docs/speed.md): not the presets, which bring
    ``re`` and ``dataclasses``, and not the cryptography a sealed payload needs."""
    (tmp_path / "f").write_bytes(b"x")
    code = ("import sys\nfrom payloadhook.cli import main\n"
            f"assert main(['build', '--type', 'cdrom', '-o', {str(tmp_path / 'x.iso')!r}, {str(tmp_path / 'f')!r}]) == 0\n"
            "print(' '.join(sorted(sys.modules)))\n")
    modules = set(subprocess.run([sys.executable, "-I", "-c", code], check=True, capture_output=True,
                                 text=True).stdout.split())
    assert "payloadhook.local.sources" in modules
    assert not modules & {"dataclasses", "inspect", "payloadhook.presets", "payloadhook.local.presets", "cryptography"}


def test_an_input_on_another_file_system_is_copied_too(tmp_path):
    """Between two file systems the kernel's file copy refuses (EXDEV); sendfile copies."""
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system than the test's directory")
    import tempfile
    with tempfile.TemporaryDirectory(dir="/dev/shm") as elsewhere:
        data = os.urandom(3 * MiB + 17)
        with open(os.path.join(elsewhere, "far.bin"), "wb") as stream:
            stream.write(data)
        for kind, read in (("cdrom", readback.iso_files), ("floppy", readback.fat_files)):
            image = tmp_path / f"x.{kind}"
            content = data if kind == "cdrom" else data[:MiB]
            with open(os.path.join(elsewhere, "far.bin"), "wb") as stream:
                stream.write(content)
            result = run_build("--type", kind, "-o", image, os.path.join(elsewhere, "far.bin"))
            assert result.returncode == 0, result.stderr
            assert read(str(image)) == {"far.bin": content}


@pytest.mark.parametrize("opening", ["append", "read-write"])
def test_standard_output_onto_one_of_its_inputs_is_refused_before_anything_is_written(tmp_path, big_limits,
                                                                                      opening):
    """``build -o - >> input`` (or ``1<> input``): streamed, the image's first pieces would land
    in the input before the input is copied (found by the third attack of round three)."""
    source = tmp_path / "a.bin"
    data = os.urandom(5000)
    source.write_bytes(data)
    fd = os.open(source, os.O_WRONLY | os.O_APPEND if opening == "append" else os.O_RDWR)
    try:
        done = subprocess.run([sys.executable, "-m", "payloadhook.cli", "build", "--type", "cdrom", "-o", "-",
                               str(source)], stdout=fd, stderr=subprocess.PIPE, cwd=tmp_path)
    finally:
        os.close(fd)
    assert done.returncode != 0
    assert done.stderr.decode() == (f"payloadhook: standard output is the input {source}: the image would be "
                                    "written into its own input; write it with -o FILE instead\n")
    assert source.read_bytes() == data


def test_standard_output_onto_another_file_still_builds(tmp_path, big_limits):
    source = tmp_path / "a.bin"
    source.write_bytes(b"payload")
    with open(tmp_path / "out.iso", "wb") as out:
        done = subprocess.run([sys.executable, "-m", "payloadhook.cli", "build", "--type", "cdrom", "-o", "-",
                               str(source)], stdout=out, stderr=subprocess.PIPE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert readback.iso_files(str(tmp_path / "out.iso")) == {"a.bin": b"payload"}


def test_a_closed_standard_output_is_one_line(tmp_path, big_limits):
    source = tmp_path / "a.bin"
    source.write_bytes(b"payload")
    done = subprocess.run(f"{sys.executable} -m payloadhook.cli build --type cdrom -o - {source} >&-", shell=True,
                          stderr=subprocess.PIPE, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.decode() == "payloadhook: standard output is closed: give the image a file with -o FILE\n"


def test_an_image_is_the_same_into_a_new_file_a_pipe_an_appended_file_and_memory(tmp_path):
    """Into a new file the pieces go at their offsets, the image's room reserved first and
    its zeros never written; into anything else, in order from where the descriptor stands
    (media/pieces.py). Every way gives the same bytes, and the new file holds every block
    of its size (reserved, not sparse)."""
    import io
    import threading
    tree = tmp_path / "tree"
    tree.mkdir()
    for index, size in enumerate((0, 1, 2047, 2048, 2049, 70_000, 300_000)):
        (tree / f"f{index}").write_bytes(os.urandom(size))
    from payloadhook.media.floppy import write_floppy
    from payloadhook.media.iso import write_iso
    for writer, kind in ((write_iso, "cdrom"), (write_floppy, "floppy")):
        def payload():
            return Payload(type=kind, files=files_from_args([str(tree)], load_config(), stream=True))

        memory = io.BytesIO()
        size = writer(payload(), memory, when=1_700_000_000)
        image = memory.getvalue()
        assert len(image) == size
        new = tmp_path / f"{kind}.new"
        with open(new, "wb") as stream:
            assert writer(payload(), stream, when=1_700_000_000) == size
            assert stream.tell() == size
        assert new.read_bytes() == image
        assert os.stat(new).st_blocks * 512 >= size
        appended = tmp_path / f"{kind}.appended"
        appended.write_bytes(b"")
        with open(appended, "ab") as stream:
            writer(payload(), stream, when=1_700_000_000)
        assert appended.read_bytes() == image
        # a "wb" object over a descriptor that appends (sys.stdout.buffer under '>> empty'):
        # the descriptor's flags are what count
        appending = tmp_path / f"{kind}.appending"
        with os.fdopen(os.open(appending, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "wb") as stream:
            assert writer(payload(), stream, when=1_700_000_000) == size
        assert appending.read_bytes() == image
        after = tmp_path / f"{kind}.after"
        after.write_bytes(b"head")
        with open(after, "r+b") as stream:
            stream.seek(4)
            writer(payload(), stream, when=1_700_000_000)
        assert after.read_bytes() == b"head" + image
        read, write = os.pipe()
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read, 1 << 16), b"")))
        reader.start()
        with open(write, "wb") as stream:
            writer(payload(), stream, when=1_700_000_000)
        reader.join()
        os.close(read)
        assert b"".join(chunks) == image, kind


def test_an_image_past_the_file_size_limit_is_refused_in_one_line_and_leaves_nothing(tmp_path, big_limits):
    """Its room is reserved before a byte is copied: a file system that cannot hold it (here
    the process's file size limit, which refuses as a full disk would) refuses the build
    there, in one line, and the temporary file goes."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "big.bin").write_bytes(os.urandom(MiB))
    code = ("import resource, signal, sys\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\nfrom payloadhook.cli import main\n"
            f"sys.exit(main(['build', '--type', 'cdrom', '-o', {str(out / 'x.iso')!r}, {str(tmp_path / 'big.bin')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr == f"payloadhook: cannot write {out / 'x.iso'}: File too large\n"
    assert os.listdir(out) == []


@pytest.mark.parametrize("kind", ["cdrom", "floppy"])
@pytest.mark.parametrize("fails", [errno.EOPNOTSUPP, errno.EINVAL, errno.EIO])
def test_an_image_whose_room_cannot_be_reserved_is_the_same_image(tmp_path, monkeypatch, kind, fails):
    """Where reserving fails for a reason that is not the output's (a file system that
    cannot, an I/O error: injected here, since glibc emulates fallocate where the kernel
    cannot), the pieces still go at their offsets and the file's size says the zeros."""
    from payloadhook.media import pieces

    def refuse(fd, offset, length):
        raise OSError(fails, os.strerror(fails))
    monkeypatch.setattr(pieces.os, "posix_fallocate", refuse)
    tree = tmp_path / "tree"
    tree.mkdir()
    for index, size in enumerate((0, 1, 2049, 70_000)):
        (tree / f"f{index}").write_bytes(os.urandom(size))
    import io

    from payloadhook.media.floppy import write_floppy
    from payloadhook.media.iso import write_iso
    writer = write_iso if kind == "cdrom" else write_floppy
    payload = Payload(type=kind, files=files_from_args([str(tree)], load_config()))
    memory = io.BytesIO()
    writer(payload, memory, when=1_700_000_000)
    with open(tmp_path / "x.img", "wb") as stream:
        assert writer(payload, stream, when=1_700_000_000) == stream.tell()
    assert (tmp_path / "x.img").read_bytes() == memory.getvalue()


@pytest.mark.parametrize("refused", [("copy_file_range",), ("copy_file_range", "sendfile")])
def test_a_copy_the_kernel_refuses_falls_back_at_the_files_offset(tmp_path, monkeypatch, refused):
    """copy_file_range refused (as between two file systems), and sendfile too (injected:
    no pair of real files refuses both): the next way copies at the same offset."""
    from payloadhook.local import sources
    from payloadhook.media.iso import write_iso
    tree = tmp_path / "tree"
    tree.mkdir()
    for index, size in enumerate((1, 2047, 2049, 300_000)):
        (tree / f"f{index}").write_bytes(os.urandom(size))
    import io
    memory = io.BytesIO()
    write_iso(Payload(type="cdrom", files=files_from_args([str(tree)], load_config(), stream=True)), memory,
              when=1_700_000_000)

    def cross(*args):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
    for name in refused:
        monkeypatch.setattr(sources.os, name, cross)
    with open(tmp_path / "x.iso", "wb") as stream:
        write_iso(Payload(type="cdrom", files=files_from_args([str(tree)], load_config(), stream=True)), stream,
                  when=1_700_000_000)
    assert (tmp_path / "x.iso").read_bytes() == memory.getvalue()


def test_standard_output_a_non_blocking_pipe_carries_the_whole_image(tmp_path):
    """A pipe left non-blocking by whoever made it: the writer waits while it is full."""
    import fcntl
    import time
    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(5):
        (tree / f"f{index}").write_bytes(os.urandom(100_000))
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETFL, fcntl.fcntl(write, fcntl.F_GETFL) | os.O_NONBLOCK)
    process = subprocess.Popen([sys.executable, "-m", "payloadhook.cli", "build", "--type", "floppy", "-o", "-",
                                str(tree)], stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    time.sleep(1)    # the pipe fills and stays full for a while
    chunks = []
    while chunk := os.read(read, 1 << 20):
        chunks.append(chunk)
    os.close(read)
    stderr = process.stderr.read().decode()
    assert process.wait() == 0, stderr
    image = tmp_path / "x.img"
    image.write_bytes(b"".join(chunks))
    assert readback.fat_files(str(image)) == {p.name: p.read_bytes() for p in tree.iterdir()}
