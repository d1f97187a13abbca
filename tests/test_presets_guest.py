"""Presets through a real libvirtd, read by a real guest kernel: attach and run-once lay
them out on the machine's own media (a floppy on i440fx, a CD-ROM on q35 for --sysprep),
sealed by default where the host has a key, beside a payload of the other type; ``show``
names them; the tiny guest (tests/harness/tinyguest.py) reads each file and the label from
the device. Bad inputs are refused with their message, the definition and the image
directory untouched."""

import base64
import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import MARKER
from tests.harness.domains import domain, images_of, wait_state
from tests.harness.tinyguest import parse_console
from tests.test_presets import ANSWER, NETWORK_V2, USER_DATA
from tests.test_seal_libvirt import command, keyed  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.guest]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def machine(libvirtd, workdir, guest_kernel, request):
    """define(machine, devs) -> (name, uuid, boot): a defined guest without disks."""
    made = []

    def define(machine_type="pc", devs="sr0,fd0"):
        name = f"ph-preset-{len(made)}-" + request.node.name.split("[")[0][5:25].replace("_", "-")
        console = workdir / f"{name}.log"
        path = workdir / f"{name}.xml"
        path.write_text(domain(name, [], kernel=guest_kernel, console=str(console), devs=devs, machine=machine_type))
        libvirtd.virsh("define", str(path))
        made.append(name)
        uuid = libvirtd.virsh("domuuid", name).stdout.strip()

        def boot(*start):
            if console.exists():
                console.unlink()
            (command(libvirtd, *start) if start else libvirtd.virsh("start", name))
            wait_state(libvirtd, name, "shut off", timeout=120)
            return parse_console(console.read_text(errors="replace"))
        return name, uuid, boot

    yield define
    for name in made:
        libvirtd.virsh("destroy", name, check=False)
        libvirtd.virsh("undefine", name, check=False)


@pytest.fixture
def files(workdir):
    (workdir / "user-data").write_bytes(USER_DATA)
    (workdir / "network-config").write_bytes(NETWORK_V2)
    (workdir / "answer.xml").write_bytes(ANSWER)
    (workdir / "bad").write_bytes(MARKER.encode() + b"\n")
    return workdir


def files_json(**entries) -> bytes:
    return json.dumps({"files": [{"name": n, "content": base64.b64encode(c).decode()}
                                 for n, c in entries.items()]}).encode()


def command_with_stdin(libvirtd, stdin, *args):
    conf = os.path.join(libvirtd.base, "command.conf")      # written by command()
    result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", libvirtd.uri, *args], input=stdin,
                            capture_output=True, env={**os.environ, "LC_ALL": "C", "PAYLOADHOOK_CONF": conf})
    assert MARKER.encode() not in result.stdout + result.stderr
    return result


def test_sysprep_floppy_and_cloud_init_cdrom_sealed_on_i440fx(libvirtd, keyed, machine, files):  # noqa: F811
    name, uuid, boot = machine("pc")
    out = command(libvirtd, "attach", name, "--sysprep", str(files / "answer.xml")).stdout
    assert f"attached floppy payload (2 files, label SYSPREP, sealed with key {keyed}) to {name} on fda" in out
    # the web console's way: content through standard input only
    result = command_with_stdin(libvirtd, files_json(**{"user-data": USER_DATA, "net": NETWORK_V2}),
                                "attach", name, "--cloud-init", "user-data=json:user-data,network-config=json:net",
                                "--files-json", "-")
    assert result.returncode == 0, result.stderr
    assert b"cdrom payload (3 files, label cidata, sealed with key" in result.stdout
    shown = command(libvirtd, "show", name).stdout
    assert "floppy on fda, label SYSPREP (Windows answer file), 2 files" in shown
    assert "cdrom on hdc, label cidata (cloud-init NoCloud), 3 files" in shown
    document = json.loads(command(libvirtd, "show", name, "--json").stdout)
    assert [(p["type"], p["preset"], p["sealed"]) for p in document["payloads"]] == \
        [("floppy", "sysprep", True), ("cdrom", "cloud-init", True)]
    xml = libvirtd.virsh("dumpxml", name, "--inactive").stdout
    assert base64.b64encode(USER_DATA)[:24].decode() not in xml

    report = boot()
    assert report["done"], report
    assert report["labels"] == {"sr0": "cidata", "fd0": "SYSPREP"}
    assert report["files"][("fd0", "vfat")] == {"Autounattend.xml": sha(ANSWER), "Unattend.xml": sha(ANSWER)}
    meta = f'instance-id: "{uuid}"\nlocal-hostname: "{name}"\n'.encode()
    expected = {"user-data": sha(USER_DATA), "network-config": sha(NETWORK_V2), "meta-data": sha(meta)}
    assert report["files"][("sr0", "rock")] == expected == report["files"][("sr0", "joliet")]


