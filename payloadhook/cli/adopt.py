"""``payloadhook adopt DOMAIN``: oVirt's payload metadata (VDSM's ``ovirt-vm`` devices,
domain/ovirt.py) turned into payloads the hook builds, so that a domain defined from a VDSM
host's XML starts with its payload on plain libvirt.

Each VDSM payload becomes a ``<pl:payload>`` of the disk it names, with its volume id as the
label and its files' names and bytes unchanged, sealed for the domain where the host has a key
(as attach seals; --seal, --no-seal); the disk's source (``PAYLOAD:``, VDSM's
``/run/vdsm/payload/...`` image, or none) is pointed into image_dir; the VDSM payload is
taken out of the definition, so that its content does not stay there beside the sealed copy.
Everything is checked before the one defineXML, the finished definition as the hook's prepare
will check it (ops.define.check_finished): a refusal leaves the definition as it was.
"""

from __future__ import annotations

from ..errors import count
from ..ops import virt
from ..ops.define import edit_definition
from .common import EXIT_OK, add_domain, add_seal_options, load

HELP = ("turn the oVirt (VDSM) payload metadata of a domain into payloads the hook builds, keeping the volume id, "
        "file names and bytes, and point its payload disk into image_dir")


def add_arguments(parser) -> None:
    add_domain(parser)
    add_seal_options(parser)


def adopt(root, config, seal: bool | None):
    """Edit the parsed domain ``root``: every VDSM payload adopted. Returns the plans."""
    from ..domain import layout, ovirt
    from ..domain.view import view_of
    from ..errors import BindingError, PayloadhookError, quote, shown
    from ..ops.attach import plan_and_attach
    found = ovirt.read(root)
    if not found:
        raise PayloadhookError(f"domain {shown(root.findtext('name'), 60)} has no oVirt payload metadata to adopt")
    config.check([item.declared for item in found])
    payloads = [ovirt.decode(item) for item in found]
    view = view_of(root)
    for item in found:
        disk = view.disk(item.target)
        assert disk is not None     # ovirt.read bound it
        taken = [p for p in view.payloads if view.target_of(p) == item.target]
        if taken:
            raise BindingError(f"{disk.describe()} already has a payload the hook builds; detach it first to "
                               "adopt the oVirt payload instead")
        if disk.kind != "file":
            raise BindingError(f"{disk.describe()} is a <disk type={quote(disk.kind, 20)}>, not a file; adopt "
                               "leaves it alone")
        source = disk.element.find("source")
        if source is not None and source.get("file") is None and set(source.attrib) - {"startupPolicy"}:
            raise BindingError(f"{disk.describe()} has a source that is not a file; adopt leaves it alone")
        if not ovirt.is_vdsm_source(disk.source) and not disk.in_dir(config.image_dir):
            raise BindingError(f"{disk.describe()} holds {shown(disk.source)}, not an oVirt payload image "
                               f"(PAYLOAD: or {ovirt.VDSM_PAYLOAD_DIR}...); adopt leaves it alone")
    plans = []
    for item, payload in zip(found, payloads):
        disk = view_of(root).disk(item.target)
        assert disk is not None
        source = disk.element.find("source")
        if source is not None and not disk.in_dir(config.image_dir):
            layout.remove(source)       # the placeholder or VDSM's image: attach points it anew
        plans.append(plan_and_attach(root, payload, config, label_given=True, seal=seal))
        ovirt.remove(item)
    return plans


def handle(args) -> int:
    config = load()
    dom, plans = edit_definition(args.connect, args.domain, lambda root: adopt(root, config, args.seal), config)
    note = " (the running domain keeps its media until it is restarted)" if dom.isActive() else ""
    for plan in plans:
        payload = plan.payload
        sealed = next((f.sealed.key_id for f in payload.files if f.sealed is not None), None)
        print(f"adopted the oVirt payload on {plan.target} of {virt.name_of(dom)}: {payload.type}, label "
              f"{payload.label}, {count(payload.files, 'file')}{f', sealed with key {sealed}' if sealed else ''}; "
              f"image {plan.source}{note}")
    return EXIT_OK
