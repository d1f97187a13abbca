"""A domain's XML read through libvirt or from a file, and its saved definition edited:
read (with its secrets), edit, define again."""

from __future__ import annotations


def edit_definition(uri: str | None, ident: str, edit):
    """Read the domain's saved definition, ``edit(root)`` it, define it again; return the
    domain and what ``edit`` returned."""
    from .. import xmlsafe
    from . import virt
    conn = virt.connect(uri)
    dom = virt.lookup(conn, ident)
    virt.require_persistent(dom)
    root = xmlsafe.parse_xml(virt.inactive_xml(dom, secure=True))
    result = edit(root)
    virt.call(f"cannot define {virt.name_of(dom)}", conn.defineXML, xmlsafe.serialize(root).decode("utf-8"))
    return dom, result


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
