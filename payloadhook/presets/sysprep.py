"""A Windows answer file, at the root of a floppy (where the machine has a floppy
controller: i440fx, libvirt's ``pc``) or of a CD-ROM (q35 has none), written twice with
the same content: ``Autounattend.xml`` and ``Unattend.xml``.

Why both names. Microsoft's "Windows Setup Automation Overview", section "Implicit answer
file search order"
(https://learn.microsoft.com/en-us/windows-hardware/manufacture/desktop/windows-setup-automation-overview#implicit-answer-file-search-order),
has Setup look, in order, in: 1. the registry (HKLM\\System\\Setup!UnattendFile);
2. %WINDIR%\\Panther\\Unattend; 3. %WINDIR%\\Panther (its cached copy); 4. removable read/write
media, and 5. removable read-only media, each in drive-letter order, at the root of the drive,
named Unattend.xml or Autounattend.xml; 6. the \\Sources directory of the Windows media, where
the windowsPE and offlineServicing passes take Autounattend.xml and every other pass
Unattend.xml; then places on the system drive. The same page tells a fresh installation to
put Autounattend.xml at the root of a removable drive ("When no other answer file is
selected, Windows Setup searches for this file"), and a sysprep-generalized image runs its
later passes (specialize, oobeSystem) at first boot, for which oVirt wrote Unattend.xml on its
sysprep floppy. One medium holding both names serves a Windows DVD installation and a
sysprepped image alike. A floppy is removable read/write media (4), a CD-ROM read-only (5).

The file must be well-formed XML whose root is ``unattend`` in the namespace
``urn:schemas-microsoft-com:unattend``; Windows reads it as UTF-8 here (UTF-16 is refused, as
every document this project reads).
"""

from __future__ import annotations

from ..errors import PayloadError
from ..model import Payload, PayloadFile

NAMESPACE = "urn:schemas-microsoft-com:unattend"
FILE_NAMES = ("Autounattend.xml", "Unattend.xml")
LABEL = "SYSPREP"
WHAT = "--sysprep answer file"


def check(answer_file: bytes) -> None:
    from ..xmlsafe import parse_xml
    root = parse_xml(answer_file, what=WHAT, root_tag=None)
    if root.tag != f"{{{NAMESPACE}}}unattend":
        # the tag found is not quoted: a namespace URI is document text, and could hold a secret
        raise PayloadError(f"{WHAT} is not an answer file: its root element is not <unattend> in the "
                           f"namespace {NAMESPACE}")


def build(answer_file: bytes, medium: str, target: str | None = None, label: str | None = None) -> Payload:
    """The answer file of a checked document, on ``medium`` (cdrom or floppy)."""
    files = tuple(PayloadFile(name, answer_file) for name in FILE_NAMES)
    return Payload(type=medium, files=files, target=target, volume_id=label or LABEL)
