"""Guest disks for the injection tests, made and read without libguestfs: an ext4 file
system by ``mkfs.ext4 -d`` (in a qcow2), an NTFS one by ``mkntfs`` with a Windows tree
(ntfs-3g, in a private mount namespace), and their files read back with ``debugfs`` and
``ntfscat``."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess

NTFS_OFFSET_MIB = 1


def run(*argv: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=True, capture_output=True, **options)


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def linux_tree(top) -> None:
    """What libguestfs's inspection takes for a Debian root, and files to keep an eye on."""
    for sub in ("etc", "bin", "usr/bin", "var/lib", "root", "home/u"):
        os.makedirs(os.path.join(top, sub), exist_ok=True)
    with open(os.path.join(top, "etc/os-release"), "w") as stream:
        stream.write('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                     "ID=debian\n")
    with open(os.path.join(top, "etc/debian_version"), "w") as stream:
        stream.write("12.0\n")
    with open(os.path.join(top, "etc/fstab"), "w") as stream:
        stream.write("/dev/sda / ext4 defaults 0 1\n")
    with open(os.path.join(top, "home/u/notes"), "w") as stream:
        stream.write("keep me\n")
    with open(os.path.join(top, "root/blob"), "wb") as stream:
        stream.write(os.urandom(200_000))
    os.symlink("/root", os.path.join(top, "etc/evil"))      # a guest's link, never followed


def linux_qcow2(directory, name: str = "linux", size: str = "64M") -> str:
    """A qcow2 disk holding one ext4 file system (no partition table) made by mkfs.ext4 -d."""
    tree = os.path.join(directory, name + "-tree")
    linux_tree(tree)
    raw = os.path.join(directory, name + ".raw")
    run("truncate", "-s", size, raw)
    run("mkfs.ext4", "-q", "-F", "-d", tree, raw)
    image = os.path.join(directory, name + ".qcow2")
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image)
    os.unlink(raw)
    return image


def as_raw(image: str, raw: str) -> str:
    run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, raw)
    return raw


def debugfs(raw: str, request: str) -> bytes:
    return run("debugfs", "-R", request, raw).stdout


def debugfs_cat(raw: str, path: str) -> bytes:
    return debugfs(raw, f"cat {path}")


def debugfs_tree(raw: str, out: str) -> dict[str, str]:
    """Every file of the file system, by path, as the SHA-256 of its bytes (debugfs rdump)."""
    os.makedirs(out)
    run("debugfs", "-R", f"rdump / {out}", raw)
    found = {}
    for top, dirs, files in os.walk(out):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = os.path.join(top, name)
            relative = os.path.relpath(path, out)
            found[relative] = ("link:" + os.readlink(path)) if os.path.islink(path) else sha256(path)
        for name in dirs:
            found.setdefault(os.path.relpath(os.path.join(top, name), out) + "/", "dir")
    return found


def pe_executable() -> bytes:
    """The headers of a PE32+ console executable for x86-64: what inspection reads of cmd.exe
    to tell Windows's architecture (libguestfs runs file(1) on it)."""
    dos = b"MZ" + b"\0" * 58 + struct.pack("<I", 0x40)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 0, 0, 0, 0, 0xF0, 0x22)
    optional = bytearray(struct.pack("<H", 0x20B) + b"\0" * (0xF0 - 2))
    struct.pack_into("<H", optional, 68, 3)
    return dos + coff + bytes(optional)


def windows_raw(directory, name: str = "windows") -> str:
    """A raw disk with an MBR and one NTFS partition (mkntfs) holding Windows/System32 (config,
    cmd.exe) and a user's file: as far as inspection goes without registry hives."""
    fs = os.path.join(directory, name + ".ntfs")
    run("truncate", "-s", "40M", fs)
    run("mkntfs", "-q", "-F", "-Q", "-L", "WIN", fs)
    mnt = os.path.join(directory, name + "-mnt")
    exe = os.path.join(directory, "cmd.exe")
    with open(exe, "wb") as stream:
        stream.write(pe_executable())
    os.makedirs(mnt, exist_ok=True)
    # ntfs-3g in a mount namespace of its own: the mount is never seen outside, and ends with it
    run("unshare", "-m", "sh", "-ec",
        'ntfs-3g "$1" "$2"; mkdir -p "$2/Windows/System32/config" "$2/Users/Default"; cp "$3" "$2/Windows/System32/";'
        ' echo "keep me" > "$2/Users/Default/notes.txt"; umount "$2"', "sh", fs, mnt, exe)
    disk = os.path.join(directory, name + ".raw")
    run("truncate", "-s", "48M", disk)
    run("sfdisk", "-q", disk, input=b"label: dos\nstart=2048, type=7\n")
    run("dd", f"if={fs}", f"of={disk}", "bs=1M", f"seek={NTFS_OFFSET_MIB}", "conv=notrunc", "status=none")
    os.unlink(fs)
    return disk


def ntfs_volume(disk: str, out: str) -> str:
    """The NTFS partition of a disk of :func:`windows_raw`, copied out for ntfscat."""
    run("dd", f"if={disk}", f"of={out}", "bs=1M", f"skip={NTFS_OFFSET_MIB}", "count=40", "status=none")
    return out


def ntfs_cat(disk: str, path: str, scratch: str) -> bytes:
    return run("ntfscat", ntfs_volume(disk, scratch), path).stdout


def ntfs_put(disk: str, local: str, path: str, scratch: str) -> None:
    """Overwrite the file ``path`` of the volume with ``local`` (ntfscp), as a guest would change it."""
    volume = ntfs_volume(disk, scratch)
    run("ntfscp", "-f", volume, local, path)
    run("dd", f"if={volume}", f"of={disk}", "bs=1M", f"seek={NTFS_OFFSET_MIB}", "conv=notrunc", "status=none")
