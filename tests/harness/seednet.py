"""Network namespaces for the seed service's tests, so that no packet touches the host's own
network: a "host" namespace with a bridge (where the hook and the service run), and
"guest" namespaces each joined to the bridge by a veth pair, standing in for a domain's tap.

The hook's started step records the host end of a guest's veth as that domain's tap, with
the guest end's MAC and clean-traffic as libvirt's live XML would name them: that is the
test configuration under which the service treats a namespace as the domain's interface.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

BRIDGE = "phbr0"
HOST_ADDRESS = "10.77.0.1"


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30).stdout


@dataclass
class Guest:
    netns: str
    tap: str          # the host end, on the bridge
    address: str
    mac: str = ""

    def run(self, argv: list[str], timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True,
                              timeout=timeout, **kwargs)

    def set_mac_and_address(self, mac: str, address: str) -> None:
        ip("-n", self.netns, "link", "set", "eth0", "down")
        ip("-n", self.netns, "link", "set", "eth0", "address", mac)
        ip("-n", self.netns, "addr", "flush", "dev", "eth0")
        ip("-n", self.netns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", self.netns, "link", "set", "eth0", "up")
        ip("-n", self.netns, "route", "add", "default", "via", HOST_ADDRESS)


class SeedNet:
    """The namespaces: ``host`` (bridge, hook, service) and the guests."""

    def __init__(self, prefix: str = "phs", guests: int = 2) -> None:
        self.prefix = f"{prefix}{os.getpid()}"
        self.host = f"{self.prefix}-host"
        self.guests = [Guest(f"{self.prefix}-g{i}", f"{self.prefix[:8]}v{i}", f"10.77.0.{10 + i}")
                       for i in range(1, guests + 1)]

    def start(self) -> SeedNet:
        for netns in [self.host] + [g.netns for g in self.guests]:
            ip("netns", "add", netns)
            ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", self.host, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", self.host, "link", "set", BRIDGE, "up")
        ip("-n", self.host, "addr", "add", f"{HOST_ADDRESS}/24", "dev", BRIDGE)
        for guest in self.guests:
            ip("-n", self.host, "link", "add", guest.tap, "type", "veth", "peer", "name", "eth0", "netns", guest.netns)
            ip("-n", self.host, "link", "set", guest.tap, "master", BRIDGE, "up")
            ip("-n", guest.netns, "addr", "add", f"{guest.address}/24", "dev", "eth0")
            ip("-n", guest.netns, "link", "set", "eth0", "up")
            ip("-n", guest.netns, "route", "add", "default", "via", HOST_ADDRESS)
            guest.mac = ip("-n", guest.netns, "-br", "link", "show", "eth0").split()[2]
        return self

    def stop(self) -> None:
        for netns in [self.host] + [g.netns for g in self.guests]:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)

    def in_host(self, argv: list[str], **kwargs) -> list[str]:
        return ["ip", "netns", "exec", self.host, *argv]


#: A client: fetch a URL and print status and the body's SHA-256, or the error's kind.
FETCH = r"""
import hashlib, sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        body = r.read(); print(r.status, hashlib.sha256(body).hexdigest(), len(body))
except urllib.error.HTTPError as e:
    body = e.read(); print(e.code, hashlib.sha256(body).hexdigest(), len(body))
except OSError as e:
    print("error", type(e).__name__)
"""


#: The client's interpreter: Debian's, which any user may run (the clone's venv may sit under
#: /root, closed to the unprivileged user a test fetches as); the client needs the standard
#: library only.
CLIENT_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def fetch_argv(url: str) -> list[str]:
    return [CLIENT_PYTHON, "-I", "-c", FETCH, url]
