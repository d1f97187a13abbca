"""A tiny Linux guest that reports what it finds on its CD-ROM and floppy.

Built from Debian's own packages: the kernel of ``linux-image-amd64`` and an
initramfs of busybox-static plus the few modules needed to read an IDE CD-ROM
(ISO 9660 with Rock Ridge and Joliet), a SATA CD-ROM and a floppy (VFAT). The
kernel, written by nobody here, judges our images.

Its init prints on the serial console, for each device named in
``payloadtest.devs=`` (comma-separated, e.g. ``sr0,fd0``)::

    PH-LABEL <dev> <label>
    PH-FILE <dev> <tree> <sha256> <path>      tree: rock, joliet or vfat
    PH-ROUND <n>                              after each pass over every device
    PH-DONE

and, before the devices, for each fw_cfg entry named in ``payloadtest.fwcfg=`` (its
``/sys/firmware/qemu_fw_cfg/by_name/NAME/raw``)::

    PH-FWCFG <name> <sha256 | MISSING>

and with ``payloadtest.seed=NAME,...``, after DHCP on its virtio NIC, each file fetched from
http://169.254.169.254/NAME (``payloadtest.tries=N`` attempts a second apart, default 20)::

    PH-SERIAL <SMBIOS system serial>
    PH-NET <address/prefix>
    PH-SEED <name> <sha256 | FAIL>

``payloadtest.spoof=MAC,ADDRESS/PREFIX,GATEWAY`` takes that MAC and address instead of a
lease (a guest posing as another); ``payloadtest.hold=SECONDS`` waits that long before
powering off (a guest that must still run while another asks).

then powers off. With ``payloadtest.loop=1`` it repeats every second instead
(for save/restore tests) and never powers off.

The kernel and initramfs must be readable by QEMU's user (libvirt-qemu): build them in a
directory outside any clone under /root, by default paths.GUEST_CACHE.

Usage: python3 tests/harness/tinyguest.py [CACHE_DIR]   (prints the kernel and initrd paths)
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    from tests.harness.paths import GUEST_CACHE, qemu_readable_dir
except ImportError:   # run as a script
    from paths import GUEST_CACHE, qemu_readable_dir

MODULES = ["sr_mod", "ata_piix", "ahci", "floppy", "isofs", "vfat", "nls_utf8", "nls_cp437", "nls_ascii",
           "nls_iso8859-1",
           # fw_cfg entries in /sys/firmware/qemu_fw_cfg (a module in Debian's kernel)
           "qemu_fw_cfg",
           # a virtio NIC, and the packet sockets udhcpc needs
           "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "failover",
           "net_failover", "virtio_net", "af_packet"]

#: busybox udhcpc's script: the lease's address and default route on the interface.
UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""

INIT = r"""#!/bin/sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /mnt/m /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do insmod /lib/modules/$m.ko 2>/dev/null; done
devs=$(sed -n 's/.*payloadtest\.devs=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
loop=$(sed -n 's/.*payloadtest\.loop=\([0-9]*\).*/\1/p' /proc/cmdline)
for f in $(sed -n 's/.*payloadtest\.fwcfg=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' '); do
  p=/sys/firmware/qemu_fw_cfg/by_name/$f/raw
  i=0
  while [ ! -e "$p" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  if [ -e "$p" ]; then echo "PH-FWCFG $f $(sha256sum "$p" | cut -d' ' -f1)"; else echo "PH-FWCFG $f MISSING"; fi
done
seed=$(sed -n 's/.*payloadtest\.seed=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
tries=$(sed -n 's/.*payloadtest\.tries=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$seed" ]; then
  echo "PH-SERIAL $(cat /sys/class/dmi/id/product_serial 2>/dev/null)"
  ip link set lo up
  i=0
  while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  spoof=$(sed -n 's/.*payloadtest\.spoof=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
  if [ -n "$spoof" ]; then
    # posing as another domain: its MAC, address/prefix and gateway, no DHCP
    set -- $spoof
    ip link set eth0 address "$1"
    ip link set eth0 up
    ip addr add "$2" dev eth0
    ip route add default via "$3" dev eth0
  else
    ip link set eth0 up
    udhcpc -i eth0 -n -q -t 10 -T 2 -s /bin/udhcpc.script >/dev/null 2>&1
  fi
  echo "PH-NET $(ip -4 -o addr show eth0 | awk '{print $4}')"
  for name in $seed; do
    i=0 got=FAIL
    while [ $i -lt "${tries:-20}" ]; do
      rm -f /tmp/seed
      # timeout: busybox wget's own -T crashed here
      if timeout 10 wget -q -O /tmp/seed "http://169.254.169.254/$name" 2>/dev/null; then
        got=$(sha256sum /tmp/seed | cut -d' ' -f1); break
      fi
      i=$((i+1)); sleep 1
    done
    echo "PH-SEED $name $got"
  done
fi
for d in $devs; do
  i=0
  while [ ! -b /dev/$d ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
done
report() {
  dev=$1 tree=$2
  find /mnt/m -type f | sort | while IFS= read -r f; do
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    echo "PH-FILE $dev $tree $sum ${f#/mnt/m/}"
  done
}
n=0
while :; do
  n=$((n+1))
  # (each pass reads the devices again, not the page cache: after a restore that matters)
  echo 3 > /proc/sys/vm/drop_caches
  for d in $devs; do
    case $d in
      fd*) label=$(dd if=/dev/$d bs=1 skip=43 count=11 2>/dev/null) ;;
      *) label=$(dd if=/dev/$d bs=1 skip=32808 count=32 2>/dev/null) ;;
    esac
    label=$(echo "$label" | sed 's/ *$//')
    echo "PH-LABEL $d $label"
    case $d in
      fd*)
        mount -t vfat -o ro,utf8 /dev/$d /mnt/m && { report $d vfat; umount /mnt/m; } ;;
      *)
        mount -t iso9660 -o ro /dev/$d /mnt/m && { report $d rock; umount /mnt/m; }
        mount -t iso9660 -o ro,norock,iocharset=utf8 /dev/$d /mnt/m && { report $d joliet; umount /mnt/m; } ;;
    esac
  done
  echo "PH-ROUND $n"
  [ "$loop" = 1 ] || break
  sleep 1
done
echo PH-DONE
hold=$(sed -n 's/.*payloadtest\.hold=\([0-9]*\).*/\1/p' /proc/cmdline)
[ -n "$hold" ] && sleep "$hold"
poweroff -f
"""


def _run(*argv: str, cwd: str | None = None) -> None:
    """Run quietly; a failure raises with the command's output."""
    result = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (status {result.returncode}): {result.stdout.strip()}")


def _kernel_package(workdir: str) -> str:
    found = glob.glob(os.path.join(workdir, "linux-image-*.deb"))
    if found:
        return found[0]
    depends = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], check=True,
                             capture_output=True, text=True).stdout
    match = re.search(r"Depends: (linux-image-[0-9][^\s]*)", depends)
    if not match:
        raise RuntimeError("apt-cache does not know linux-image-amd64; run apt-get update")
    # as root: apt's sandbox user _apt may not write here (it would warn, then do so as root)
    _run("apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", match.group(1), cwd=workdir)
    return glob.glob(os.path.join(workdir, "linux-image-*.deb"))[0]


def _depends(module_path: str) -> list[str]:
    with open(module_path, "rb") as stream:
        match = re.search(rb"\x00depends=([^\x00]*)\x00", stream.read())
    return [d.decode() for d in match.group(1).split(b",") if d] if match else []


def build(cache_dir: str = GUEST_CACHE) -> tuple[str, str]:
    """Build (once) and return (kernel, initrd) paths under cache_dir, readable by QEMU."""
    recipe = hashlib.sha256((INIT + " ".join(MODULES) + UDHCPC_SCRIPT).encode()).hexdigest()[:12]
    cache_dir = qemu_readable_dir(os.path.join(cache_dir, recipe))
    kernel = os.path.join(cache_dir, "vmlinuz")
    initrd = os.path.join(cache_dir, "initrd.gz")
    if os.path.exists(kernel) and os.path.exists(initrd):
        return kernel, initrd
    with tempfile.TemporaryDirectory(dir=cache_dir) as work:
        os.chmod(work, 0o755)
        deb = _kernel_package(work)
        tree = os.path.join(work, "x")
        _run("dpkg", "-x", deb, tree)
        (vmlinuz,) = glob.glob(os.path.join(tree, "boot", "vmlinuz-*"))
        modules = {os.path.basename(p)[:-3].replace("-", "_"): p
                   for p in glob.glob(os.path.join(tree, "lib", "modules", "*", "kernel", "**", "*.ko"),
                                      recursive=True)}
        order: list[str] = []

        def add(name: str) -> None:
            key = name.replace("-", "_")
            if key in order or key not in modules:
                return
            for dep in _depends(modules[key]):
                add(dep)
            order.append(key)

        for name in MODULES:
            add(name)
        root = os.path.join(work, "root")
        for sub in ("bin", "etc", "lib/modules", "proc", "sys", "dev", "mnt/m"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", os.path.join(root, "bin", "busybox"))
        for key in order:
            shutil.copy(modules[key], os.path.join(root, "lib", "modules", key + ".ko"))
        with open(os.path.join(root, "etc", "modules"), "w") as stream:
            stream.write("\n".join(order) + "\n")
        with open(os.path.join(root, "init"), "w") as stream:
            stream.write(INIT)
        os.chmod(os.path.join(root, "init"), 0o755)
        with open(os.path.join(root, "bin", "udhcpc.script"), "w") as stream:
            stream.write(UDHCPC_SCRIPT)
        os.chmod(os.path.join(root, "bin", "udhcpc.script"), 0o755)
        os.symlink("busybox", os.path.join(root, "bin", "sh"))
        files = subprocess.run(["find", "."], cwd=root, check=True, capture_output=True).stdout
        archive = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root, input=files,
                                 check=True, capture_output=True).stdout
        subprocess.run(["gzip", "-1"], input=archive, check=True, stdout=open(initrd + ".tmp", "wb"))
        shutil.copy(vmlinuz, kernel + ".tmp")
        for path in (kernel, initrd):
            os.chmod(path + ".tmp", 0o644)
            os.rename(path + ".tmp", path)
    return kernel, initrd


def round_text(text: str, round_number: int) -> str:
    """The console lines of the guest's pass ``round_number`` (1 is the first)."""
    text = text.replace("\r", "")
    begin = 0
    if round_number > 1:
        marker = f"PH-ROUND {round_number - 1}\n"
        begin = text.find(marker)
        if begin < 0:
            return ""
        begin += len(marker)
    end = text.find(f"PH-ROUND {round_number}\n", begin)
    return text[begin:end + 1] if end >= 0 else ""


def parse_console(text: str) -> dict:
    """The guest's report: {'labels': {dev: label}, 'files': {(dev, tree): {path: sha}}, 'rounds': n, 'done': bool}."""
    report: dict = {"labels": {}, "files": {}, "rounds": 0, "done": False, "fwcfg": {}, "seed": {},
                    "serial": None, "net": None}
    # the last piece is "" or a line the guest is still writing (a log read while it runs)
    for line in text.replace("\r", "").split("\n")[:-1]:
        if line.startswith("PH-LABEL "):
            _, dev, *label = line.split(" ", 2)
            report["labels"][dev] = label[0] if label else ""
        elif line.startswith("PH-FILE "):
            _, dev, tree, sha, path = line.split(" ", 4)
            report["files"].setdefault((dev, tree), {})[path] = sha
        elif line.startswith("PH-ROUND "):
            report["rounds"] = int(line.split()[1])
        elif line == "PH-DONE":
            report["done"] = True
        elif line.startswith("PH-FWCFG "):
            _, name, sha = line.split(" ", 2)
            report["fwcfg"][name] = sha
        elif line.startswith("PH-SEED "):
            _, name, sha = line.split(" ", 2)
            report["seed"][name] = sha
        elif line.startswith("PH-SERIAL "):
            report["serial"] = line[len("PH-SERIAL "):]
        elif line.startswith("PH-NET "):
            report["net"] = line[len("PH-NET "):]
    return report


if __name__ == "__main__":
    print(*build(*sys.argv[1:2]), sep="\n")
