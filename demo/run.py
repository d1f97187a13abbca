"""payloadhook demo: define a tiny guest, attach a CD-ROM and a floppy payload, boot it,
and show that the guest's kernel read every file; then show the images gone.

It leaves one domain behind to try the README's Quick start on: ``vm1``, shut off, the same
tiny guest (TCG, no disk of its own), which prints on its serial console what it finds on
its CD-ROM and powers off. Run again, the demo redefines it.

Run by ``packaging/install-debian --demo`` after the install, as root, against the host's
libvirtd (qemu:///system). It prints each command it runs, as an administrator would type it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from tests.harness import tinyguest  # noqa: E402  (the same guest the tests boot)
from tests.harness.paths import GUEST_CACHE  # noqa: E402  (readable by QEMU wherever the clone is)

NAME = "payloadhook-demo"
CONSOLE = f"/var/log/libvirt/qemu/{NAME}-console.log"
TRY_NAME = "vm1"


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    print("#", " ".join(argv), flush=True)
    result = subprocess.run(argv, text=True, capture_output=True)
    if result.stdout.strip():
        print(result.stdout.rstrip())
    if result.returncode and check:
        print(result.stderr.rstrip(), file=sys.stderr)
        sys.exit(f"demo: {argv[0]} failed")
    return result


def main() -> int:
    print("== building the tiny guest (a Debian kernel and a busybox initramfs) ==")
    kernel, initrd = tinyguest.build(GUEST_CACHE)
    seed = tempfile.mkdtemp(prefix="payloadhook-demo-")
    os.chmod(seed, 0o755)
    files = {
        "meta-data": b"instance-id: payloadhook-demo\nlocal-hostname: demo\n",
        "user-data": b"#cloud-config\npackages: [htop]\n",
        "openstack/latest/meta_data.json": '{"name": "démo", "uuid": "0"}\n'.encode(),
    }
    for name, content in files.items():
        os.makedirs(os.path.dirname(os.path.join(seed, "cd", name)), exist_ok=True)
        with open(os.path.join(seed, "cd", name), "wb") as stream:
            stream.write(content)
    unattend = os.path.join(seed, "Unattend.xml")
    with open(unattend, "wb") as stream:
        stream.write(b'<?xml version="1.0"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend"/>\n')
    xml = os.path.join(seed, "domain.xml")
    with open(xml, "w") as stream:
        stream.write(f"""<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='MiB'>256</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{kernel}</kernel><initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 payloadtest.devs=sr0,fd0</cmdline></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>
  <devices><serial type='file'><source path='{CONSOLE}'/></serial><memballoon model='none'/></devices>
</domain>
""")
    run("virsh", "destroy", NAME, check=False)
    run("virsh", "undefine", NAME, check=False)
    if os.path.exists(CONSOLE):
        os.unlink(CONSOLE)
    print("\n== a guest, two payloads ==")
    run("virsh", "define", xml)
    run("payloadhook", "attach", NAME, "--type", "cdrom", "--label", "cidata", os.path.join(seed, "cd"))
    run("payloadhook", "attach", NAME, "--type", "floppy", unattend)
    run("payloadhook", "show", NAME)
    print("\n== start: the hook builds the images ==")
    run("virsh", "start", NAME)
    run("ls", "-l", "/run/payloadhook")
    deadline = time.monotonic() + 180
    while run("virsh", "domstate", NAME).stdout.strip() != "shut off":
        if time.monotonic() > deadline:
            sys.exit("demo: the guest did not power off within 180 s")
        time.sleep(2)
    with open(CONSOLE, errors="replace") as stream:
        report = tinyguest.parse_console(stream.read())
    print("\n== what the guest's kernel read ==")
    expected = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    wanted = {("sr0", "rock"): expected, ("sr0", "joliet"): expected,
              ("fd0", "vfat"): {"Unattend.xml": hashlib.sha256(open(unattend, "rb").read()).hexdigest()}}
    good = True
    for (dev, tree), sums in wanted.items():
        seen = report["files"].get((dev, tree), {})
        for name, digest in sums.items():
            ok = seen.get(name) == digest
            good &= ok
            print(f"  {'ok  ' if ok else 'BAD '} /dev/{dev} ({tree}) {name}")
    print(f"  labels: {report['labels']}")
    print("\n== stopped: the hook removed the images ==")
    run("ls", "-l", "/run/payloadhook")
    run("virsh", "undefine", NAME)
    leave_vm1(kernel, initrd, seed)
    shutil.rmtree(seed)
    print("\ndemo: " + ("the guest read every file of both payloads" if good else "MISMATCH"))
    print(f"""
Left for you to try the Quick start on: the domain {TRY_NAME}, shut off. It is the same tiny guest
(TCG, no disk of its own): it prints what it finds on its CD-ROM (sr0), then powers off.
    mkdir seed && echo 'instance-id: try' > seed/meta-data
    payloadhook attach {TRY_NAME} --type cdrom --label cidata ./seed/
    payloadhook show {TRY_NAME}
    virsh start {TRY_NAME} --console     # the guest's report; it powers off by itself (Ctrl+] leaves)

The demo's guest console: {CONSOLE}
What the demo leaves behind, and how to remove it:
    {"the domain " + TRY_NAME:40} virsh undefine {TRY_NAME}
    {"the tiny guest's kernel and initramfs":40} rm -r {GUEST_CACHE}
    {"the console log above":40} rm {CONSOLE}""")
    return 0 if good else 1


def leave_vm1(kernel: str, initrd: str, seed: str) -> None:
    """Define vm1 (again, when it exists: under its UUID, so that the redefinition replaces it)."""
    existing = subprocess.run(["virsh", "domuuid", TRY_NAME], capture_output=True, text=True)
    uuid = f"<uuid>{existing.stdout.strip()}</uuid>" if existing.returncode == 0 else ""
    xml = os.path.join(seed, f"{TRY_NAME}.xml")
    with open(xml, "w") as stream:
        stream.write(f"""<domain type='qemu'>
  <name>{TRY_NAME}</name>{uuid}
  <memory unit='MiB'>256</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{kernel}</kernel><initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 payloadtest.devs=sr0</cmdline></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>
  <devices><serial type='pty'/><console type='pty'/><memballoon model='none'/></devices>
</domain>
""")
    print(f"\n== a domain to try: {TRY_NAME} ==")
    run("virsh", "define", xml)


if __name__ == "__main__":
    sys.exit(main())
