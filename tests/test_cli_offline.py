"""The command's verbs that need no libvirt: build, and the XML edits behind attach and detach."""

import os
import subprocess
import sys

import pytest

from payloadhook import cli, xmlsafe
from payloadhook.cli import main
from payloadhook.domain import metadata
from payloadhook.domain.plan import apply_attach, apply_detach, plan_attach, plan_detach
from payloadhook.domain.view import view_of
from payloadhook.errors import BindingError
from payloadhook.model import Payload, PayloadFile
from tests.conftest import MARKER
from tests.harness import readback

IMAGE_DIR = "/run/payloadhook"


@pytest.fixture
def inputs(tmp_path):
    tree = tmp_path / "seed"
    (tree / "openstack" / "latest").mkdir(parents=True)
    (tree / "openstack" / "latest" / "meta_data.json").write_bytes(b'{"uuid": "' + MARKER.encode() + b'"}')
    (tree / "user-data").write_bytes(b"#cloud-config\n")
    single = tmp_path / "Unattend.xml"
    single.write_bytes(MARKER.encode())
    return tree, single


def test_build_cdrom_from_a_directory(tmp_path, inputs, capsys):
    tree, _ = inputs
    out = tmp_path / "seed.iso"
    assert main(["build", "--type", "cdrom", "--label", "config-2", "-o", str(out), str(tree)]) == 0
    assert readback.iso_files(str(out)) == {"openstack/latest/meta_data.json": (tree / "openstack/latest/meta_data.json").read_bytes(),
                                            "user-data": b"#cloud-config\n"}
    assert readback.blkid(str(out))["LABEL"] == "config-2"
    assert MARKER not in capsys.readouterr().out


def test_build_floppy_from_name_path_pairs(tmp_path, inputs):
    _, single = inputs
    out = tmp_path / "unattend.img"
    assert main(["build", "--type", "floppy", "-o", str(out), f"autounattend.xml={single}", str(single)]) == 0
    assert readback.fat_files(str(out)) == {"autounattend.xml": MARKER.encode(), "Unattend.xml": MARKER.encode()}
    assert readback.fsck_fat(str(out)).returncode == 0


