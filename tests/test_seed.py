"""The seed service (payloadhook serve) in network namespaces of its own: a domain's network
payload served from 169.254.169.254 to that domain's interface only.

The guests here are namespaces on a bridge (seednet.py); the hook's prepare and started run
as libvirt runs them, in the host namespace, with a domain XML whose interface's tap is the
guest's veth. test_seed_guest.py does the same with a TCG guest under libvirt and nwfilter.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess
import sys
import time

import pytest

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.domain.deviceless import SEED_SERIAL
from payloadhook.model import Payload, PayloadFile
from payloadhook.seed import service_failing, service_running
from tests.conftest import MARKER, REPO
from tests.harness.seednet import BRIDGE, CLIENT_PYTHON, SeedNet, fetch_argv

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
        if service_running(image_dir) and not service_failing(image_dir) or process.poll() is not None:
            break
        time.sleep(0.1)
    assert service_running(image_dir) and not service_failing(image_dir), open(log.name).read()
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


def refused(said: tuple[str, ...]) -> bool:
    """Nothing served: the service's 403, or, from a port that is not a served tap's, no
    connection at all (the bridge rules drop its frames)."""
    return said == FORBIDDEN or said[:1] == ("error",)


def test_the_services_lock_is_roots_alone(conf, service):
    """Anyone who could open the lock could flock it and keep the service from starting."""
    from payloadhook.seed import LOCK_NAME
    _, image_dir = conf
    st = os.stat(f"{image_dir}/{LOCK_NAME}")
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600


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
    assert re.search(rf"domain seedvm from 10\.77\.0\.11: GET /user-data 200 {len(USER_DATA)} bytes", log), log
    assert MARKER not in log


def test_another_guest_and_one_posing_as_the_domain_get_nothing(net, conf, service):
    environ, _ = conf
    first, second = net.guests
    xml = start(net, environ, first)
    try:
        assert fetch(first, "user-data", tries=20)[0] == "200"
        assert fetch(second, "user-data") == fetch(second, "no-such-name")     # no answer tells names apart
        assert refused(fetch(second, "user-data"))
        # the second guest takes the first's MAC and IP address (no filter on the namespaces:
        # the forwarding database still puts the MAC on the second's port)
        own_mac, own_address = second.mac, second.address
        second.set_mac_and_address(first.mac, first.address)
        try:
            assert refused(fetch(second, "user-data"))
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


# -- load and bad input ----------------------------------------------------------------------

def client(guest, *args, timeout=120):
    import json
    result = guest.run([sys.executable, "-m", "tests.harness.seedclient", *args], timeout=timeout, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def served(net, conf, service):
    environ, _ = conf
    xml = start(net, environ, net.guests[0])
    assert fetch(net.guests[0], "user-data", tries=20)[0] == "200"
    yield net.guests[0]
    hook(net, environ, "seedvm", "release", xml)


def test_two_hundred_clients_at_once_and_the_domain_is_still_answered(net, served, service):
    flood = subprocess.Popen(["ip", "netns", "exec", net.guests[1].netns, sys.executable, "-m",
                              "tests.harness.seedclient", "concurrent", "200", "user-data"], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    said = client(served, "concurrent", "200", "user-data")
    out, _ = flood.communicate(timeout=120)
    import json
    other = json.loads(out)
    assert "200" not in other and set(other) <= {"403", "ConnectionResetError", "closed", "IncompleteReadError",
                                                 "TimeoutError"}
    # the domain's own 200 connections: at most PER_CLIENT at a time are accepted, every answer its own
    assert said.get("200", 0) >= 8 and set(said) <= {"200", "ConnectionResetError", "closed", "ConnectionRefusedError",
                                                     "IncompleteReadError"}, said
    assert fetch(served, "user-data")[:2] == ("200", sha(USER_DATA))
    assert service.poll() is None


def test_slow_clients_are_cut_off_and_capped_per_client(net, served, service):
    from payloadhook.seed.service import CONNECTION_SECONDS
    said = client(served, "slow", "30", str(int(CONNECTION_SECONDS) + 4))
    assert said["answered_200"] == 0
    assert said["closed"] == 30       # those over the cap at once, the rest after CONNECTION_SECONDS
    assert fetch(served, "user-data")[:2] == ("200", sha(USER_DATA))
    assert service.poll() is None


@pytest.mark.parametrize("request_line,allowed", [
    (b"GET /../user-data HTTP/1.1", {"404", "400"}),
    (b"GET /%2e%2e/user-data HTTP/1.1", {"404"}),
    (b"GET /%2E%2E/%2E%2E/etc/passwd HTTP/1.1", {"404"}),
    (b"GET /user-data%00 HTTP/1.1", {"404"}),
    (b"GET /user-data\x00 HTTP/1.1", {"400", "closed"}),
    (b"GET //user-data HTTP/1.1", {"404"}),
    (b"GET /dir/../user-data HTTP/1.1", {"404", "400"}),
    (b"GET /user-data/ HTTP/1.1", {"404"}),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1", {"400", "closed"}),
    (b"GET /" + b"a/" * 300 + b"a HTTP/1.1", {"404"}),
    (b"POST /user-data HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", {"405"}),
    (b"PUT /user-data HTTP/1.1", {"405"}),
    (b"GET /user-data HTTP/1.1\r\nX-Big: " + b"b" * 5000, {"400", "closed"}),
    (b"GET /user-data HTTP/1.1" + b"\r\nX-H: v" * 100, {"400", "closed"}),
    (b"GET /user-data HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", {"400"}),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", {"400", "closed"}),
])
def test_bad_requests_get_an_error_and_nothing_else(net, served, service, request_line, allowed):
    request = request_line if b"\r\n\r\n" in request_line else request_line + b"\r\nHost: 169.254.169.254\r\n\r\n"
    said = client(served, "raw", request.hex())
    assert said["status"] in allowed, said
    assert MARKER.encode().hex() not in said.get("body", "")
    assert fetch(served, "user-data")[:2] == ("200", sha(USER_DATA))
    log = service_log(service)
    assert "Traceback" not in log and MARKER not in log


def test_head_answers_the_size_without_the_content(net, served):
    said = client(served, "raw", b"HEAD /user-data HTTP/1.1\r\nHost: x\r\n\r\n".hex())
    assert said == {"status": "200", "body": ""}


# -- cloud-init's own code ----------------------------------------------------------------------

CLOUD_INIT_READER = r"""
import json, sys
from cloudinit import util
from cloudinit.sources.DataSourceNoCloud import load_cmdline_data
fill = {}
accepted = load_cmdline_data(fill, sys.argv[1])
md, ud, vd = util.read_seeded(base=fill["seedfrom"], timeout=5, retries=1)
print(json.dumps({"accepted": accepted, "dsmode": fill.get("dsmode"), "seedfrom": fill.get("seedfrom"),
                  "meta-data": md, "user-data": ud.decode(), "vendor-data": vd.decode() if vd is not None else None}))
