"""What prepare writes for payloads without a device, checked as it checks disks (shared by
the hook and ``check``): each fw_cfg file at its entry's path in image_dir, and a network
payload's seed for the seed service, which must be running.
"""

from __future__ import annotations

import os

from .domain.entries import EntryBinding
from .domain.view import DomainView
from .errors import BindingError, SeedError, shown
from .frozen import Frozen, assign
from .model import Payload, replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .config import Config


class Written(Frozen):
    """A file prepare writes for a payload without a device: its path and bytes."""

    __slots__ = ("source", "content", "payload")
    _unshown = ("content", "payload")
    source: str
    content: bytes
    payload: Payload

    disk = None     # as a Binding has one, for the lines check prints

    def __init__(self, source: str, content: bytes, payload: Payload) -> None:
        assign(self, "source", source)
        assign(self, "content", content)
        assign(self, "payload", payload)


def deviceless_files(view: DomainView, config: Config, service: bool = True) -> tuple[Written, ...]:
    """The fw_cfg files and the network seed prepare writes (limits were checked on the
    declarations before: config.check); sealed fw_cfg files opened, the seed kept sealed
    (the service opens it per request)."""
    _refuse_seed_names(view)
    entries = view.entry_bindings()
    _refuse_foreign_entries(view, entries, config.image_dir)
    network = view.network_payload()
    if not entries and network is None:
        return ()
    for payload in {b.payload for b in entries} | ({network} if network is not None else set()):
        payload.check_limits(config.max_file_size, config.max_payload_size)
    written = [Written(b.source, content, b.payload)
               for b, content in zip(entries, _opened(entries, view.uuid, config.key_dir))]
    if network is not None:
        written.append(_seed(view, network, config, service))
    return tuple(written)


def _refuse_seed_names(view: DomainView) -> None:
    """No disk source or fw_cfg file may take a name of the seed's records: a domain's own
    fw_cfg file named ``OTHER-network.taps`` would otherwise tell the seed service that its
    tap is OTHER's."""
    from .filenames import SEED_SUFFIX, TAPS_SUFFIX
    paths = [disk.source for disk in view.disks] + [entry.file for entry in view.fwcfg_entries]
    for path in paths:
        if path and path.endswith((SEED_SUFFIX, TAPS_SUFFIX)):
            raise BindingError(f"{shown(path)} ends in {SEED_SUFFIX} or {TAPS_SUFFIX}, names kept for the "
                               "network seed's records")


def _opened(entries: tuple[EntryBinding, ...], uuid: str | None, key_dir: str) -> list[bytes]:
    if not any(b.item.sealed is not None for b in entries):
        return [b.item.content for b in entries]
    from .seal.keys import KeyStore
    from .seal.opening import open_payload
    keys = KeyStore(key_dir)
    loaded: dict[str, bytes] = {}
    return [open_payload(replace(b.payload, files=(b.item,)), uuid, keys, loaded).files[0].content
            if b.item.sealed is not None else b.item.content for b in entries]


def _refuse_foreign_entries(view: DomainView, entries: tuple[EntryBinding, ...], image_dir: str) -> None:
    """An fw_cfg entry that receives no file of this domain's payloads may not read a file
    in image_dir (another domain's image), as a disk may not (check._refuse_foreign_images)."""
    own = {id(b.entry.element) for b in entries}
    real_dir = os.path.realpath(image_dir)
    for entry in view.fwcfg_entries:
        if id(entry.element) in own or not entry.file:
            continue
        parent = os.path.dirname(os.path.normpath(entry.file))
        if parent == image_dir or os.path.realpath(parent) == real_dir:
            raise BindingError(f"fw_cfg entry {shown(entry.name or '', 60)} reads {shown(entry.file)}, in the image "
                               "directory, but receives no payload of this domain")


def _seed(view: DomainView, network: Payload, config: Config, service: bool = True) -> Written:
    from .seed import UNIT, service_failing, service_running
    from .seed.record import seed_document, seed_path
    name = view.require_name()
    if not view.uuid:
        raise BindingError("network payload: the domain has no <uuid>, by which the seed service knows it")
    if service and not service_running(config.image_dir):
        raise SeedError(f"the network seed service is not running: systemctl start {UNIT}")
    if service and service_failing(config.image_dir):
        raise SeedError(f"the network seed service cannot serve (its address or port is taken, or its bridge rules "
                        f"are not in): journalctl -u {UNIT}")
    document = seed_document(name, view.uuid, view.interfaces, network)
    return Written(seed_path(config.image_dir, name), document, network)
