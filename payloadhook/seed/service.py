"""``payloadhook serve``: the seed service (aiohttp's low-level server, no router, no files).

Each request, GET or HEAD only, is answered after identity.identify() has named the domain
it comes from, with the file of that domain's network payload the path names (sealed files
opened in memory for that request), an empty document for a missing ``meta-data``,
``user-data`` or ``vendor-data`` (cloud-init retries a missing one for ten seconds), and 404
for any other name. Everything else gets 403 with the same short body, whatever the
reason: no answer tells a domain, a name or a file apart for someone who is not that domain.

Bounds: request line and each header field at most 1 KiB, at most 32 headers, no body, one
request per connection, a connection's whole life at most ``CONNECTION_SECONDS``, at most
``PER_CLIENT`` connections from one address and ``CONNECTIONS`` in all. One line per request
on standard error (the journal under systemd): the domain, method, name, status and size,
never content.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import stat
import sys
from collections import Counter
from functools import partial
from urllib.parse import unquote_to_bytes

from ..domain.entries import SPOOF_FILTERS
from ..errors import PayloadhookError, SeedError, shown
from ..model import NETWORK, Payload, check_name
from . import FAILING_NAME, LOCK_NAME, SEED_ADDRESS
from .gate import Gate, is_ifname
from .identity import Kernel, identify
from .records import Records

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PER_CLIENT = 8
CONNECTIONS = 1024
CONNECTION_SECONDS = 10.0
MAX_LINE = 1024
MAX_HEADERS = 32
RECONCILE_SECONDS = 1.0
#: cloud-init's NoCloud reads these three; a missing one is an empty document, not a 404.
EMPTY_WHEN_MISSING = ("meta-data", "user-data", "vendor-data")
FORBIDDEN_BODY = b"not served\n"


def quiet_logger(stderr):  # type: ignore[no-untyped-def]
    """A logger for aiohttp's own errors (a request it could not parse): one line naming the
    kind of error, never its traceback or message, which may quote the request."""
    import logging

    class OneLine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else "error"
            stderr.write(f"payloadhook serve: request refused before it was read ({kind})\n")
            stderr.flush()

    logger = logging.getLogger("payloadhook.seed.http")
    logger.handlers[:] = [OneLine()]
    logger.propagate = False
    return logger


class Guard(asyncio.Protocol):
    """One connection, held to the bounds before aiohttp's protocol sees a byte."""

    def __init__(self, service: Service, bridge: int) -> None:
        self.service = service
        self.bridge = bridge
        self.handler: asyncio.Protocol | None = None
        self.peer: str | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "?"
        clients = self.service.clients
        if clients[self.peer] >= PER_CLIENT or sum(clients.values()) >= CONNECTIONS:
            self.peer = None
            transport.abort()
            return
        clients[self.peer] += 1
        self.timer = asyncio.get_running_loop().call_later(CONNECTION_SECONDS, transport.abort)
        self.service.bridge_of[transport] = self.bridge
        self.handler = self.service.server()
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:
            self.handler.data_received(data)

    def eof_received(self):  # type: ignore[no-untyped-def]
        return self.handler.eof_received() if self.handler is not None else None

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.peer is not None:
            self.service.clients[self.peer] -= 1
            if self.service.clients[self.peer] <= 0:
                del self.service.clients[self.peer]
        if self.handler is not None:
            self.service.bridge_of.pop(getattr(self.handler, "transport", None), None)
            self.handler.connection_lost(exc)


