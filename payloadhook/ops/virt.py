"""libvirt-python for the command: connecting, finding a domain, turning errors into LibvirtError."""

from __future__ import annotations

from ..errors import LibvirtError, quote
from ..uuids import canonical_uuid


def _libvirt():
    try:
        import libvirt  # type: ignore[import-untyped]
    except ImportError:
        raise LibvirtError("libvirt-python is not installed (Debian: python3-libvirt; Fedora: python3-libvirt)") \
            from None
    # libvirt prints every error on stderr by default; ours are reported once, by the command.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def _reason(exc) -> str:
    """libvirt's own message, first line: it quotes domain names and XML as given, so it goes
    through the one bounded, escaped quoting too."""
    from ..errors import shown
    message = exc.get_error_message() if hasattr(exc, "get_error_message") else str(exc)
    lines = (message or str(exc) or "no reason given").splitlines()
    return shown(lines[0] if lines else "no reason given", 300)


def connect(uri: str | None, read_only: bool = False):
    libvirt = _libvirt()
    try:
        return libvirt.openReadOnly(uri) if read_only else libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"cannot connect to {uri or 'the default libvirt URI'}: {_reason(exc)}") from None


#: What makes a domain argument a UUID and nothing else: ``uuid:UUID`` is looked up by that
#: UUID only, never as a name or id written like it (the web console names domains so).
UUID_ONLY = "uuid:"


def local_system(uri: str) -> bool:
    """Whether ``uri`` names the local qemu system driver, the daemon whose domains the hook
    serves: ``qemu:///system`` (or ``qemu+unix:///system``), with no host, whatever socket its
    query names. A session, another driver or another host is not it."""
    from urllib.parse import urlsplit
    parts = urlsplit(uri)
    return parts.scheme in ("qemu", "qemu+unix") and parts.netloc == "" and parts.path == "/system"


def lookup(conn, ident: str):
    """A domain by id, UUID or name, as virsh finds it; by UUID only for ``uuid:UUID``."""
    libvirt = _libvirt()
    attempts = []
    if ident.startswith(UUID_ONLY):
        uuid = canonical_uuid(ident[len(UUID_ONLY):])
        if uuid is None:
            raise LibvirtError(f"domain {quote(ident)} has no UUID after {quote(UUID_ONLY)}")
        attempts.append(lambda: conn.lookupByUUIDString(uuid))
    else:
        if ident.isdigit():
            attempts.append(lambda: conn.lookupByID(int(ident)))
        if canonical_uuid(ident) is not None:
            attempts.append(lambda: conn.lookupByUUIDString(ident))
        attempts.append(lambda: conn.lookupByName(ident))
    for attempt in attempts:
        try:
            return attempt()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise LibvirtError(f"cannot look up domain {quote(ident)}: {_reason(exc)}") from None
    raise LibvirtError(f"domain {quote(ident)} not found")


def name_of(dom) -> str:
    """A domain's name as a message or a table shows it: libvirt allows any character but
    '/' in a name, so it is escaped (no newline or terminal escape gets through) and bounded."""
    from ..errors import shown
    return shown(dom.name())


def persistent_domains(conn) -> list:
    """The domains that have a saved definition, by name."""
    flag = _libvirt().VIR_CONNECT_LIST_DOMAINS_PERSISTENT
    return sorted(call("cannot list domains", conn.listAllDomains, flag), key=lambda d: d.name())


def require_persistent(dom) -> None:
    """An edit of a saved definition needs one: defining a transient domain's XML would make
    it persistent behind its owner's back."""
    from ..errors import PayloadhookError
    if not call(f"cannot ask about {name_of(dom)}", dom.isPersistent):
        raise PayloadhookError(f"domain {name_of(dom)} is transient (it has no saved definition to edit); "
                               "define it first (virsh define), or use run-once for a single start")


def call(what: str, function, *args):
    """Run one libvirt call; a failure becomes a LibvirtError that says what was attempted."""
    libvirt = _libvirt()
    try:
        return function(*args)
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"{what}: {_reason(exc)}") from None


def inactive_xml(dom, secure: bool = False) -> bytes:
    """The saved definition. ``secure`` (needs a read-write connection) keeps secrets such as
    graphics passwords in it: needed when the XML is defined again, as attach and detach do."""
    libvirt = _libvirt()
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | (libvirt.VIR_DOMAIN_XML_SECURE if secure else 0)
    return call(f"cannot read the definition of {name_of(dom)}", dom.XMLDesc, flags).encode("utf-8")


def live_xml(dom) -> bytes:
    """The running domain's XML, as a read-only client sees it."""
    return call(f"cannot read the XML of {name_of(dom)}", dom.XMLDesc, 0).encode("utf-8")
