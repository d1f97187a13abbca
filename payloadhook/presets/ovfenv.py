"""An OVF environment document, ``ovf-env.xml`` at the root of a CD-ROM: DMTF DSP0243's ISO
transport ("iso"), which VMware's tools and cloud-init's DataSourceOVF read.

The document is given whole, or generated from KEY=VALUE properties::

    <Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
                 xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" oe:id="DOMAIN">
      <PropertySection>
        <Property oe:key="KEY" oe:value="VALUE"/>
      </PropertySection>
    </Environment>

cloud-init (DataSourceOVF ``get_ovf_env``, ``read_ovf_environment``) finds the file by name on
any ISO 9660 CD-ROM, requires an ``Environment`` root, reads the first ``PropertySection``
child, and of each ``Property`` the attributes ``key`` and ``value`` in the environment
namespace (a Property without them stops its reader): a given document is held to that.
DSP0243 fixes no volume label; readers go by the file name. ``oe:id`` names the virtual
system (the domain's name; empty for ``build``).

The ``user-data`` property is base64, as cloud-init's reader decodes it: given as a file
(``user-data=F``, F a path starting with / or ./, ``-`` or ``json:NAME``), the command reads,
checks and encodes it; given inline (any other value, in properties or a document), it must be
strict base64 whose decoded bytes are user data cloud-init recognises. Valid user data starts
with '#', a MIME header or gzip's magic, whose base64 starts with a letter: the two forms cannot
be mistaken for one another.
"""

from __future__ import annotations

from ..errors import PayloadError, quote
from ..model import CDROM, Payload, PayloadFile
from . import Identity
from .formats import check_user_data

NAMESPACE = "http://schemas.dmtf.org/ovf/environment/1"
FILE_NAME = "ovf-env.xml"
LABEL = "OVF ENV"
WHAT = "--ovf-env document"
_KEY = f"{{{NAMESPACE}}}key"
_VALUE = f"{{{NAMESPACE}}}value"
USER_DATA = "user-data"


def names_a_file(value: str) -> bool:
    """Whether a ``user-data=`` property names a file rather than holding base64 (module doc)."""
    return value == "-" or value.startswith(("/", "./", "json:"))


def check_user_data_value(value: str, limit: int) -> None:
    """An inline ``user-data`` property: strict base64 of user data cloud-init recognises."""
    import binascii
    what = "--ovf-env user-data"
    try:
        decoded = binascii.a2b_base64("".join(value.split()).encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise PayloadError(f"{what} is neither base64 nor a file (a path starting with / or ./, - or "
                           "json:NAME)") from None
    check_user_data(decoded, what, limit)


def user_data_value(data: bytes, limit: int) -> str:
    """User data read from a file, checked, as the property's base64."""
    import base64
    check_user_data(data, "--ovf-env user-data", limit)
    return base64.b64encode(data).decode("ascii")


def parse_properties(text: str) -> dict[str, str]:
    """``KEY=VALUE,…`` as an ordered mapping: split at ',' then at each item's first '='
    (a value holding ',' is given in a document instead)."""
    properties: dict[str, str] = {}
    for item in text.split(","):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise PayloadError(f"--ovf-env property {quote(item, 40)} is not KEY=VALUE")
        if key in properties:
            raise PayloadError(f"--ovf-env property {quote(key, 40)} is given twice")
        properties[key] = value
    check_properties(properties)
    return properties


def check_properties(properties: dict[str, str]) -> None:
    for key, value in properties.items():
        for what, text in (("key", key), ("value of", value)):
            if not _xml_chars(text):
                raise PayloadError(f"--ovf-env property {what} {quote(key, 40)} holds a character XML "
                                   "cannot carry (a control character)")


def _xml_chars(text: str) -> bool:
    """Whether every character is one XML 1.0 may hold."""
    return all(ch in "\t\n\r" or "\x20" <= ch <= "\ud7ff" or "\ue000" <= ch <= "\ufffd" or ch > "\uffff"
               for ch in text)


def document(properties: dict[str, str], identity: Identity) -> bytes:
    from lxml import etree
    root = etree.Element(f"{{{NAMESPACE}}}Environment", nsmap={None: NAMESPACE, "oe": NAMESPACE})  # type: ignore[dict-item]
    root.set(f"{{{NAMESPACE}}}id", identity.name or "")
    section = etree.SubElement(root, f"{{{NAMESPACE}}}PropertySection")
    for key, value in properties.items():
        etree.SubElement(section, f"{{{NAMESPACE}}}Property", {_KEY: key, _VALUE: value})
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def check(ovf_env: bytes, limit: int = 16 << 20) -> None:
    """A given document, held to what cloud-init's reader requires (see the module doc);
    ``limit`` bounds its user data once decompressed."""
    from ..xmlsafe import parse_xml
    root = parse_xml(ovf_env, what=WHAT, root_tag=None)
    if root.tag != f"{{{NAMESPACE}}}Environment":
        raise PayloadError(f"{WHAT} has no <Environment> root in the namespace {NAMESPACE}")
    sections = [child for child in root if child.tag == f"{{{NAMESPACE}}}PropertySection"]
    if not sections:
        raise PayloadError(f"{WHAT} has no <PropertySection>")
    for index, prop in enumerate((c for c in sections[0] if c.tag == f"{{{NAMESPACE}}}Property"), 1):
        if prop.get(_KEY) is None or prop.get(_VALUE) is None:
            raise PayloadError(f"{WHAT}: <Property> {index} lacks oe:key or oe:value")
        if prop.get(_KEY) == USER_DATA:
            check_user_data_value(prop.get(_VALUE) or "", limit)


def build(ovf_env: bytes, target: str | None = None, label: str | None = None) -> Payload:
    """The CD-ROM of a checked (or generated) document."""
    return Payload(type=CDROM, files=(PayloadFile(FILE_NAME, ovf_env),), target=target, volume_id=label or LABEL)
