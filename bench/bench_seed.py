"""The seed service (payloadhook serve) against a minimal aiohttp server of one static file.

In network namespaces of their own (tests/harness/seednet.py): the service on a bridge with
one served "domain" (a namespace joined by a veth, recorded as the domain's tap by the
hook's prepare and started), and beside it, on the same bridge, a plain aiohttp
application serving the same 4 KiB file from disk (``web.static``). From the guest's
namespace, for each server:

1. the latency of one fetch (a new connection each time, as cloud-init fetches): median;
2. requests per second with 8 clients at once (the service's cap per client), a new
   connection per request.

What the seed service adds per request: the identity lookups (neighbour table, forwarding
database, interface's master: three netlink requests), listing the records and reading
the seed's file. Prints figures and ratios; asserts no threshold.

Usage: python3 bench/bench_seed.py [--requests N]   (as root)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

PLAIN_SERVER = r"""
import sys
from aiohttp import web
app = web.Application()
app.router.add_static("/", sys.argv[1])
web.run_app(app, host=sys.argv[2], port=8080, access_log=None, print=None)
"""


async def _fetch(host: str, port: int, path: str) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{host}:{port}/{path}: {data[:40]!r}")
    return time.perf_counter() - started


async def _client(host: str, port: int, path: str, requests: int, parallel: int) -> dict:
    latencies = [await _fetch(host, port, path) for _ in range(requests)]
    queue = list(range(requests * 4))

    async def worker() -> None:
        while queue:
            queue.pop()
            await _fetch(host, port, path)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    return {"latency_ms": statistics.median(latencies) * 1000, "rps": requests * 4 / (time.perf_counter() - started)}


def client_main(argv: list[str]) -> None:
    host, port, path, requests, parallel = argv[0], int(argv[1]), argv[2], int(argv[3]), int(argv[4])
    print(json.dumps(asyncio.run(_client(host, port, path, requests, parallel))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    from payloadhook import xmlsafe
    from payloadhook.domain import metadata
    from payloadhook.model import Payload, PayloadFile
    from payloadhook.seed import service_failing, service_running
    from tests.harness.seednet import BRIDGE, HOST_ADDRESS, SeedNet
    content = os.urandom(4096)
    net = SeedNet(prefix="phb", guests=1).start()
    guest = net.guests[0]
    processes = []
    with tempfile.TemporaryDirectory() as work:
        try:
            conf = os.path.join(work, "payloadhook.conf")
            with open(conf, "w") as stream:
                stream.write(f"[payloadhook]\nimage_dir = {work}/images\n")
            env = {**os.environ, "PAYLOADHOOK_CONF": conf, "PAYLOADHOOK_INDEX": os.path.join(work, "index")}
            processes.append(subprocess.Popen(net.in_host([sys.executable, "-m", "payloadhook", "serve"]), env=env,
                                              stderr=subprocess.DEVNULL))
            os.makedirs(os.path.join(work, "static"))
            with open(os.path.join(work, "static", "user-data"), "wb") as stream:
                stream.write(content)
            processes.append(subprocess.Popen(net.in_host([sys.executable, "-c", PLAIN_SERVER,
                                                           os.path.join(work, "static"), HOST_ADDRESS])))
            images = f"{work}/images"
            for _ in range(300):    # running, and past its start (its failing marker gone)
                if service_running(images) and not service_failing(images) or processes[0].poll() is not None:
                    break
                time.sleep(0.1)
            if not service_running(images) or service_failing(images):
                raise SystemExit("bench_seed: the seed service did not come up serving")
            root = xmlsafe.parse_xml(f"""<domain type='qemu'><name>bench</name>
              <uuid>5e1f0c2a-9b8d-4e7f-a6c5-b4d3e2f1a0b9</uuid><os><type>hvm</type></os><devices>
              <interface type='bridge'><mac address='{guest.mac}'/><source bridge='{BRIDGE}'/>
              <target dev='{guest.tap}'/><filterref filter='clean-traffic'/></interface></devices></domain>""")
            metadata.set_payloads(root, [Payload("network", (PayloadFile("user-data", content),
                                                             PayloadFile("meta-data", b"instance-id: bench\n")))])
            xml = xmlsafe.serialize(root)
            hook = os.path.join(REPO, "hooks", "qemu")
            for operation in ("prepare", "started"):
                subprocess.run(net.in_host([sys.executable, "-I", hook, "bench", operation, "begin", "-"]), input=xml,
                               check=True, env={"LC_ALL": "C", "PATH": os.environ["PATH"], **env})
            time.sleep(2)    # the service's reconciliation puts the address on the bridge
            figures = {}
            for label, host, port in (("seed service", "169.254.169.254", 80), ("plain aiohttp", HOST_ADDRESS, 8080)):
                said = guest.run([sys.executable, __file__, "--client", host, str(port), "user-data",
                                  str(args.requests), "8"], timeout=600)
                if said.returncode != 0:
                    raise SystemExit(f"{label}: {said.stderr.strip()}")
                figures[label] = json.loads(said.stdout)
            seed, plain = figures["seed service"], figures["plain aiohttp"]
            print("== seed service against a plain aiohttp static server (4 KiB file, one connection a request) ==")
            print(f"one fetch, median       seed {seed['latency_ms']:.2f} ms   plain {plain['latency_ms']:.2f} ms   "
                  f"ratio {seed['latency_ms'] / plain['latency_ms']:.2f}")
            print(f"requests/s, 8 clients   seed {seed['rps']:.0f}   plain {plain['rps']:.0f}   "
                  f"ratio {plain['rps'] / seed['rps']:.2f} (plain/seed)")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            net.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client_main(sys.argv[2:])
    else:
        main()
