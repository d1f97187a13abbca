"""payloadhook: files handed to a libvirt domain on a CD-ROM or floppy when it starts.

Importing the package is cheap on purpose: the qemu hook imports it on every
operation of every domain, so nothing heavy (lxml, cryptography) is imported here.
"""

__version__ = "0.1.0"

#: The XML namespace of payload metadata (docs/format.md).
NAMESPACE = "urn:payloadhook:payload:1"


def has_payload_metadata(xml: bytes) -> bool:
    """Whether a domain XML may hold payload metadata: the hook's cheap first test."""
    return NAMESPACE.encode() in xml