"""


def test_cloud_inits_nocloud_reads_the_serial_attach_writes_and_the_seed_from_the_service(net, conf, service):
    import json

    from lxml import etree

    from payloadhook.domain.plan import apply_attach, plan_attach
    from payloadhook.domain.view import view_of
    environ, image_dir = conf
    guest = net.guests[0]
    root = xmlsafe.parse_xml(f"""<domain type='qemu'><name>seedvm</name><uuid>{UUID}</uuid>
      <os><type arch='x86_64'>hvm</type></os><devices><interface type='bridge'><mac address='{guest.mac}'/>
      <source bridge='{BRIDGE}'/></interface></devices></domain>""")
    view = view_of(root)
    apply_attach(view, plan_attach(view, Payload("network", (PayloadFile("user-data", USER_DATA),
                                                             PayloadFile("meta-data", META_DATA))), image_dir))
    serial = root.find("sysinfo/system/entry[@name='serial']").text
    root.find("devices/interface").append(etree.fromstring(f"<target dev='{guest.tap}'/>"))
    xml = xmlsafe.serialize(root)
    for operation in ("prepare", "started"):
        assert hook(net, environ, "seedvm", operation, xml).returncode == 0
    try:
        fetch(guest, "meta-data", tries=20)
        result = guest.run(["/usr/bin/python3", "-c", CLOUD_INIT_READER, serial])
        assert result.returncode == 0, result.stderr
        said = json.loads(result.stdout)
        assert said == {"accepted": True, "dsmode": "net", "seedfrom": URL,
                        "meta-data": {"instance-id": "seed-test", "local-hostname": "seedvm"},
                        "user-data": USER_DATA.decode(), "vendor-data": ""}
    finally:
        hook(net, environ, "seedvm", "release", xml)


def test_sealed_files_are_opened_per_request_and_a_transplanted_one_not_at_all(net, conf, service):
    """A sealed seed stays sealed in the record the hook writes; the service opens it for
    each request, in memory, with the host key; a blob sealed for another domain opens to
    nothing (and the domain's other files are still served)."""
    from payloadhook.config import load_config
    from payloadhook.seal.keys import KeyStore
    from payloadhook.seal.sealing import seal_payload
    environ, image_dir = conf
    keys = KeyStore(load_config(environ=environ).key_dir)
    key_id = keys.current() or keys.new()
    sealed = seal_payload(Payload("network", (PayloadFile("user-data", USER_DATA),)), UUID, keys, key_id)
    foreign = seal_payload(Payload("network", (PayloadFile("vendor-data", b"#cloud-config\n"),)),
                           "00000000-0000-4000-8000-000000000000", keys, key_id)
    files = (sealed.files[0], foreign.files[0], PayloadFile("meta-data", META_DATA))
    xml = start(net, environ, net.guests[0], files=files)
    try:
        seed_file = open(f"{image_dir}/seedvm-network.seed", "rb").read()
        assert USER_DATA not in seed_file and MARKER.encode() not in seed_file
        assert fetch(net.guests[0], "user-data", tries=20) == ("200", sha(USER_DATA), str(len(USER_DATA)))
        assert fetch(net.guests[0], "vendor-data")[0] == "500"
        assert fetch(net.guests[0], "meta-data")[:2] == ("200", sha(META_DATA))
        log = service_log(service)
        assert MARKER not in log and "Traceback" not in log
    finally:
        hook(net, environ, "seedvm", "release", xml)


# -- a neighbour that races the forwarding database ---------------------------------------------

CHATTER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    s.sendto(b"x", ("10.77.0.1", 9)); time.sleep(0.0002)
"""

ASK = r"""
import collections, socket, sys
said = collections.Counter()
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.settimeout(0.25)
    try:
        s.connect(("169.254.169.254", 80)); s.sendall(b"GET /user-data HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        said[data[9:12].decode() if data.startswith(b"HTTP") else "empty"] += 1
    except OSError as e:
        said[type(e).__name__] += 1
    finally:
        s.close()
print(dict(said))
"""


def bridge_table(net) -> str:
    return subprocess.run(net.in_host(["nft", "list", "table", "bridge", "payloadhook_seed"]), capture_output=True,
                          text=True, timeout=30).stdout


def test_a_neighbour_with_the_domains_mac_and_address_racing_the_fdb_gets_nothing(net, conf, service):
    """The forwarding database names where a MAC was last seen, not the port a frame came in
    on: a neighbour flooding with the domain's MAC and IP, while the domain talks too, moves
    it to its own port between two frames. The bridge rules (gate.py) tie the seed's traffic
    to the domain's own tap."""
    environ, _ = conf
    first, second = net.guests
    xml = start(net, environ, first)
    own_mac, own_address = second.mac, second.address
    chatter = []
    try:
        assert fetch(first, "user-data", tries=20)[0] == "200"
        table = bridge_table(net)
        assert f'iifname "{first.tap}" ether saddr {first.mac}' in table, table
        assert f'oifname "{first.tap}" ether daddr {first.mac}' in table, table
        second.set_mac_and_address(first.mac, first.address)
        chatter = [subprocess.Popen(["ip", "netns", "exec", g.netns, sys.executable, "-I", "-c", CHATTER, "200"])
                   for g in (first, second)]
        result = second.run([sys.executable, "-I", "-c", ASK, "400"], timeout=300)
        said = ast.literal_eval(result.stdout.strip())
        assert "200" not in said, said
    finally:
        for process in chatter:
            process.kill()
            process.wait()
        second.set_mac_and_address(own_mac, own_address)
        hook(net, environ, "seedvm", "release", xml)
    assert fetch(first, "user-data") != ("200", sha(USER_DATA), str(len(USER_DATA)))
    for _ in range(30):
        if first.tap not in bridge_table(net):
            break
        time.sleep(0.2)
    assert first.tap not in bridge_table(net)


def test_taps_recorded_by_another_host_sharing_image_dir_serve_nothing(net, conf, service):
    """An interface index means something on one host, boot and network namespace: another
    host's hook (here: another hostname and namespace, a tap of the same name and index as
    a local guest's) records its domain's taps in the shared image_dir, and a local guest
    with that domain's MAC gets nothing."""
    environ, _ = conf
    attacker = net.guests[0]
    other = f"{net.prefix}-h2"
    index = int(subprocess.run(["ip", "-n", net.host, "-o", "link", "show", attacker.tap], capture_output=True,
                               text=True, check=True).stdout.split(":")[0])
    subprocess.run(["ip", "netns", "add", other], check=True)
    mac = "52:54:00:12:34:56"
    own_mac = attacker.mac
    try:
        subprocess.run(["ip", "-n", other, "link", "add", attacker.tap, "index", str(index), "type", "veth", "peer",
                        "name", "zz"], check=True)
        root = xmlsafe.parse_xml(f"""<domain type='qemu'><name>victim</name><uuid>{UUID}</uuid>
          <os><type arch='x86_64'>hvm</type></os><devices><interface type='bridge'><mac address='{mac}'/>
          <source bridge='br0'/><target dev='{attacker.tap}'/><filterref filter='clean-traffic'/></interface>
          </devices></domain>""")
        metadata.set_payloads(root, [Payload("network", (PayloadFile("user-data", USER_DATA),))])
        xml = xmlsafe.serialize(root)
        env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **environ}
        for operation in ("prepare", "started"):
            result = subprocess.run(["unshare", "-u", "sh", "-c", 'hostname other-host && exec ip netns exec "$0" "$@"',
                                     other, sys.executable, "-I", HOOK, "victim", operation, "begin", "-"],
                                    input=xml, capture_output=True, env=env, timeout=60)
            assert result.returncode == 0, result.stderr
        attacker.set_mac_and_address(mac, attacker.address)
        time.sleep(1.5)
        for _ in range(5):
            assert refused(fetch(attacker, "user-data"))
    finally:
        attacker.set_mac_and_address(own_mac, attacker.address)
        subprocess.run(["ip", "netns", "del", other])
        subprocess.run(["unshare", "-u", "sh", "-c", 'hostname other-host && exec "$@"', "-", sys.executable, "-I",
                        HOOK, "victim", "release", "end", "-"], input=xml, capture_output=True, env=env, timeout=60)


# -- another socket on the seed's port ------------------------------------------------------------

SQUAT = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_IP, 15, 1)
if sys.argv[1]:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
s.bind(("169.254.169.254", 80)); s.listen(16); print("bound", flush=True)
while True:
    c, _ = s.accept(); c.recv(4096)
    body = b"#cloud-config\nruncmd: [echo squatted]\n"
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body); c.close()
"""


def kill_group(process) -> None:
    """runuser forks the user's process: end the session it leads."""
    import signal
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_a_local_user_on_the_seeds_port_keeps_domains_from_starting_and_gets_nothing(tmp_path):
    """Where ip_unprivileged_port_start <= 80, a local user can bind 169.254.169.254:80 first
    (IP_FREEBIND; or bound to a bridge): the service then serves no bridge, says so through
    its marker, and the hook refuses prepare; a bridge whose listener failed keeps no
    address, so a guest's request reaches no squatter's socket."""
    from payloadhook.seed import FAILING_NAME
    net = SeedNet(prefix="phq", guests=1).start()
    guest = net.guests[0]
    image_dir = str(tmp_path / "images")
    conf_path = tmp_path / "payloadhook.conf"
    conf_path.write_text(f"[payloadhook]\nimage_dir = {image_dir}\nkey_dir = {tmp_path / 'keys'}\n")
    environ = {"PAYLOADHOOK_CONF": str(conf_path), "PAYLOADHOOK_INDEX": str(tmp_path / "index")}
    os.chmod(tmp_path, 0o711)
    squatters, process = [], None

    def squat(device=""):
        squatter = subprocess.Popen(net.in_host(["runuser", "-u", "nobody", "--", CLIENT_PYTHON, "-I", "-c", SQUAT,
                                                 device]), stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)
        assert squatter.stdout.readline().strip() == "bound"
        squatters.append(squatter)

    def wait_for(condition):
        for _ in range(50):
            if condition():
                return True
            time.sleep(0.1)
        return False

    try:
        subprocess.run(net.in_host(["sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=80"]), check=True)
        squat()
        process = subprocess.Popen(net.in_host([sys.executable, "-m", "payloadhook", "serve"]), cwd=REPO,
                                   env={**os.environ, **environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: service_running(image_dir))
        assert wait_for(lambda: os.path.exists(f"{image_dir}/{FAILING_NAME}"))
        xml = domain_xml(guest)
        result = hook(net, environ, "seedvm", "prepare", xml)
        assert result.returncode == 1
        assert result.stderr.decode().startswith("payloadhook: domain seedvm: the network seed service cannot serve")
        assert result.stderr.count(b"\n") == 1
        hook(net, environ, "seedvm", "release", xml)
        kill_group(squatters.pop())
        assert wait_for(lambda: not service_failing(image_dir))
        # the domain passes prepare; a squatter bound to the bridge before started takes the port
        assert hook(net, environ, "seedvm", "prepare", xml).returncode == 0
        squat(BRIDGE)
        assert hook(net, environ, "seedvm", "started", xml).returncode == 0
        assert wait_for(lambda: service_failing(image_dir))
        time.sleep(1.5)
        addresses = subprocess.run(["ip", "-n", net.host, "-br", "addr", "show", BRIDGE], capture_output=True,
                                   text=True).stdout
        assert "169.254.169.254" not in addresses
        said = fetch(guest, "user-data")
        assert said[0] == "error", said
        hook(net, environ, "seedvm", "release", xml)
    finally:
        for squatter in squatters:
            kill_group(squatter)
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        net.stop()


def test_the_filter_that_counts_is_the_one_on_the_interface_the_request_came_through(net, conf, service):
    """The seed of prepare names each interface's filter: the one the request came through
    must have clean-traffic there, not merely some other interface of the domain."""
    environ, _ = conf
    guest, second = net.guests
    other = (f"<interface type='bridge'><mac address='{second.mac}'/><source bridge='{BRIDGE}'/>"
             f"<target dev='{second.tap}'/><filterref filter='clean-traffic'/></interface></devices>").encode()
    # prepare: the guest's interface without the filter, a second interface (a tap too) with it
    prepared = domain_xml(guest, filterref=None).replace(b"</devices>", other)
    assert hook(net, environ, "seedvm", "prepare", prepared).returncode == 0
    try:
        # started: libvirt's live XML names the filter on the guest's interface
        live = domain_xml(guest).replace(b"</devices>", other)
        assert hook(net, environ, "seedvm", "started", live).returncode == 0
        time.sleep(1.5)
        for _ in range(3):
            assert refused(fetch(guest, "user-data"))
    finally:
        hook(net, environ, "seedvm", "release", prepared)
