"""Payloads to and from OVF (DMTF DSP0243, envelope 1.x and 2.x; oVirt's and VMware's dialects).

A payload travels as one ``Item`` of the ``VirtualHardwareSection`` per disk, in the shape
oVirt gives its devices: ``rasd:ResourceType`` 15 (CD-ROM) or 14 (floppy), unqualified
``Type``/``Device``/``SpecParams`` children (as ovirt-engine's OvfWriter writes them), and
the payload under ``SpecParams/vmPayload``::

    <Item>
      <rasd:Caption>payload cdrom hdc</rasd:Caption>
      <rasd:InstanceId>payloadhook-hdc</rasd:InstanceId>
      <rasd:ResourceType>15</rasd:ResourceType>
      <rasd:ElementName>payload-hdc</rasd:ElementName>
      <Type>disk</Type>
      <Device>cdrom</Device>
      <IsReadOnly>true</IsReadOnly>
      <SpecParams>
        <vmPayload>
          <volId>config-2</volId>
          <target>hdc</target>
          <file>
            <path>openstack/latest/meta_data.json</path>
            <size>14</size>
            <sha256>...</sha256>                           (with content, or --with-digests)
            <content encoding="base64">...</content>      (only with --with-content)
          </file>
        </vmPayload>
      </SpecParams>
    </Item>

Content is left out unless asked for: oVirt left payloads out of its OVF because they may
hold secrets, and an OVF travels further than a domain definition. Everything else in an
OVF is kept as it is: merge only adds (or replaces) payload items.

Modules: envelope (safe parsing, the hardware section, children by local name), read (the
items as declared, then payloads), write (export, merge).
"""

from .envelope import MAX_OVF_BYTES, OVF_NAMESPACES, RASD, RESOURCE_TYPES, hardware_section, parse_ovf
from .read import OvfFile, OvfPayload, read_declared, read_payloads, to_payloads
from .write import export, merge, payload_item

__all__ = ["MAX_OVF_BYTES", "OVF_NAMESPACES", "RASD", "RESOURCE_TYPES", "OvfFile", "OvfPayload", "export",
           "hardware_section", "merge", "parse_ovf", "payload_item", "read_declared", "read_payloads",
           "to_payloads"]
