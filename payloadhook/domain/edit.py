"""``attach`` and ``detach`` as one call each: plan on a view of the tree, then apply.

The rules live in domain/plan.py; these keep the names the command has called. New code
plans first (``plan_attach(view, payload, image_dir)``), reports the plan, then applies it.
"""

from __future__ import annotations

from ..model import Payload
from .plan import BUSES, apply_attach, apply_detach, plan_attach, plan_detach
from .view import view_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BUSES", "attach", "detach", "machine_family"]


def machine_family(domain: Any) -> str:
    return view_of(domain).machine_family


def attach(domain: Any, payload: Payload, image_dir: str) -> Payload:
    """Add or replace ``payload`` and the disk it binds to; return it with its target set."""
    view = view_of(domain)
    plan = plan_attach(view, payload, image_dir)
    apply_attach(view, plan)
    return plan.payload


def detach(domain: Any, image_dir: str, payload_type: str | None = None,
           target: str | None = None) -> list[Payload]:
    """Remove the matching payloads and their payload disks; return what was removed."""
    view = view_of(domain)
    plan = plan_detach(view, image_dir, payload_type, target)
    apply_detach(view, plan)
    return list(plan.removed)