def test_sysprep_is_a_cdrom_on_q35(libvirtd, machine, files):
    name, _, boot = machine("q35", devs="sr0")
    out = command(libvirtd, "attach", name, "--sysprep", str(files / "answer.xml"), "--no-seal").stdout
    assert f"attached cdrom payload (2 files, label SYSPREP) to {name} on sda" in out
    report = boot()
    assert report["labels"] == {"sr0": "SYSPREP"}
    for tree in ("rock", "joliet"):    # Windows reads the Joliet names
        assert report["files"][("sr0", tree)] == {"Autounattend.xml": sha(ANSWER), "Unattend.xml": sha(ANSWER)}
    refused = command(libvirtd, "attach", name, "--sysprep", str(files / "answer.xml"), "--type", "floppy",
                      check=False)
    assert refused.returncode == 1 and "machine type q35 has no floppy controller" in refused.stderr


def test_run_once_config_drive_then_ovf_env(libvirtd, machine, files):
    name, uuid, boot = machine("pc", devs="sr0")
    before = libvirtd.virsh("dumpxml", name, "--inactive").stdout
    report = boot("run-once", name, "--config-drive", f"user-data={files}/user-data", "--no-seal")
    assert report["labels"] == {"sr0": "config-2"}
    seen = report["files"][("sr0", "rock")]
    meta = json.dumps({"uuid": uuid, "name": name, "hostname": name, "files": []}, indent=2).encode() + b"\n"
    assert seen == {f"openstack/{v}/{f}": s for v in ("latest", "2018-08-27")
                    for f, s in (("meta_data.json", sha(meta)), ("user_data", sha(USER_DATA)))}
    assert libvirtd.virsh("dumpxml", name, "--inactive").stdout == before

    report = boot("run-once", name, "--ovf-env", "hostname=vm1,instance-id=iid-1", "--no-seal")
    assert report["labels"] == {"sr0": "OVF ENV"}
    assert list(report["files"][("sr0", "rock")]) == ["ovf-env.xml"]
    assert libvirtd.virsh("dumpxml", name, "--inactive").stdout == before


@pytest.mark.parametrize("args,fragment", [
    (["--cloud-init", "user-data={d}/bad"], "--cloud-init user-data does not start with a header cloud-init"),
    (["--cloud-init", "user-data={d}/user-data,network-config={d}/user-data"], "has no 'version: 1'"),
    (["--cloud-init", "user-data={d}/user-data,meta-data={d}/answer.xml"], "meta-data is not a YAML mapping"),
    (["--config-drive", "user-data={d}/user-data,network-data={d}/network-config"], "network-data is not valid JSON"),
    (["--sysprep", "{d}/bad"], "--sysprep answer file is not well-formed XML"),
    (["--ovf-env", "{d}/answer.xml"], "--ovf-env document has no <Environment> root"),
])
def test_bad_inputs_change_nothing(libvirtd, machine, files, args, fragment):
    name, _, _ = machine("pc")
    command(libvirtd, "attach", name, "--type", "floppy", "--no-seal", f"x={files}/user-data")
    before = libvirtd.virsh("dumpxml", name, "--inactive").stdout
    images = images_of(libvirtd, name)
    for verb in ("attach", "run-once"):
        result = command(libvirtd, verb, name, *[a.format(d=files) for a in args], check=False)
        assert result.returncode == 1 and fragment in result.stderr and result.stderr.count("\n") == 1
        assert libvirtd.virsh("dumpxml", name, "--inactive").stdout == before
        assert libvirtd.virsh("domstate", name).stdout.strip() == "shut off"
        assert images_of(libvirtd, name) == images

