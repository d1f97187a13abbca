"""Attaching a payload to a parsed domain (planned on its view, then applied), and saying
what was done in one line."""

from __future__ import annotations

from ..errors import count
from .sealed import sealed_for


def plan_and_attach(root, payload, config, label_given: bool, seal: bool | None = None):
    """Attach ``payload`` (sealed for the domain as ``seal`` says, see :func:`sealed_for`) to
    the parsed domain ``root`` and return the plan. Replacing a payload without ``--label``
    keeps the label it had (oVirt's dialog keeps the Volume ID too): a replace never silently
    puts PAYLOAD back."""
    from ..domain.plan import apply_attach, plan_attach
    from ..domain.view import view_of
    from ..model import replace
    image_dir = config.image_dir
    payload = sealed_for(root, payload, config, seal)
    view = view_of(root)
    plan = plan_attach(view, payload, image_dir)
    if plan.replaces and not label_given and plan.replaces[0].volume_id is not None:
        plan = plan_attach(view, replace(payload, volume_id=plan.replaces[0].volume_id), image_dir)
    apply_attach(view, plan)
    return plan


def describe_attach(plan, domain: str, label_given: bool) -> str:
    """What an attach did, in one line: attached, or replaced and what changed."""
    payload = plan.payload
    sealed = next((f.sealed.key_id for f in payload.files if f.sealed is not None), None)
    how = f", sealed with key {sealed}" if sealed else ""
    if not payload.is_medium:    # no disk, no label: what else attach changed
        done = "replaced" if plan.replaces else "attached"
        said = "; ".join(plan.changes)
        return f"{done} {payload.type} payload ({count(payload.files, 'file')}{how}) of {domain}" + \
            (f": {said}" if said else "")
    if not plan.replaces:
        return (f"attached {payload.type} payload ({count(payload.files, 'file')}, label {payload.label}{how}) "
                f"to {domain} on {plan.target}")
    changes = list(plan.changes)
    if not label_given and plan.replaces[0].volume_id is not None:
        changes.insert(0, f"label {payload.label} kept (--label changes it)")
    said = "; ".join(changes) if changes else "nothing changed"
    return (f"replaced {payload.type} payload on {plan.target} of {domain} "
            f"({count(payload.files, 'file')}, label {payload.label}{how}): {said}")
