"""The network seed end to end, with TCG guests on a libvirt NAT network under a private
libvirtd in a network namespace of its own (every packet stays there): ``attach
--cloud-init ... --type network`` through libvirt, the seed service in the daemon's
namespaces, the guest fetching its seed from 169.254.169.254 under clean-traffic; a second
guest asking for the first's files, and posing with its MAC and address, gets nothing; after
destroy nothing is served."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest

from payloadhook.domain.deviceless import SEED_SERIAL
from payloadhook.seed import service_failing, service_running
from tests.conftest import MARKER
from tests.harness.domains import domain, images_of, wait_state
from tests.harness.libvirtd import Libvirtd
from tests.harness.tinyguest import parse_console
from tests.test_cli import payloadhook

pytestmark = [pytest.mark.integration, pytest.mark.guest]

NETWORK = """<network><name>seednet</name><forward mode='nat'/>
  <bridge name='virbr-seed' stp='off' delay='0'/>
  <ip address='192.168.150.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.150.10' end='192.168.150.99'/>
      <host mac='52:54:00:5e:ed:01' ip='192.168.150.11'/></dhcp>
  </ip></network>"""
FIRST_MAC, FIRST_ADDRESS = "52:54:00:5e:ed:01", "192.168.150.11"
SECOND_MAC = "52:54:00:5e:ed:02"
USER_DATA = f"#cloud-config\nfinal_message: {MARKER}\n".encode()
META_DATA = b"instance-id: seed-guest\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def netd():
    if os.geteuid() != 0:
        pytest.fail("guest tests need root")
    daemon = Libvirtd(netns=True).start()
    try:
        path = os.path.join(daemon.base, "seednet.xml")
        with open(path, "w") as stream:
            stream.write(NETWORK)
        daemon.virsh("net-define", path)
        daemon.virsh("net-start", "seednet")
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def seed_service(netd, qemu_work_root):
    log_path = os.path.join(qemu_work_root, "seed-service.log")
    log = open(log_path, "w")
    process = subprocess.Popen(netd.nsenter_argv(sys.executable, "-m", "payloadhook", "serve"), stdout=log,
                               stderr=subprocess.STDOUT)
    for _ in range(100):
        if (service_running(netd.path("/run/payloadhook")) and not service_failing(netd.path("/run/payloadhook"))
                or process.poll() is not None):
            break
        time.sleep(0.1)
    assert service_running(netd.path("/run/payloadhook")), open(log_path).read()
    process.log_path = log_path    # type: ignore[attr-defined]
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def guest_xml(name, kernel, console, mac, cmdline):
    xml = domain(name, [], kernel=kernel, console=str(console)).replace(
        "payloadtest.devs=", cmdline + " payloadtest.devs=")
    interface = (f"<interface type='network'><mac address='{mac}'/><source network='seednet'/>"
                 "<model type='virtio'/></interface>")
    return xml.replace("<devices>", "<devices>" + interface, 1)


def define(netd, workdir, name, kernel, mac, cmdline):
    console = workdir / f"{name}.log"
    path = workdir / f"{name}.xml"
    path.write_text(guest_xml(name, kernel, console, mac, cmdline))
    netd.virsh("define", str(path))
    return console


def wait_console(console, needle: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = console.read_text(errors="replace") if console.exists() else ""
        if needle in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} not on {console} after {timeout} s: {text[-2000:]}")


def filter_result(netd) -> str:
    """What libvirtd's log says of applying the filters (one boot in about twelve fails to)."""
    try:
        with open(netd.path("/var/log/libvirt/libvirtd.log"), errors="replace") as stream:
            return "".join(line for line in stream if "ebtables" in line or "nwfilter" in line)[-2000:]
    except OSError:
        return "(no libvirtd.log)"


def test_prepare_is_refused_in_one_line_without_the_service(netd, workdir, guest_kernel):
    """First in this module: the service (a module fixture) has not started yet."""
    name = "ph-seed-noservice"
    define(netd, workdir, name, guest_kernel, "52:54:00:5e:ed:03", "payloadtest.seed=user-data")
    try:
        (workdir / "user-data").write_bytes(USER_DATA)
        payloadhook(netd, "attach", name, "--type", "network", "--no-seal", f"user-data={workdir / 'user-data'}")
        if service_running(netd.path("/run/payloadhook")):
            pytest.skip("the seed service of this module runs")
        said = netd.virsh("start", name, check=False)
        assert said.returncode != 0
        assert ("payloadhook: domain ph-seed-noservice: the network seed service is not running: "
                "systemctl start payloadhook-seed") in said.stderr
    finally:
        netd.virsh("undefine", name, check=False)


