"""The seed service (payloadhook serve) in network namespaces of its own: a domain's network
payload served from 169.254.169.254 to that domain's interface only.

The guests here are namespaces on a bridge (seednet.py); the hook's prepare and started run
as libvirt runs them, in the host namespace, with a domain XML whose interface's tap is the
guest's veth. test_seed_guest.py does the same with a TCG guest under libvirt and nwfilter.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time

import pytest

from payloadhook.domain import metadata, xmlsafe
from payloadhook.domain.deviceless import SEED_SERIAL
from payloadhook.model import Payload, PayloadFile
from payloadhook.seed import service_running
from tests.conftest import MARKER, REPO
from tests.harness.seednet import BRIDGE, SeedNet, fetch_argv

pytestmark = pytest.mark.integration

HOOK = os.path.join(REPO, "hooks", "qemu")
UUID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
USER_DATA = f"#cloud-config\nfinal_message: {MARKER}\n".encode()
META_DATA = b"instance-id: seed-test\nlocal-hostname: seedvm\n"
URL = "http://169.254.169.254/"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def net():
    if os.geteuid() != 0:
        pytest.fail("the seed tests need root (network namespaces)")
    seednet = SeedNet().start()
    yield seednet
    seednet.stop()


@pytest.fixture(scope="module")
def conf(tmp_path_factory):
    base = tmp_path_factory.mktemp("seed")
    image_dir = base / "images"
    path = base / "payloadhook.conf"
    path.write_text(f"[payloadhook]\nimage_dir = {image_dir}\nkey_dir = {base / 'keys'}\n")
    return {"PAYLOADHOOK_CONF": str(path), "PAYLOADHOOK_INDEX": str(base / "index")}, str(image_dir)


@pytest.fixture(scope="module")
def service(net, conf):
    environ, image_dir = conf
    log = open(os.path.join(os.path.dirname(image_dir), "serve.log"), "w+")
    process = subprocess.Popen(net.in_host([sys.executable, "-m", "payloadhook", "serve"]), cwd=REPO,
                               env={**os.environ, **environ}, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        if service_running(image_dir) or process.poll() is not None:
            break
        time.sleep(0.1)
    assert service_running(image_dir), open(log.name).read()
    process.log_path = log.name    # type: ignore[attr-defined]
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def service_log(process) -> str:
    return open(process.log_path).read()


def domain_xml(guest, name="seedvm", with_tap=True, filterref="clean-traffic", files=None) -> bytes:
    target = f"<target dev='{guest.tap}'/>" if with_tap else ""
    filter_element = f"<filterref filter='{filterref}'/>" if filterref else ""
    root = xmlsafe.parse_xml(f"""<domain type='qemu'><name>{name}</name><uuid>{UUID}</uuid>
      <sysinfo type='smbios'><system><entry name='serial'>{SEED_SERIAL}</entry></system></sysinfo>
      <os><type arch='x86_64'>hvm</type><smbios mode='sysinfo'/></os>
      <devices><interface type='bridge'><mac address='{guest.mac}'/><source bridge='{BRIDGE}'/>{target}
      {filter_element}</interface></devices></domain>""")
    files = files if files is not None else (PayloadFile("user-data", USER_DATA), PayloadFile("meta-data", META_DATA),
                                             PayloadFile("dir/extra.bin", bytes(range(256)) * 64))
    metadata.set_payloads(root, [Payload("network", files)])
    return xmlsafe.serialize(root)


def hook(net, environ, name, operation, xml):
    sub = "end" if operation == "release" else "begin"
    env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **environ}
    return subprocess.run(net.in_host([sys.executable, "-I", HOOK, name, operation, sub, "-"]), input=xml,
                          capture_output=True, env=env, timeout=60)


def start(net, environ, guest, **kwargs):
    xml = domain_xml(guest, **kwargs)
    name = kwargs.get("name", "seedvm")
    for operation in ("prepare", "started"):
        result = hook(net, environ, name, operation, xml)
        assert result.returncode == 0 and result.stderr == b"", result.stderr
    return xml


def fetch(guest, name: str, tries: int = 1) -> tuple[str, ...]:
    """What the guest gets for URL+name: (status, sha256, size) or ('error', kind)."""
    for attempt in range(tries):
        said = tuple(guest.run(fetch_argv(URL + name)).stdout.split())
        if said and said[0] == "200" or attempt == tries - 1:
            return said
        time.sleep(0.5)    # the service puts the address on the bridge within a second
    return said


FORBIDDEN = ("403", sha(b"not served\n"), "11")


def test_the_domain_gets_its_files_and_empty_documents_for_missing_seed_names(net, conf, service):
    environ, image_dir = conf
    guest = net.guests[0]
    xml = start(net, environ, guest)
    try:
        assert fetch(guest, "user-data", tries=20) == ("200", sha(USER_DATA), str(len(USER_DATA)))
        assert fetch(guest, "meta-data") == ("200", sha(META_DATA), str(len(META_DATA)))
        assert fetch(guest, "dir/extra.bin") == ("200", sha(bytes(range(256)) * 64), "16384")
        assert fetch(guest, "vendor-data") == ("200", sha(b""), "0")
        assert fetch(guest, "network-config")[0] == "404"
        assert fetch(guest, "") [0] == "404"       # no listing
    finally:
        assert hook(net, environ, "seedvm", "release", xml).returncode == 0
    assert fetch(guest, "user-data") == FORBIDDEN or fetch(guest, "user-data")[0] == "error"
    log = service_log(service)
    assert re.search(r"domain seedvm from 10\.77\.0\.11: GET /user-data 200 %d bytes" % len(USER_DATA), log), log
    assert MARKER not in log


def test_another_guest_and_one_posing_as_the_domain_get_nothing(net, conf, service):
    environ, _ = conf
    first, second = net.guests
    xml = start(net, environ, first)
    try:
        assert fetch(first, "user-data", tries=20)[0] == "200"
        assert fetch(second, "user-data") == FORBIDDEN
        assert fetch(second, "no-such-name") == FORBIDDEN       # no answer tells names apart
        # the second guest takes the first's MAC and IP address (no filter on the namespaces:
        # the forwarding database still puts the MAC on the second's port)
        own_mac, own_address = second.mac, second.address
        second.set_mac_and_address(first.mac, first.address)
        try:
            assert fetch(second, "user-data") == FORBIDDEN
        finally:
            second.set_mac_and_address(own_mac, own_address)
    finally:
        hook(net, environ, "seedvm", "release", xml)


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_processes_on_the_host_get_nothing(net, conf, service, user):
    environ, _ = conf
    xml = start(net, environ, net.guests[0])
    try:
        assert fetch(net.guests[0], "user-data", tries=20)[0] == "200"
        argv = fetch_argv(URL + "user-data")
        if user != "root":
            argv = ["runuser", "-u", user, "--", *argv]
        said = subprocess.run(net.in_host(argv), capture_output=True, text=True, timeout=30).stdout.split()
        assert said[0] in ("error", "403"), said
        assert said[0] == "error" or tuple(said) == FORBIDDEN
        # bound to the bridge itself, as root: the host has no neighbour entry for its own address
        bound = subprocess.run(net.in_host([sys.executable, "-I", "-c", BOUND_FETCH, BRIDGE]), capture_output=True,
                               text=True, timeout=30).stdout.split()
        assert bound[0] in ("error", "403") and MARKER not in " ".join(bound), bound
    finally:
        hook(net, environ, "seedvm", "release", xml)


BOUND_FETCH = r"""
import socket, sys
s = socket.socket(); s.settimeout(10)
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
    s.connect(("169.254.169.254", 80)); s.sendall(b"GET /user-data HTTP/1.0\r\n\r\n")
    data = s.recv(4096); print(data.split(b" ")[1].decode() if data else "error", data.count(b"PAYLOADHOOK"))
except OSError as e:
    print("error", type(e).__name__)
"""


def test_an_interface_without_the_filter_is_not_served(net, conf, service):
    environ, _ = conf
    guest = net.guests[0]
    xml = start(net, environ, guest, filterref=None)
    try:
        time.sleep(1.5)
        assert fetch(guest, "user-data")[0] in ("error", "403")
    finally:
        hook(net, environ, "seedvm", "release", xml)


def test_the_address_comes_and_goes_with_served_domains(net, conf, service):
    environ, _ = conf

    def addresses():
        return subprocess.run(["ip", "-n", net.host, "-br", "addr", "show", BRIDGE], capture_output=True,
                              text=True).stdout

    xml = start(net, environ, net.guests[0])
    assert fetch(net.guests[0], "user-data", tries=20)[0] == "200"
    assert "169.254.169.254/32" in addresses()
    hook(net, environ, "seedvm", "release", xml)
    for _ in range(30):
        if "169.254.169.254" not in addresses():
            break
        time.sleep(0.2)
    assert "169.254.169.254" not in addresses()
