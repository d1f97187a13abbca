"""Re-sealing a domain wherever libvirt keeps its XML (ops/places.py), and finding what still
holds a blob under a key: the two halves of retiring a key (``reseal``, ``key retire``)."""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..seal.keys import KeyStore
    from .places import Place


@dataclass(frozen=True)
class Outcome:
    """What re-sealing one place gave: the files sealed again, or why it could not be."""

    what: str
    resealed: int = 0
    error: str | None = None


def reseal_domain(conn, dom, keys: KeyStore, key_id: str, from_uuid: str | None = None) -> list[Outcome]:
    """Every place of ``dom`` with sealed files sealed again under ``key_id`` (each opened as
    sealed for ``from_uuid``, default the domain's own UUID); one place that does not reseal
    never stops the others, and is reported with its reason."""
    from ..errors import PayloadhookError
    from .places import places
    outcomes = []
    for place in places(conn, dom):
        try:
            outcomes.append(Outcome(place.what, _reseal_place(place, dom, keys, key_id, from_uuid)))
        except PayloadhookError as exc:
            outcomes.append(Outcome(place.what, error=str(exc)))
    return outcomes


def _reseal_place(place: Place, dom, keys: KeyStore, key_id: str, from_uuid: str | None) -> int:
    from ..domain import metadata
    from ..seal.sealing import reseal_payload
    root = place.parse()
    total = 0
    for domain in place.domains_of(root):
        if metadata.payloads_root(domain) is None:
            continue
        uuid = domain.findtext("uuid") or dom.UUIDString()
        payloads, sealed_here = [], 0
        for payload in metadata.read_payloads(domain):
            resealed, sealed = reseal_payload(payload, uuid, keys, key_id, from_uuid)
            payloads.append(resealed)
            sealed_here += sealed
        if sealed_here:
            metadata.set_payloads(domain, payloads)
            total += sealed_here
    if total:
        place.write(root)
    return total


@dataclass(frozen=True)
class Holder:
    """A place that still holds blobs under a key (or that could not be read: it might)."""

    domain: str
    what: str
    files: int = 0
    error: str | None = None


def holders(conn, key_id: str) -> list[Holder]:
    """Every place of every domain of the connection holding a blob sealed under ``key_id``.
    Read as written (structure only: a definition that would not pass the hook still counts),
    and a place that cannot be read is a holder: nothing is assumed away."""
    from ..domain import metadata
    from ..errors import PayloadhookError
    from . import virt
    from .places import all_domains, places
    found = []
    for dom in all_domains(conn):
        name = virt.name_of(dom)
        try:
            domain_places = places(conn, dom)
        except PayloadhookError as exc:
            found.append(Holder(name, "its XML", error=str(exc)))
            continue
        for place in domain_places:
            try:
                root = place.parse()
            except PayloadhookError as exc:
                found.append(Holder(name, place.what, error=str(exc)))
                continue
            # the whole document, not only where the hook reads: nothing under the key is missed
            files = sum(1 for content in root.iter(metadata.CONTENT)
                        if content.get("encoding") == "sealed" and content.get("key") == key_id)
            if files:
                found.append(Holder(name, place.what, files))
    return found