def test_a_guest_fetches_its_seed_and_neither_a_neighbour_nor_a_poser_gets_it(netd, seed_service, workdir,
                                                                               guest_kernel):
    first, second = "ph-seed-1", "ph-seed-2"
    (workdir / "user-data").write_bytes(USER_DATA)
    (workdir / "meta-data").write_bytes(META_DATA)
    console = define(netd, workdir, first, guest_kernel, FIRST_MAC,
                     "payloadtest.seed=user-data,meta-data,vendor-data payloadtest.hold=600")
    second_console = define(netd, workdir, second, guest_kernel, SECOND_MAC, "payloadtest.seed=user-data "
                            "payloadtest.tries=3")
    try:
        said = payloadhook(netd, "attach", first, "--cloud-init",
                           f"user-data={workdir / 'user-data'},meta-data={workdir / 'meta-data'}", "--type",
                           "network", "--no-seal")
        assert said.stdout == (f"attached network payload (2 files) of {first}: SMBIOS serial set to {SEED_SERIAL}; "
                               f"<smbios mode='sysinfo'/> added; clean-traffic added to interface {FIRST_MAC}\n")
        # the second guest filtered too, as an administrator of such a host would filter every guest
        xml = netd.virsh("dumpxml", "--inactive", second).stdout.replace(
            "<model type='virtio'/>", "<model type='virtio'/><filterref filter='clean-traffic'/>")
        (workdir / "second.xml").write_text(xml)
        netd.virsh("define", str(workdir / "second.xml"))

        netd.virsh("start", first)
        text = wait_console(console, "PH-DONE", timeout=180)
        report = parse_console(text)
        assert report["serial"] == SEED_SERIAL, report
        assert report["seed"] == {"user-data": sha(USER_DATA), "meta-data": sha(META_DATA),
                                  "vendor-data": sha(b"")}, (report, filter_result(netd))
        assert report["net"] == f"{FIRST_ADDRESS}/24"

        netd.virsh("start", second)    # a neighbour on the same bridge asks for the same names
        wait_state(netd, second, "shut off", timeout=180)
        assert parse_console(second_console.read_text(errors="replace"))["seed"] == {"user-data": "FAIL"}

        # the neighbour again, with the first's MAC and address: the filter drops it
        netd.virsh("dumpxml", "--inactive", second)
        xml = (workdir / "second.xml").read_text().replace(
            "payloadtest.tries=3", f"payloadtest.tries=3 payloadtest.spoof={FIRST_MAC},{FIRST_ADDRESS}/24,192.168.150.1")
        (workdir / "second.xml").write_text(xml)
        netd.virsh("define", str(workdir / "second.xml"))
        second_console.unlink()
        netd.virsh("start", second)
        wait_state(netd, second, "shut off", timeout=180)
        assert parse_console(second_console.read_text(errors="replace"))["seed"] == {"user-data": "FAIL"}

        assert images_of(netd, first) == [f"{first}-network.seed", f"{first}-network.taps"]
        netd.virsh("destroy", first)
        assert images_of(netd, first) == []     # released: nothing served after destroy
        log = open(seed_service.log_path).read()
        assert f"domain {first} from {FIRST_ADDRESS}: GET /user-data 200 {len(USER_DATA)} bytes" in log, log
        # the neighbour's and the poser's requests never reach the service (the bridge rules drop
        # frames to the seed from any port but a served tap): every request logged is the first's
        assert all(f"domain {first} from {FIRST_ADDRESS}:" in line for line in log.splitlines() if " from " in line), log
        assert MARKER not in log
        said = payloadhook(netd, "detach", first, "--type", "network")
        assert "SMBIOS serial removed" in said.stdout and f"clean-traffic removed from interface {FIRST_MAC}" in said.stdout
        assert "nocloud" not in netd.virsh("dumpxml", first).stdout
    finally:
        for name in (first, second):
            netd.virsh("destroy", name, check=False)
            netd.virsh("undefine", name, check=False)


def test_run_once_serves_the_seed_for_that_run_only(netd, seed_service, workdir, guest_kernel):
    name = "ph-seed-once"
    (workdir / "user-data").write_bytes(USER_DATA)
    console = define(netd, workdir, name, guest_kernel, "52:54:00:5e:ed:04", "payloadtest.seed=user-data")
    try:
        said = payloadhook(netd, "run-once", name, "--type", "network", "--no-seal", f"user-data={workdir / 'user-data'}")
        assert said.stdout.startswith(f"started {name} once with a network payload (1 file)"), said.stdout
        wait_state(netd, name, "shut off", timeout=180)
        report = parse_console(console.read_text(errors="replace"))
        assert report["serial"] == SEED_SERIAL and report["seed"] == {"user-data": sha(USER_DATA)}, \
            (report, filter_result(netd))
        assert images_of(netd, name) == []
        saved = netd.virsh("dumpxml", "--inactive", name).stdout
        assert "nocloud" not in saved and "urn:payloadhook" not in saved and "filterref" not in saved
    finally:
        netd.virsh("destroy", name, check=False)
        netd.virsh("undefine", name, check=False)
