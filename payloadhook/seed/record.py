"""What the hook records for the seed service, and how the service reads it back.

Two JSON files per served domain in image_dir, written and removed by the store:

- ``NAME-network.seed`` at prepare::

      {"seed": 1, "domain": NAME, "uuid": UUID,
       "interfaces": [{"mac": MAC, "filter": FILTER}, ...],
       "files": [{"name": N, "content": BASE64} | {"name": N, "sealed": BASE64, "key": KEYID}, ...]}

- ``NAME-network.taps`` at started, from libvirt's live XML and the kernel's interface
  index of each tap (an index is not reused when a tap goes and another comes)::

      {"taps": 1, "uuid": UUID, "host": HOSTNAME, "boot": BOOT_ID, "netns": [DEV, INODE],
       "list": [{"mac": MAC, "dev": TAP, "ifindex": N, "filter": F}, ...]}

  An interface index means something on one host, in one boot, in one network namespace:
  the hook records which (this_host()), and the service ignores taps recorded on another
  (an image_dir shared between hosts holds their records side by side).

The service reads both as hostile input (root wrote them, but they hold a domain's names):
a file that does not parse into exactly this is ignored, and serves nothing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from ..errors import PayloadError
from ..filenames import SEED_SUFFIX as SEED_SUFFIX
from ..filenames import TAPS_SUFFIX as TAPS_SUFFIX
from ..model import NETWORK, Payload, PayloadFile, Sealed, check_key_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..domain.entries import Interface

#: A seed is one payload, within max_payload_size (64 MiB by default) and base64: bounded.
MAX_SEED = 256 << 20
MAX_TAPS = 1 << 16
_MAC_CHARS = frozenset("0123456789abcdef:")


def seed_path(image_dir: str, domain: str) -> str:
    return f"{image_dir}/{domain}{SEED_SUFFIX}"


def taps_path(image_dir: str, domain: str) -> str:
    return f"{image_dir}/{domain}{TAPS_SUFFIX}"


def is_mac(value: object) -> bool:
    return (isinstance(value, str) and len(value) == 17 and set(value) <= _MAC_CHARS
            and all(len(p) == 2 for p in value.split(":")))


@dataclass(frozen=True)
class Tap:
    mac: str
    dev: str
    ifindex: int
    filter: str | None


@dataclass(frozen=True)
class Seed:
    """A served domain: its identity, interfaces (MAC, filter) and files."""

    domain: str
    uuid: str
    interfaces: tuple[tuple[str, str | None], ...]
    payload: Payload = field(repr=False)


def seed_document(domain: str, uuid: str, interfaces: tuple[Interface, ...], payload: Payload) -> bytes:
    files = []
    for item in payload.files:
        if item.sealed is not None:
            files.append({"name": item.name, "sealed": base64.b64encode(item.sealed.blob).decode(),
                          "key": item.sealed.key_id})
        else:
            files.append({"name": item.name, "content": base64.b64encode(item.content).decode()})
    return json.dumps({"seed": 1, "domain": domain, "uuid": uuid,
                       "interfaces": [{"mac": i.mac, "filter": i.filter} for i in interfaces if i.mac],
                       "files": files}).encode()


_HOST: list[tuple[str, str, list[int]]] = []


def this_host() -> tuple[str, str, list[int]]:
    """Where an interface index is valid: this host's name (as the store's records name it),
    its boot's id and the network namespace of this process (device and inode)."""
    if not _HOST:
        import os
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
                boot = f.read(64).strip()
        except (OSError, ValueError):
            boot = ""
        try:
            st = os.stat("/proc/self/ns/net")
            netns = [st.st_dev, st.st_ino]
        except OSError:
            netns = []
        _HOST.append((os.uname().nodename, boot, netns))
    return _HOST[0]


def taps_document(uuid: str, taps: list[Tap]) -> bytes:
    host, boot, netns = this_host()
    return json.dumps({"taps": 1, "uuid": uuid, "host": host, "boot": boot, "netns": netns, "list": [
        {"mac": t.mac, "dev": t.dev, "ifindex": t.ifindex, "filter": t.filter} for t in taps]}).encode()


def read_seed(data: bytes) -> Seed | None:
    """A seed file's content, or None when it is not one."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("seed") != 1:
            return None
        domain, uuid = document["domain"], document["uuid"]
        if not isinstance(domain, str) or not isinstance(uuid, str):
            return None
        interfaces = tuple((i["mac"], i["filter"]) for i in document["interfaces"]
                           if is_mac(i["mac"]) and (i["filter"] is None or isinstance(i["filter"], str)))
        files = []
        for item in document["files"]:
            name = item["name"]
            if "sealed" in item:
                files.append(PayloadFile(name, b"", Sealed(check_key_id(item["key"]),
                                                           base64.b64decode(item["sealed"], validate=True))))
            else:
                files.append(PayloadFile(name, base64.b64decode(item["content"], validate=True)))
        return Seed(domain=domain, uuid=uuid, interfaces=interfaces, payload=Payload(NETWORK, tuple(files)))
    except (ValueError, KeyError, TypeError, PayloadError):
        return None


def read_taps(data: bytes, uuid: str) -> tuple[Tap, ...]:
    """A taps file's taps, for the domain ``uuid``, recorded on this host, in this boot and
    network namespace; none when it is not one (or is another host's)."""
    host, boot, netns = this_host()
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("taps") != 1 or document.get("uuid") != uuid:
            return ()
        if not boot or not netns or (document.get("host"), document.get("boot"), document.get("netns")) != (
                host, boot, netns):
            return ()
        taps = []
        for item in document["list"]:
            if not (is_mac(item["mac"]) and isinstance(item["dev"], str) and type(item["ifindex"]) is int
                    and (item["filter"] is None or isinstance(item["filter"], str))):
                return ()
            taps.append(Tap(item["mac"], item["dev"], item["ifindex"], item["filter"]))
        return tuple(taps)
    except (ValueError, KeyError, TypeError):
        return ()
