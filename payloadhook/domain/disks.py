"""The disks of a domain and binding: the names callers knew before domain/view.py.

Each is a line over :mod:`payloadhook.domain.view`, where the rule lives; new code uses
``read_domain(xml)`` / ``view_of(root)`` and ``DomainView.bindings()`` directly.
"""

from __future__ import annotations

from ..model import Payload
from .view import Binding, Disk, bind, disk_for, read_disk, read_domain, view_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Binding", "Disk", "bind", "bindings", "bindings_from_xml", "disk_for", "domain_name",
           "read_disks", "relocate_sources", "target_of"]


def read_disks(domain: Any) -> list[Disk]:
    return [read_disk(element) for element in domain.findall("devices/disk")]


def target_of(payload: Payload, disks: list[Disk]) -> str | None:
    if payload.target is not None:
        return payload.target
    from ..errors import BindingError
    try:
        return disk_for(payload, disks).target
    except BindingError:
        return None


def bindings(domain: Any) -> list[Binding]:
    """The domain's payloads, each bound to its disk."""
    return list(view_of(domain).bindings())


def bindings_from_xml(data: bytes | str) -> list[Binding]:
    return list(read_domain(data, editable=False).bindings())


def domain_name(domain: Any) -> str:
    return view_of(domain).require_name()


def relocate_sources(domain: Any, bindings: list[Binding], image_dir: str) -> bool:
    """Point each payload disk's source into ``image_dir``; True if any moved."""
    from .plan import apply_relocate, plan_relocate
    moves = plan_relocate(view_of(domain), image_dir)
    apply_relocate(moves)
    return bool(moves)
