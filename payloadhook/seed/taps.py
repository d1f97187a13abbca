"""The hook's ``started`` step for a served domain: its taps, recorded for the seed service.

libvirt creates a domain's taps after ``prepare``; at ``started`` its live XML names each
(``<target dev='vnet3'/>``). The kernel's interface index of each is read by name
(if_nametoindex, a system call; no child process, no libvirt): the service then accepts a
request only when the bridge's forwarding database puts the sender's MAC on that very
index, and an index is not given again to the next tap that takes the name vnet3.
"""

from __future__ import annotations

import socket

from ..errors import SeedError, shown
from .record import Tap, is_mac, taps_document, taps_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..domain.view import DomainView


def record_taps(domain: str, view: DomainView, image_dir: str, environ=None) -> str:
    from ..store.images import Image, ImageStore
    from ..store.records import index_dir
    taps = []
    for interface in view.interfaces:
        if not interface.tap or not is_mac(interface.mac):
            continue
        try:
            ifindex = socket.if_nametoindex(interface.tap)
        except OSError:
            raise SeedError(f"interface {interface.mac}: its tap {shown(interface.tap, 20)} is not on this "
                            "host") from None
        taps.append(Tap(str(interface.mac), interface.tap, ifindex, interface.filter))
    document = taps_document(view.uuid or "", taps)
    store = ImageStore(image_dir, index_dir(environ))
    return store.add(domain, view.uuid, Image.of(taps_path(image_dir, domain), document))
