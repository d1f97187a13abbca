"""A domain's XML read through libvirt or from a file, and its saved definition edited: the
one read-edit-define flow (and read-edit-start, for run-once). The definition is read with
its secrets (``VIR_DOMAIN_XML_SECURE``), so that defining it again loses none."""

from __future__ import annotations


def read_definition(dom):
    """The domain's saved definition, parsed for editing, secrets kept."""
    from .. import xmlsafe
    from . import virt
    return xmlsafe.parse_xml(virt.inactive_xml(dom, secure=True))


def edit_domain(conn, dom, edit, config=None):
    """Read ``dom``'s saved definition, ``edit(root)`` it, define it again, unless ``edit``
    returned None (nothing changed); return what ``edit`` returned. With ``config``, the
    finished definition is first checked as the hook's prepare will check it
    (:func:`check_finished`): an edit that adds payloads never defines one the hook refuses."""
    from .. import xmlsafe
    from . import virt
    virt.require_persistent(dom)
    root = read_definition(dom)
    result = edit(root)
    if result is not None:
        document = xmlsafe.serialize(root)
        if config is not None:
            check_finished(document, config)
        virt.call(f"cannot define {virt.name_of(dom)}", conn.defineXML, document.decode("utf-8"))
    return result


def check_finished(document: bytes, config) -> None:
    """An edited definition, checked whole as the hook's prepare will check it at the next
    start (every payload, the limits over all of them, the bindings, each image built into
    /dev/null): raise its refusal, so nothing is defined that cannot start."""
    from ..prepare import check_domain
    check_domain(document, config, service=False)


def start_edited(conn, dom, edit):
    """Start ``dom`` once from its saved definition as ``edit(root)`` changes it; the saved
    definition stays as it is. Return what ``edit`` returned."""
    from .. import xmlsafe
    from . import virt
    root = read_definition(dom)
    result = edit(root)
    virt.call(f"cannot start {virt.name_of(dom)}", conn.createXML, xmlsafe.serialize(root).decode("utf-8"), 0)
    return result


def edit_definition(uri: str | None, ident: str, edit, config=None):
    """Connect, find the domain ``ident``, and :func:`edit_domain` it (checked with
    ``config``, where given); return the domain and what ``edit`` returned."""
    from . import virt
    conn = virt.connect(uri)
    dom = virt.lookup(conn, ident)
    return dom, edit_domain(conn, dom, edit, config)


def domain_xml(uri: str | None, ident: str, inactive: bool) -> tuple[str, bytes]:
    """A domain's name and XML (saved definition, or the running domain's), read-only."""
    from . import virt
    conn = virt.connect(uri, read_only=True)
    dom = virt.lookup(conn, ident)
    return dom.name(), (virt.inactive_xml(dom) if inactive else virt.live_xml(dom))


def saved_xml(uri: str | None, source: str) -> tuple[str, bytes]:
    """The saved definition a DOMAIN|FILE.xml argument names (by
    :func:`payloadhook.local.documents.names_a_file`): where it is (for messages, escaped)
    and its XML, read-only."""
    from ..errors import shown
    from ..local.documents import names_a_file, read_xml_file
    if names_a_file(source):
        return shown(source), read_xml_file(source)
    from . import virt
    dom = virt.lookup(virt.connect(uri, read_only=True), source)
    return virt.name_of(dom), virt.inactive_xml(dom)