class Service:
    def __init__(self, image_dir: str, key_dir: str, port: int = 80, stderr=None) -> None:  # type: ignore[no-untyped-def]
        self.image_dir = image_dir
        self.key_dir = key_dir
        self.port = port
        self.stderr = stderr or sys.stderr
        self.records = Records(image_dir)
        self.kernel = Kernel()
        self.clients: Counter[str] = Counter()
        self.bridge_of: dict[object, int] = {}
        self.listeners: dict[int, tuple[str, asyncio.AbstractServer]] = {}
        self.added: set[int] = set()
        self.gate = Gate(port)
        self.failed_bridges: set[int] = set()
        self.failing: bool | None = None
        self.gate_failed = False
        self.server: Any = None     # aiohttp's web.Server, the protocol factory, made in run()

    # -- requests ----------------------------------------------------------------------------

    def say(self, domain: str | None, method: str, name: str, status: int, size: int, peer: str) -> None:
        self.stderr.write(f"payloadhook serve: domain {shown(domain) if domain else '-'} from {peer}: "
                          f"{shown(method, 10)} {shown(name, 120)} {status} {size} bytes\n")
        self.stderr.flush()

    async def handle(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web
        peer = (request.transport.get_extra_info("peername") or ("?",))[0] if request.transport else "?"
        raw = request.raw_path
        domain, status, body = None, 403, FORBIDDEN_BODY
        try:
            if request.method not in ("GET", "HEAD") or request.body_exists:
                status = 405 if request.method not in ("GET", "HEAD") else 400
                body = b""
                return self._reply(web, status, body)
            bridge = self.bridge_of.get(request.transport)
            found = identify(self.kernel, self.records.served(), peer, bridge) if bridge is not None else None
            seed = self.records.seed(found[0]) if found is not None else None
            # the interface the request came through had the filter at prepare too (not another one)
            if seed is None or found is None or not any(mac == found[1].mac and f in SPOOF_FILTERS
                                                        for mac, f in seed.interfaces):
                return self._reply(web, status, body)
            domain = seed.domain
            status, body = self._file(seed.payload, seed.uuid, raw)
            return self._reply(web, status, body)
        finally:
            self.say(domain, request.method, raw, status, len(body), peer)

    def _reply(self, web, status: int, body: bytes):  # type: ignore[no-untyped-def]
        response = web.Response(status=status, body=body, content_type="application/octet-stream")
        response.force_close()
        return response

    def _file(self, payload: Payload, uuid: str, raw_path: str) -> tuple[int, bytes]:
        """The status and body for the path, for the identified domain."""
        path = raw_path.partition("?")[0]
        if not path.startswith("/"):
            return 404, b""
        try:
            name = unquote_to_bytes(path[1:]).decode("utf-8")
            check_name(name, NETWORK)
        except (UnicodeDecodeError, PayloadhookError):
            return 404, b""
        for item in payload.files:
            if item.name == name:
                if item.sealed is None:
                    return 200, item.content
                try:
                    return 200, self._open(payload, item, uuid)
                except PayloadhookError as exc:    # names the file and the key id, never content
                    self.stderr.write(f"payloadhook serve: {exc}\n")
                    return 500, b""
        return (200, b"") if name in EMPTY_WHEN_MISSING else (404, b"")

    def _open(self, payload, item, uuid: str) -> bytes:  # type: ignore[no-untyped-def]
        from ..frozen import replace
        from ..seal.keys import KeyStore
        from ..seal.opening import open_payload
        return open_payload(replace(payload, files=(item,)), uuid, KeyStore(self.key_dir)).files[0].content

    # -- bridges -----------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Listeners, the address and the bridge rules (gate.py) on exactly the bridges of
        served domains' taps; the rules first, so that no listener is up before them."""
        from .bridges import add_address, listener, remove_address
        wanted: dict[int, str] = {}
        ports: list[tuple[str, str]] = []
        for served in self.records.served():
            for tap in served.taps:
                if (tap.filter not in SPOOF_FILTERS or not is_ifname(tap.dev)
                        or self.kernel.name_of(tap.ifindex) != tap.dev):
                    continue
                master = self.kernel.master_of(tap.ifindex)
                name = self.kernel.name_of(master) if master else None
                if master and name and is_ifname(name):
                    wanted[master] = name
                    ports.append((tap.dev, tap.mac))
        try:
            self.gate.set(ports)
        except SeedError as exc:
            if not self.gate_failed:
                self.stderr.write(f"payloadhook serve: {exc}; serving no bridge\n")
                self.stderr.flush()
            self.gate_failed = True
            wanted = {}
        else:
            self.gate_failed = False
        loop = asyncio.get_running_loop()
        self.failed_bridges = set()
        for bridge, name in wanted.items():
            if bridge in self.listeners:
                continue
            try:
                if add_address(self.kernel.ipr, bridge):
                    self.added.add(bridge)
                sock = listener(name, self.port)
                server = await loop.create_server(partial(Guard, self, bridge), sock=sock)
            except OSError as exc:
                # not served: the address goes again (a squatter's socket, bound with
                # IP_FREEBIND, gets nothing where the bridge has no such address)
                self.failed_bridges.add(bridge)
                if bridge in self.added:
                    remove_address(self.kernel.ipr, bridge)
                    self.added.discard(bridge)
                self.stderr.write(f"payloadhook serve: cannot serve on {shown(name, 20)}: {exc.strerror}\n")
                continue
            self.listeners[bridge] = (name, server)
            self.stderr.write(f"payloadhook serve: serving on {shown(name, 20)} at {SEED_ADDRESS}:{self.port}\n")
        for bridge in [b for b in self.listeners if b not in wanted]:
            self._stop_bridge(bridge, remove_address)

    def mark(self) -> None:
        """The failing marker (seed.FAILING_NAME) present exactly while a bridge that should be
        served is not, or the seed's port is another's (checked while no listener of ours is up)."""
        from .bridges import port_free
        failing = self.gate_failed or bool(self.failed_bridges) or (not self.listeners and not port_free(self.port))
        if failing == self.failing:
            return
        set_failing(self.image_dir, failing)
        if failing and not self.failed_bridges and not self.gate_failed:
            self.stderr.write(f"payloadhook serve: {SEED_ADDRESS}:{self.port} is taken by another socket; "
                              "serving no domain until it is free\n")
            self.stderr.flush()
        self.failing = failing

    def _stop_bridge(self, bridge: int, remove_address) -> None:  # type: ignore[no-untyped-def]
        name, server = self.listeners.pop(bridge)
        server.close()
        if bridge in self.added:
            remove_address(self.kernel.ipr, bridge)
            self.added.discard(bridge)
        self.stderr.write(f"payloadhook serve: no longer serving on {shown(name, 20)}\n")

    async def run(self, stop: asyncio.Event) -> None:
        from aiohttp import web

        from .bridges import remove_address
        self.server = web.Server(self.handle, max_line_size=MAX_LINE, max_field_size=MAX_LINE,
                                 max_headers=MAX_HEADERS, keepalive_timeout=0, tcp_keepalive=False,
                                 access_log=None, logger=quiet_logger(self.stderr))
        try:
            while not stop.is_set():
                await self.reconcile()
                self.mark()
                try:
                    await asyncio.wait_for(stop.wait(), RECONCILE_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            for bridge in list(self.listeners):
                self._stop_bridge(bridge, remove_address)
            try:
                self.gate.remove()
            except SeedError as exc:
                self.stderr.write(f"payloadhook serve: {exc}\n")
            self.kernel.close()
            set_failing(self.image_dir, False)


def set_failing(image_dir: str, failing: bool) -> None:
    path = f"{image_dir}/{FAILING_NAME}"
    if failing:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def hold_lock(image_dir: str) -> int:
    """Create image_dir if needed, and hold the service's lock there (one service per image_dir)."""
    from ..store import dirs
    with dirs.locked(image_dir, create=True):
        pass        # image_dir made (0711) and checked to be root's, as the store makes it
    # root's alone: anyone who could open it could flock it, and keep the service from starting
    fd = os.open(f"{image_dir}/{LOCK_NAME}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode):
            raise SeedError(f"{image_dir}/{LOCK_NAME} is not a file of the service's user")
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        set_failing(image_dir, True)    # until the first reconcile says otherwise: the hook refuses meanwhile
    except BlockingIOError:
        os.close(fd)
        raise SeedError(f"another seed service serves {image_dir} already") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def serve(image_dir: str, key_dir: str, port: int = 80) -> int:
    lock = hold_lock(image_dir)
    try:
        service = Service(image_dir, key_dir, port)
        sys.stderr.write(f"payloadhook serve: serving network payloads recorded in {image_dir}\n")
        sys.stderr.flush()

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await service.run(stop)

        asyncio.run(main())
    finally:
        os.close(lock)
    return 0
