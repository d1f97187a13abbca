"""Every XML libvirt keeps of one domain, each read and written back the way libvirt allows:
what ``reseal`` rewrites and ``key retire`` searches (retiring a key must find every blob
still sealed under it, README, "Retiring a key").

- the saved definition (persistent domains): read with its secrets, defined again;
- the live XML (running or paused domains, transient ones included): what migration and
  ``virsh save`` hand the hook. Only the payload metadata changes, through libvirt's
  metadata API on the live definition (``setMetadata(..., VIR_DOMAIN_AFFECT_LIVE)``), which
  neither restarts the domain nor makes a transient one persistent;
- the managed-save image (``virsh managedsave``, libvirt-guests at host shutdown), whose XML
  the next start restores: read and defined again in the image
  (``managedSaveGetXMLDesc`` / ``managedSaveDefineXML``, with secrets);
- each snapshot's domain (a revert brings it back): redefined with
  ``VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE``, kept current where it was;
- each checkpoint's domain (``virsh checkpoint-dumpxml``, which incremental backups keep):
  redefined with ``VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE``, which changes only libvirt's
  metadata (no bitmap is made or checked).

What libvirt does not keep cannot be found here: ``virsh save`` files at paths of an
administrator's choosing, copies of definitions, backups and exports.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


@dataclass(frozen=True)
class Place:
    """One XML of a domain. ``read`` gives its document; ``domains_of`` the domain elements
    in it (a snapshot holds its <domain>, and an <inactiveDomain> when it was taken of a
    running domain: a revert brings both back); ``write`` stores an edited document."""

    what: str
    read: Callable[[], bytes]
    domains_of: Callable[[Any], list]
    write: Callable[[Any], None]
    root_tag: str = "domain"

    def parse(self):
        """The document ``read`` gives, parsed as the untrusted XML it is."""
        from .. import xmlsafe
        return xmlsafe.parse_xml(self.read(), f"the {self.what}'s XML", root_tag=self.root_tag)


def _itself(root) -> list:
    return [root]


def _snapshot_domains(root) -> list:
    return [element for element in (root.find("domain"), root.find("inactiveDomain")) if element is not None]


def places(conn, dom) -> list[Place]:
    """The XML libvirt keeps of ``dom``, in the order reseal rewrites them."""
    from . import virt
    libvirt = virt._libvirt()
    name = virt.name_of(dom)
    found = []
    if virt.call(f"cannot ask about {name}", dom.isPersistent):
        found.append(Place("saved definition", lambda: virt.inactive_xml(dom, secure=True), _itself,
                           lambda root: _define(conn, dom, root)))
    if virt.call(f"cannot ask about {name}", dom.isActive):
        found.append(Place("live XML", lambda: _xml(f"cannot read the live XML of {name}", dom.XMLDesc,
                                                    libvirt.VIR_DOMAIN_XML_SECURE),
                           _itself, lambda root: _set_live_metadata(dom, root)))
    if virt.call(f"cannot ask about {name}", dom.hasManagedSaveImage, 0):
        found.append(Place("managed save image",
                           lambda: _xml(f"cannot read the managed save image of {name}", dom.managedSaveGetXMLDesc,
                                        libvirt.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE),
                           _itself, lambda root: _define_managed_save(dom, root)))
    for snapshot in virt.call(f"cannot list the snapshots of {name}", dom.listAllSnapshots, 0):
        found.append(_snapshot_place(dom, snapshot))
    for checkpoint in virt.call(f"cannot list the checkpoints of {name}", dom.listAllCheckpoints, 0):
        found.append(_checkpoint_place(dom, checkpoint))
    return found


def _xml(what: str, function, *args) -> bytes:
    from . import virt
    return virt.call(what, function, *args).encode("utf-8")


def _serialized(root) -> str:
    from .. import xmlsafe
    return xmlsafe.serialize(root).decode("utf-8")


def _define(conn, dom, root) -> None:
    from . import virt
    virt.call(f"cannot define {virt.name_of(dom)}", conn.defineXML, _serialized(root))


def _set_live_metadata(dom, root) -> None:
    """Only the <pl:payloads> element, on the live definition: the rest of the live XML is
    libvirt's (a running domain's devices cannot be redefined)."""
    import copy

    from lxml import etree

    from .. import NAMESPACE
    from ..domain import metadata
    from . import virt
    libvirt = virt._libvirt()
    element = root.find(metadata.PAYLOADS_PATH)
    text = None
    if element is not None:
        # libvirt puts the element and everything in it into the namespace it is given, and
        # refuses one that declares that namespace itself: the element goes without it
        bare = copy.deepcopy(element)
        bare.tail = None
        for node in bare.iter(metadata.PL + "*"):
            node.tag = etree.QName(node).localname
        etree.cleanup_namespaces(bare)
        text = etree.tostring(bare, encoding="unicode")
    virt.call(f"cannot change the live payload metadata of {virt.name_of(dom)}", dom.setMetadata,
              libvirt.VIR_DOMAIN_METADATA_ELEMENT, text, metadata.PREFIX, NAMESPACE, libvirt.VIR_DOMAIN_AFFECT_LIVE)


def _define_managed_save(dom, root) -> None:
    from . import virt
    virt.call(f"cannot rewrite the managed save image of {virt.name_of(dom)}", dom.managedSaveDefineXML,
              _serialized(root), 0)


def _snapshot_place(dom, snapshot) -> Place:
    from . import virt
    libvirt = virt._libvirt()
    label = f"snapshot {_shown_name(snapshot)}"

    def read() -> bytes:
        return _xml(f"cannot read {label} of {virt.name_of(dom)}", snapshot.getXMLDesc,
                    libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)

    def write(root) -> None:
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
        if virt.call(f"cannot ask about {label} of {virt.name_of(dom)}", snapshot.isCurrent, 0):
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
        virt.call(f"cannot redefine {label} of {virt.name_of(dom)}", dom.snapshotCreateXML, _serialized(root), flags)
    return Place(label, read, _snapshot_domains, write, root_tag="domainsnapshot")


def _checkpoint_domains(root) -> list:
    return [element for element in (root.find("domain"),) if element is not None]


def _checkpoint_place(dom, checkpoint) -> Place:
    from . import virt
    libvirt = virt._libvirt()
    label = f"checkpoint {_shown_name(checkpoint)}"

    def read() -> bytes:
        return _xml(f"cannot read {label} of {virt.name_of(dom)}", checkpoint.getXMLDesc,
                    libvirt.VIR_DOMAIN_CHECKPOINT_XML_SECURE)

    def write(root) -> None:
        virt.call(f"cannot redefine {label} of {virt.name_of(dom)}", dom.checkpointCreateXML, _serialized(root),
                  libvirt.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE)
    return Place(label, read, _checkpoint_domains, write, root_tag="domaincheckpoint")


def _shown_name(snapshot) -> str:
    from ..errors import shown
    return shown(snapshot.getName(), 60)


def all_domains(conn) -> list:
    """Every domain of the connection, persistent or transient, running or not, by name."""
    from . import virt
    return sorted(virt.call("cannot list domains", conn.listAllDomains, 0), key=lambda d: d.name())
