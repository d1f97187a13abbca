"""169.254.169.254 on the bridges that have a served domain, and one listener on each.

Reconciled every second against the hook's records: a bridge gets the address (/32) and a
listening socket bound to it (SO_BINDTODEVICE, so that the bridge a request arrived on is
known from the socket, and a host process, whose connection to a local address goes
through the loopback device, reaches none) when a served domain's tap is one of its ports,
and loses both when none is; the service takes off only the addresses it put on.
"""

from __future__ import annotations

import errno
import socket

from .. import log
from . import SEED_ADDRESS

IP_FREEBIND = 15


def listener(bridge: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bridge.encode())
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        sock.bind((SEED_ADDRESS, port))
        sock.listen(256)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def port_free(port: int) -> bool:
    """Whether nobody listens on (or holds without SO_REUSEADDR) 169.254.169.254's ``port``,
    on any device: a bind without a device conflicts with every socket on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        sock.bind((SEED_ADDRESS, port))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def add_address(ipr, bridge: int) -> bool:
    """Put the seed address on ``bridge``; True when we did (False: it was there)."""
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        ipr.addr("add", index=bridge, address=SEED_ADDRESS, prefixlen=32)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            return False
        raise
    return True


def remove_address(ipr, bridge: int) -> None:
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        ipr.addr("del", index=bridge, address=SEED_ADDRESS, prefixlen=32)
    except NetlinkError as exc:
        if exc.code not in (errno.EADDRNOTAVAIL, errno.ENODEV):
            log.warning(__name__, "could not remove %s from interface %d: %s", SEED_ADDRESS, bridge, exc)
