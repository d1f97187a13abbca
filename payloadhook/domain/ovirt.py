"""oVirt's own payload metadata, as VDSM writes it into a domain's ``<metadata>`` (namespace
``http://ovirt.org/vm/1.0``), read so that ``show`` and ``check`` can name it and ``adopt``
can turn it into payloads the hook builds.

VDSM keeps per-device metadata in ``<ovirt-vm:vm>``, one ``<ovirt-vm:device>`` per device,
matched to a ``<disk>`` of the domain by ``devtype="disk"`` and ``name`` (the disk's
``<target dev>``). A payload sits in it in one of two forms:

    <ovirt-vm:device devtype="disk" name="hdc">            current VDSM (4.2 and later)
      <ovirt-vm:payload>
        <ovirt-vm:volId>config-2</ovirt-vm:volId>           optional: the volume label
        <ovirt-vm:file path="openstack/latest/user_data">BASE64</ovirt-vm:file>
      </ovirt-vm:payload>
    </ovirt-vm:device>

    <ovirt-vm:device devtype="disk" name="hdc">            older: the device's specParams
      <ovirt-vm:specParams>
        <ovirt-vm:vmPayload> volId and file, as above </ovirt-vm:vmPayload>
      </ovirt-vm:specParams>
    </ovirt-vm:device>

(The engine sends ``specParams: {vmPayload: {volId, file: {path: base64}}}``; VDSM's
metadata module writes a dict as elements and a dict of paths as ``file`` elements with a
``path`` attribute.) The disk itself is a CD-ROM or floppy whose source is the engine's
placeholder ``PAYLOAD:``, the image VDSM made under ``/run/vdsm/payload/`` (older releases:
``/var/run/vdsm/payload/``), or nothing.

Read as everything else is: the structure first, nothing decoded (:class:`~.metadata.Declared`,
so that the limits are checked on sizes worked out from the text), names and labels then held
to the model's rules by :func:`~.metadata.decode`. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BindingError, PayloadError, quote, shown
from .metadata import Declared, DeclaredFile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..config import Config
    from ..model import Payload
    Element = Any

NAMESPACE = "http://ovirt.org/vm/1.0"
OV = f"{{{NAMESPACE}}}"
VM = OV + "vm"
DEVICE = OV + "device"
PAYLOAD = OV + "payload"
SPEC_PARAMS = OV + "specParams"
VM_PAYLOAD = OV + "vmPayload"
VOL_ID = OV + "volId"
FILE = OV + "file"

CURRENT = "ovirt-vm:payload"
OLDER = "specParams/vmPayload"
#: Disk sources VDSM and the engine give a payload drive.
PLACEHOLDER = "PAYLOAD:"
VDSM_PAYLOAD_DIR = "/run/vdsm/payload/"
#: Where older VDSM releases put them (a domain migrated from one may still name it).
OLD_VDSM_PAYLOAD_DIR = "/var/run/vdsm/payload/"
#: More payload devices than any VM has (oVirt has one payload per VM).
MAX_DEVICES = 16


@dataclass(frozen=True)
class OvirtPayload:
    """One VDSM payload: the device name (target) it belongs to, its form, its declaration
    (type from the disk it names) and the elements ``adopt`` removes."""

    target: str
    form: str
    declared: Declared
    element: Element        # <ovirt-vm:payload> or <ovirt-vm:specParams>'s <ovirt-vm:vmPayload>
    device: Element         # its <ovirt-vm:device>


def has_ovirt_metadata(xml: bytes) -> bool:
    """The cheap first test, as payloadhook.has_payload_metadata; a document with a character
    reference in it is parsed all the same (it may spell the namespace with one, as
    ``&#104;ttp://ovirt.org/vm/1.0``, which a definition given to ``check FILE.xml`` may do and
    libvirt, defining it, writes plainly)."""
    return NAMESPACE.encode() in xml or b"&#" in xml


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else "?"


def _text(element: Element, where: str) -> str:
    if len(element):
        raise PayloadError(f"{where}: <ovirt-vm:{_local(element.tag)}> holds a comment, processing instruction "
                           "or element; only text is accepted there")
    return element.text or ""


def read(domain: Element) -> tuple[OvirtPayload, ...]:
    """The VDSM payloads of a parsed domain, structure checked, nothing decoded; each bound
    to the CD-ROM or floppy its device names."""
    found: list[OvirtPayload] = []
    for vm in domain.findall(f"metadata/{VM}"):
        for device in vm.findall(DEVICE):
            elements = [(CURRENT, e) for e in device.findall(PAYLOAD)]
            elements += [(OLDER, e) for params in device.findall(SPEC_PARAMS) for e in params.findall(VM_PAYLOAD)]
            if not elements:
                continue
            if len(found) + len(elements) > MAX_DEVICES:
                raise PayloadError(f"the domain's oVirt metadata holds over {MAX_DEVICES} payloads")
            target = device.get("name")
            if device.get("devtype") != "disk" or not target:
                raise PayloadError("an oVirt payload sits in an <ovirt-vm:device> without devtype=\"disk\" and a "
                                   "name (the disk's target)")
            if len(elements) > 1 or any(p.target == target for p in found):
                raise PayloadError(f"the oVirt metadata holds more than one payload for the disk {quote(target, 40)}")
            form, element = elements[0]
            found.append(OvirtPayload(target=target, form=form, element=element, device=device,
                                      declared=_declared(domain, element, target, len(found) + 1)))
    return tuple(found)


def payloads_of(xml: bytes, config: Config) -> tuple[tuple[OvirtPayload, Payload], ...]:
    """``(OvirtPayload, Payload)`` for each VDSM payload of a domain XML, held to the limits
    before it is decoded: what ``show`` and ``check`` name. Cheap when there is none."""
    if not has_ovirt_metadata(xml):
        return ()
    from .. import xmlsafe
    found = read(xmlsafe.read_xml(xml))
    config.check([item.declared for item in found])
    return tuple((item, decode(item)) for item in found)


def decode(item: OvirtPayload) -> Payload:
    """The validated :class:`~payloadhook.model.Payload` of a VDSM payload (names, label and
    base64 held to the model's rules), a refusal naming the oVirt device."""
    from ..model import replace
    from . import metadata
    try:
        return replace(metadata.decode(item.declared), target=item.target)
    except PayloadError as exc:
        message = str(exc).partition(": ")[2] or str(exc)
        raise PayloadError(f"oVirt payload on {quote(item.target, 40)}: {message}") from None


def _declared(domain: Element, element: Element, target: str, index: int) -> Declared:
    where = f"oVirt payload on {quote(target, 40)}"
    disk = _disk(domain, target)
    if disk is None:
        raise BindingError(f"{where}: the domain has no disk with that target")
    medium = disk.get("device", "disk")
    if medium not in ("cdrom", "floppy"):
        raise BindingError(f"{where}: the disk is a {shown(medium, 20)}, not a cdrom or floppy")
    volume = None
    files: list[DeclaredFile] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag == VOL_ID:
            if volume is not None:
                raise PayloadError(f"{where}: more than one <ovirt-vm:volId>")
            volume = _text(child, where)
        elif child.tag == FILE:
            path = child.get("path")
            if path is None:
                raise PayloadError(f"{where}: an <ovirt-vm:file> has no path attribute")
            files.append(DeclaredFile(name=path, encoding="base64", text=_text(child, f"{where}: file {quote(path)}")))
        else:
            raise PayloadError(f"{where}: unexpected element <{shown(_local(child.tag), 40)}>")
    return Declared(index=index, type=medium, target=target, volume_id=volume or None, files=tuple(files))


def _disk(domain: Element, target: str) -> Element | None:
    for disk in domain.findall("devices/disk"):
        element = disk.find("target")
        if element is not None and element.get("dev") == target:
            return disk
    return None


def is_vdsm_source(source: str | None) -> bool:
    """Whether a payload disk's source is one oVirt gave it (or none): what ``adopt`` may
    point into image_dir. A VDSM image is one file directly in its payload directory."""
    if source is None or source == PLACEHOLDER:
        return True
    name = next((source[len(d):] for d in (VDSM_PAYLOAD_DIR, OLD_VDSM_PAYLOAD_DIR) if source.startswith(d)), "")
    return bool(name) and "/" not in name and name not in (".", "..")


def remove(payload: OvirtPayload) -> None:
    """Take the VDSM payload out of its device (lxml tree): its content must not stay in the
    definition beside the adopted, perhaps sealed, copy. A specParams, device or ``<ovirt-vm:vm>``
    left empty goes."""
    from . import layout
    parent = payload.element.getparent()
    layout.remove(payload.element)
    if parent is not payload.device and not _elements(parent):
        layout.remove(parent)
    vm = payload.device.getparent()
    if not _elements(payload.device):
        layout.remove(payload.device)
    if vm is not None and not _elements(vm):
        layout.remove(vm)


def _elements(element: Element) -> list[Element]:
    return [child for child in element if isinstance(child.tag, str)]