@pytest.mark.parametrize("argv,fragment", [
    (["build", "--type", "cdrom", "-o", "{tmp}/x.iso", "{tmp}/missing"], "input {tmp}/missing does not exist"),
    (["build", "--type", "floppy", "-o", "{tmp}/x.img", "bad?name={single}"], "which a FAT long name cannot hold"),
    (["build", "--type", "floppy", "--label", "much too long", "-o", "{tmp}/x.img", "{single}"], "longer than 11"),
    (["build", "--type", "cdrom", "-o", "{tmp}/nodir/x.iso", "{single}"], "cannot write"),
])
def test_build_refusals_are_one_line(tmp_path, inputs, argv, fragment):
    _, single = inputs
    argv = [a.format(tmp=tmp_path, single=single) for a in argv]
    result = subprocess.run([sys.executable, "-m", "payloadhook.cli", *argv], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("payloadhook: ")
    assert fragment.format(tmp=tmp_path) in result.stderr
    assert not os.path.exists(tmp_path / "x.iso") and not os.path.exists(tmp_path / "x.img")


@pytest.mark.parametrize("argv,fragment", [
    ([], "payloadhook: the following arguments are required: VERB"),
    (["build", "--type", "cdrom"], "payloadhook: build: the following arguments are required: -o/--output"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["ovf", "import", "x.ovf"], "payloadhook: ovf import: one of the arguments --domain -o/--output is required"),
])
def test_usage_errors_are_one_line_with_status_2(argv, fragment):
    result = subprocess.run([sys.executable, "-m", "payloadhook.cli", *argv], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("payloadhook: ")
    assert fragment in result.stderr and result.stderr.rstrip().endswith("--help'")


def test_every_verb_has_help():
    for verb in [[v] for v in cli.VERBS] + [["ovf", a] for a in ("export", "merge", "import", "show")]:
        result = subprocess.run([sys.executable, "-m", "payloadhook.cli", *verb, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "exit status" in result.stdout, verb
    attach_help = subprocess.run([sys.executable, "-m", "payloadhook.cli", "attach", "--help"],
                                 capture_output=True, text=True).stdout
    assert "Method: CD-ROM / Floppy" in attach_help and "Volume ID" in attach_help


def dom(machine="pc", disks=""):
    return xmlsafe.parse_xml(f"<domain type='qemu'><name>vm</name><os><type machine='{machine}'>hvm</type></os>"
                            f"<devices>{disks}</devices></domain>")


CD = Payload(type="cdrom", files=(PayloadFile("a", b"a"),))
FD = Payload(type="floppy", files=(PayloadFile("b", b"b"),))


def attach(root, payload, image_dir):
    """Plan on the domain's view, then apply; the payload with its target set."""
    view = view_of(root)
    plan = plan_attach(view, payload, image_dir)
    apply_attach(view, plan)
    return plan.payload


def detach(root, image_dir, payload_type=None, target=None):
    view = view_of(root)
    plan = plan_detach(view, image_dir, payload_type, target)
    apply_detach(view, plan)
    return list(plan.removed)


def disks_of(root):
    return [(d.target, d.device, d.source, d.bus) for d in view_of(root).disks]


def test_attach_adds_disks_by_machine_type():
    root = dom()
    assert attach(root, CD, IMAGE_DIR).target == "hdc"
    assert attach(root, FD, IMAGE_DIR).target == "fda"
    assert disks_of(root) == [("hdc", "cdrom", "/run/payloadhook/vm-hdc.iso", "ide"),
                              ("fda", "floppy", "/run/payloadhook/vm-fda.img", "fdc")]
    assert [b.disk.target for b in view_of(root).bindings()] == ["hdc", "fda"]
    q35 = dom("pc-q35-7.2")
    assert attach(q35, CD, IMAGE_DIR).target == "sda"
    assert disks_of(q35) == [("sda", "cdrom", "/run/payloadhook/vm-sda.iso", "sata")]
    with pytest.raises(BindingError, match="q35 has no floppy controller"):
        attach(q35, FD, IMAGE_DIR)


def test_attach_again_replaces_payload_and_reuses_disk():
    root = dom()
    attach(root, CD, IMAGE_DIR)
    attach(root, Payload(type="cdrom", files=(PayloadFile("new", b"n"),)), IMAGE_DIR)
    assert len(view_of(root).disks) == 1
    (payload,) = metadata.read_payloads(root)
    assert [f.name for f in payload.files] == ["new"]


def test_attach_fills_an_empty_drive_but_never_takes_a_users_disk():
    root = dom(disks="<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>"
                     "<disk type='file' device='cdrom'><source file='/isos/debian.iso'/><target dev='hdd' bus='ide'/></disk>")
    attach(root, Payload(type="cdrom", target="hdc", files=CD.files), IMAGE_DIR)
    assert disks_of(root)[0] == ("hdc", "cdrom", "/run/payloadhook/vm-hdc.iso", "ide")
    with pytest.raises(BindingError, match="holds '?/isos/debian.iso"):
        attach(root, Payload(type="cdrom", target="hdd", files=CD.files), IMAGE_DIR)


def test_detach_removes_payload_and_its_disk_only():
    root = dom(disks="<disk type='file' device='disk'><source file='/var/lib/libvirt/images/vm.qcow2'/>"
                     "<target dev='vda' bus='virtio'/></disk>")
    attach(root, CD, IMAGE_DIR)
    attach(root, FD, IMAGE_DIR)
    assert [p.type for p in detach(root, IMAGE_DIR, payload_type="cdrom")] == ["cdrom"]
    assert [d[0] for d in disks_of(root)] == ["vda", "fda"]
    detach(root, IMAGE_DIR, target="fda")
    assert [d[0] for d in disks_of(root)] == ["vda"]
    assert root.find("metadata") is None
    with pytest.raises(BindingError, match="has no payload"):
        detach(root, IMAGE_DIR)


@pytest.mark.parametrize("argv", [
    ["build", "--type", "cdrom", "--label", "cidata", "-o", "x.iso", "user-data=u", "meta-data=m"],
    ["-c", "qemu:///system", "attach", "vm", "--type", "floppy", "--target", "fda", "Unattend.xml"],
    ["-c", "build", "show", "vm", "--inactive"],       # a URI that happens to be a verb's name
    ["detach", "vm", "--target", "hdc"],
    ["run-once", "vm", "--type", "cdrom", "dir"],
    ["attach", "vm", "a=b", "--type", "cdrom", "dir", "--label", "x", "c"],
    ["build", "--type", "cdrom", "-o", "x.iso", "--files-json", "-"],
    ["show", "vm", "--json"],
    ["list", "--json"],
    ["check", "vm.xml"],
    ["ovf", "show", "x.ovf"],
    ["dumpxml", "vm"],
    ["ovf", "import", "x.ovf", "--domain", "vm", "--files-from", "d"],
    ["ovf", "export", "vm", "-o", "x.ovf", "--with-content"],
    ["gc", "--dry-run"],
    ["install-hook", "--root", "/tmp/r", "--no-reload"],
    ["--debug", "build", "--type", "cdrom", "-o", "x.iso", "d"],
    ["build", "--debug", "--type", "cdrom", "-o", "x.iso", "d"],
])
def test_the_parser_built_for_one_verb_parses_as_the_whole_one(argv):
    assert cli.parse_args(cli.parser(cli._verb_in(argv)), argv) == cli.parse_args(cli.parser(), argv)


# -- check: the hook's own verdict, without starting ---------------------------------------------

BAD = os.path.join(os.path.dirname(__file__), "data", "bad")
GOOD = [os.path.join(os.path.dirname(__file__), "data", "contract-example.xml")]


@pytest.mark.parametrize("path", sorted(os.path.join(BAD, f) for f in os.listdir(BAD)) + GOOD,
                         ids=os.path.basename)
def test_check_file_gives_the_hooks_verdict_and_reason(tmp_path, path):
    """`check FILE.xml` and the hook's prepare, fed the same document under the same
    configuration: the same status, and the same one-line reason."""
    import io

    from payloadhook.hook import run as hook_run
    images = tmp_path / "images"
    conf = tmp_path / "c.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {images}\n")
    xml = open(path, "rb").read().replace(b"/run/payloadhook", str(images).encode())
    document = tmp_path / "domain.xml"
    document.write_bytes(xml)
    stderr = io.StringIO()
    hook_status = hook_run(["qemu", "bad", "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr,
                           {"PAYLOADHOOK_CONF": str(conf)})
    result = subprocess.run([sys.executable, "-m", "payloadhook.cli", "check", str(document)], capture_output=True,
                            text=True, env={**os.environ, "PAYLOADHOOK_CONF": str(conf)})
    assert (result.returncode, hook_status) in ((0, 0), (1, 1))
    if hook_status:
        reason = stderr.getvalue().removeprefix("payloadhook: domain bad: ")
        assert result.stderr == "payloadhook: " + reason
        assert result.stderr.count("\n") == 1
    else:
        assert "ok, a " in result.stdout and result.stderr == ""
    assert MARKER not in result.stdout + result.stderr


# -- --files-json: content on standard input ---------------------------------------------------

def files_json(*files):
    import base64
    import json
    return json.dumps({"files": [{"name": n, "content": base64.b64encode(c).decode()} for n, c in files]}).encode()


def run_cli(*argv, input=None, env=None):
    return subprocess.run([sys.executable, "-m", "payloadhook.cli", *map(str, argv)], capture_output=True,
                          input=input, env={**os.environ, **(env or {})})


def test_build_takes_files_as_json_on_stdin(tmp_path):
    out = tmp_path / "seed.iso"
    document = files_json(("openstack/latest/meta_data.json", MARKER.encode()), ("user-data", b"#cloud-config\n"))
    result = run_cli("build", "--type", "cdrom", "--label", "config-2", "-o", out, "--files-json", "-",
                     input=document)
    assert result.returncode == 0, result.stderr
    assert readback.iso_files(str(out)) == {"openstack/latest/meta_data.json": MARKER.encode(),
                                            "user-data": b"#cloud-config\n"}
    assert MARKER.encode() not in result.stdout + result.stderr


@pytest.mark.parametrize("document,fragment", [
    (b"[1, 2]", 'expected {"files"'),
    (b'{"files": [], "extra": 1}', 'expected {"files"'),
    (b'{"files": [{"name": "a"}]}', "file 1 is not"),
    (b'{"files": [{"name": "a", "content": 3}]}', "file 1 is not"),
    (b'{"files": [{"name": "a", "content": "!!!!"}]}', "not valid base64"),
    (b'{"files": [{"name": "../a", "content": "YQ=="}]}', "'..' component"),
    (b'{"files": [{"name": "a", "content": "YQ=="', "not a JSON document"),
    (b"\xff\xfe", "not a JSON document"),
])
def test_files_json_refusals_are_one_line(tmp_path, document, fragment):
    result = run_cli("build", "--type", "cdrom", "-o", tmp_path / "x.iso", "--files-json", "-", input=document)
    stderr = result.stderr.decode()
    assert result.returncode == 1 and stderr.count("\n") == 1 and fragment in stderr, stderr
    assert not (tmp_path / "x.iso").exists()


def test_files_json_is_bounded_by_the_limits_before_it_is_parsed(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[payloadhook]\nmax_payload_size = 1K\nmax_file_size = 1K\nmax_files = 2\n")
    env = {"PAYLOADHOOK_CONF": str(conf)}
    result = run_cli("build", "--type", "cdrom", "-o", tmp_path / "x.iso", "--files-json", "-",
                     input=b" " * (3 << 20), env=env)
    assert result.returncode == 1 and b"standard input is over" in result.stderr
    result = run_cli("build", "--type", "cdrom", "-o", tmp_path / "x.iso", "--files-json", "-",
                     input=files_json(("big", b"x" * 2000)), env=env)
    assert result.returncode == 1 and b"over max_file_size" in result.stderr
    result = run_cli("build", "--type", "cdrom", "-o", tmp_path / "x.iso", "--files-json", "-",
                     input=files_json(("a", b""), ("b", b""), ("c", b"")), env=env)
    assert result.returncode == 1 and b"over max_files (2)" in result.stderr


def test_a_verb_needs_files_from_somewhere(tmp_path):
    result = run_cli("build", "--type", "cdrom", "-o", tmp_path / "x.iso")
    assert result.returncode == 2 and result.stderr.decode().startswith("payloadhook: give the files")


# -- --debug: a bug's traceback for a report, never content ------------------------------------

def test_debug_shows_where_an_internal_error_happened_but_never_its_message(tmp_path, monkeypatch, capsys):
    from payloadhook.cli import build

    def broken(args):
        secret = MARKER    # a local holding content: never printed
        raise KeyError(secret)

    monkeypatch.setattr(build, "handle", broken)
    argv = ["build", "--type", "cdrom", "-o", str(tmp_path / "x.iso"), str(tmp_path)]
    assert main(argv) == 1
    assert capsys.readouterr().err == "payloadhook: internal error (KeyError) in build; please report it\n"
    assert main(["--debug", *argv]) == 1
    err = capsys.readouterr().err
    assert "builtins.KeyError, raised at:" in err and "in broken" in err and "cli/__init__.py" in err
    assert err.endswith("payloadhook: internal error (KeyError) in build; please report it\n")
    assert MARKER not in err
    assert main([*argv[:1], "--debug", *argv[1:]]) == 1      # after the verb too
    assert "in broken" in capsys.readouterr().err
    monkeypatch.setenv("PAYLOADHOOK_DEBUG", "1")
    assert main(argv) == 1
    assert "in broken" in capsys.readouterr().err


def test_debug_adds_nothing_to_a_refusal(tmp_path, capsys):
    assert main(["--debug", "build", "--type", "cdrom", "-o", str(tmp_path / "x.iso"), str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.count("\n") == 1


# -- a plain build, read without argparse (cli/buildargs.py) ---------------------------------

@pytest.mark.parametrize("argv", [
    ["build", "--type", "cdrom", "-o", "x.iso", "d"],
    ["build", "--type=floppy", "--output=x.img", "a=b", "c", "--label", "L", "e"],
    ["build", "a", "--type", "cdrom", "b", "-o", "-", "c", "--follow-symlinks", "d"],
    ["build", "--type", "cdrom", "--label", "", "-o", "x.iso", "--files-json", "-"],
    ["build", "--type", "cdrom", "--label=-x", "-o", "x.iso", "d"],
    ["build", "--type", "floppy", "--type", "cdrom", "-o", "a", "-o", "b", "d"],
    ["build", "-o", "x.iso", "d"],             # no --type: build's own refusal, not the parser's
    ["build", "-o", "x.iso"],
    ["--debug", "build", "--type", "cdrom", "-o", "x.iso", "d"],
    ["build", "--debug", "--type", "cdrom", "-o", "x.iso", "d"],
    ["-c", "qemu:///system", "--debug", "build", "-o", "build", "build"],
    ["-c", "build", "build", "--type", "cdrom", "-o", "x.iso", "d"],
])
def test_a_plain_build_reads_as_argparse_reads_it(argv):
    from payloadhook.cli import buildargs
    quick = buildargs.parse(argv)
    assert quick is not None
    assert quick == cli.parse_args(cli.parser(), argv)


@pytest.mark.parametrize("argv", [
    ["build", "--type", "dvd", "-o", "x.iso", "d"],            # argparse's invalid choice
    ["build", "--type", "cdrom", "d"],                         # -o is required
    ["build", "--type", "cdrom", "-o"],
    ["build", "--type", "cdrom", "-o", "--label", "d"],
    ["build", "--type", "cdrom", "-ox.iso", "d"],
    ["build", "--type", "cdrom", "-o=x.iso", "d"],
    ["build", "--typ", "cdrom", "-o", "x.iso", "d"],           # an abbreviation
    ["build", "--type", "cdrom", "-o", "x.iso", "--", "-d"],
    ["build", "--type", "cdrom", "-o", "x.iso", "-"],
    ["build", "--type", "cdrom", "-o", "x.iso", "--label", "-1", "d"],
    ["build", "--follow-symlinks=yes", "--type", "cdrom", "-o", "x.iso", "d"],
    ["build", "--cloud-init", "user-data=u", "-o", "x.iso"],
    ["build", "--net", "0=dhcp", "-o", "x.iso"],
    ["build", "--help"], ["build", "-h"], ["--help"], ["--version"], [],
    ["build", "-c", "qemu:///system", "--type", "cdrom", "-o", "x.iso", "d"],
    ["--connect=qemu:///system", "build", "--type", "cdrom", "-o", "x.iso", "d"],
    ["-c", "-x", "build", "--type", "cdrom", "-o", "x.iso", "d"],
    ["attach", "vm", "--type", "cdrom", "d"], ["show", "build"], ["x", "build"],
])
def test_anything_else_is_left_to_argparse(argv):
    from payloadhook.cli import buildargs
    assert buildargs.parse(argv) is None


def test_the_plain_build_knows_every_option_of_builds_parser():
    from payloadhook.cli import buildargs
    top = cli.parser("build")
    sub = next(a for a in top._actions if a.dest == "verb").choices["build"]
    for action in sub._actions:
        for option in action.option_strings:
            if option in buildargs.DECLINED:
                continue
            if action.nargs == 0:
                assert buildargs.FLAGS[option] == action.dest, option
            else:
                assert buildargs.VALUES[option] == (action.dest, action.choices), option
    assert set(buildargs.DEFAULTS) == set(vars(cli.parse_args(top, ["build", "-o", "x"])))


def test_a_plain_build_imports_no_parser_and_no_re(tmp_path):
    """What ``payloadhook build`` of plain files imports beyond the interpreter's start,
    without site as the installed command runs: not argparse (and with it re, gettext,
    locale, enum, functools, collections), not importlib; none of the presets, the OVF
    code, lxml, libvirt, json or dataclasses; nothing of sealing's."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"a")
    (tree / "sub" / "b.txt").write_bytes(b"b")
    (tmp_path / "payloadhook.conf").write_text("[payloadhook]\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys; sys.path.insert(0, {repo!r}); before = set(sys.modules); from payloadhook.cli import main; "
            f"rc = main(['build', '--type', 'cdrom', '-o', {str(tmp_path / 'x.iso')!r}, {str(tree)!r}]); "
            "print(rc, *sorted(set(sys.modules) - before))")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                            env={"LC_ALL": "C", "PAYLOADHOOK_CONF": str(tmp_path / "payloadhook.conf")})
    status, *loaded = result.stdout.split("\n")[-2].split(" ")
    assert status == "0", result.stderr
    loaded_set = set(loaded)
    for module in ("argparse", "re", "gettext", "locale", "enum", "functools", "collections", "importlib",
                   "contextlib", "pathlib", "typing", "dataclasses", "json", "shutil", "lxml", "libvirt",
                   "payloadhook.presets", "payloadhook.local.presets", "payloadhook.ovf", "payloadhook.cli.parsers",
                   "payloadhook.cli.attach", "payloadhook.cli.show", "payloadhook.seal.nodump",
                   "payloadhook.seal.cfunctions"):
        assert module not in loaded_set, module
    assert {m for m in loaded_set if m.partition(".")[0] != "payloadhook"} <= BUILD_PATH_STDLIB


#: What a plain build may import of the standard library beyond the interpreter's start: os
#: (walking and opening the inputs), resource (the limit on open files), binascii and struct
#: (the ISO's records), errno, encodings for Joliet's UTF-16, gc (the collector is off
#: while a build runs) and fcntl (whether the image's descriptor appends, media/pieces.py);
#: not _ctypes: a build holds nothing sealed, so its core dumps are left as they are
#: (tests/test_nodump.py).
BUILD_PATH_STDLIB = {"__future__", "os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc",
                     "errno", "resource", "binascii", "struct", "_struct", "encodings.utf_16_be", "gc", "fcntl"}
