"""Domain XML for tests: TCG domains with payload disks, and waiting on them."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from xml.sax.saxutils import quoteattr

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.model import Payload

IMAGE_DIR = "/run/payloadhook"


def disk(device: str, target: str, source: str | None, bus: str | None = None) -> str:
    bus = bus or {"cdrom": "ide", "floppy": "fdc"}[device]
    source_xml = f"<source file={quoteattr(source)}/>" if source else ""
    readonly = "<readonly/>"   # as attach makes payload disks
    return f"<disk type='file' device='{device}'><driver name='qemu' type='raw'/>{source_xml}" \
           f"<target dev='{target}' bus='{bus}'/>{readonly}</disk>"


def domain(name: str, disks: list[str], payloads: list[Payload] = (), kernel: tuple[str, str] | None = None,
           console: str | None = None, devs: str = "", machine: str = "pc", loop: bool = False) -> str:
    os_xml = f"<type arch='x86_64' machine='{machine}'>hvm</type>"
    if kernel:
        cmdline = f"console=ttyS0 quiet panic=-1 payloadtest.devs={devs}" + (" payloadtest.loop=1" if loop else "")
        os_xml += f"<kernel>{kernel[0]}</kernel><initrd>{kernel[1]}</initrd><cmdline>{cmdline}</cmdline>"
    serial = f"<serial type='file'><source path={quoteattr(console)}/><target port='0'/></serial>" if console else ""
    xml = f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>{os_xml}</os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    {''.join(disks)}
    {serial}
    <graphics type='vnc' autoport='no' port='-1' listen='127.0.0.1'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>"""
    root = xmlsafe.parse_xml(xml)
    # no graphics at all: TCG boots faster and nothing listens on a port
    devices = root.find("devices")
    devices.remove(devices.find("graphics"))
    metadata.set_payloads(root, list(payloads))
    return xmlsafe.serialize(root).decode()


def images_of(daemon, prefix: str = "") -> list[str]:
    """The files in the daemon's image_dir whose names start with ``prefix`` (a domain's name)."""
    directory = daemon.path(IMAGE_DIR)
    return sorted(f for f in os.listdir(directory) if f.startswith(prefix)) if os.path.isdir(directory) else []


@contextmanager
def defined(daemon, workdir, name: str, disks: list[str], payloads: list[Payload] = (), **options):
    """The domain defined for the block, destroyed (if it runs) and undefined after it."""
    path = workdir / f"{name}.xml"
    path.write_text(domain(name, disks, payloads, **options))
    daemon.virsh("define", str(path))
    try:
        yield name
    finally:
        daemon.virsh("destroy", name, check=False)
        daemon.virsh("undefine", name, check=False)


def wait_state(daemon, name: str, state: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.virsh("domstate", name, check=False).stdout.strip() == state:
            return
        time.sleep(0.25)
    raise AssertionError(f"domain {name} not {state} after {timeout} s")
