"""A Debian 12 root made with debootstrap, in which the package tests install, remove and purge.

The host's dpkg database, its libvirtd and its /etc stay as they are: every command runs
``chroot``ed into a copy of a cached base, in mount and PID namespaces of its own (its /proc,
/sys and /dev/pts mounts, and any daemon it starts, end with the command), with an empty
environment. The base is debootstrap's
minbase, with the host's package sources, a policy-rc.d that starts no daemon, and the
package's dependencies already installed (so that a test's snapshot of the file system is
taken with them in place). It is built once into ``BASE`` (about 2 minutes) and copied for
each test module; the host's downloaded packages are hard-linked into the copy's apt cache.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess

#: What the base holds besides minbase: the package's Depends (debian/control), Debian's
#: tmpfiles runner without systemd (so that the package's tmpfiles entry is applied), and
#: what the old installation needs (a virtual environment and pip, for the upgrade test).
PACKAGES = ("libvirt-daemon", "python3-libvirt", "python3-lxml", "python3-defusedxml", "python3-cryptography",
            "python3-yaml", "systemd-standalone-tmpfiles", "python3-venv", "python3-pip", "python3-setuptools",
            "python3-wheel", "python3-apt", "libvirt-daemon-system")
# (python3-apt for Ansible's apt module; libvirt-daemon-system, with its users and the qemu driver, for
# the libvirtd that the role's check reaches)
#: The cached base, named for what it holds; ``.complete`` inside it marks a finished build.
BASE = "/var/cache/payloadhook-tests/debian-base-" + hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:12]
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
       "HOME": "/root"}
#: What a file-system snapshot leaves out: the kernel's, dpkg's and apt's own state and logs.
NOT_SNAPSHOT = ("proc", "sys", "dev", "tmp", "var/lib/dpkg", "var/lib/apt", "var/cache", "var/log", "root")


def _mirror() -> str:
    for sources in glob.glob("/etc/apt/sources.list.d/*.sources"):
        with open(sources) as stream:
            for line in stream:
                if line.startswith("URIs:"):
                    return line.split()[1]
    return "http://deb.debian.org/debian"


def _chroot(root: str, script: str, check: bool = True, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    mounts = (f"mount -t proc proc {root}/proc && mount -t sysfs -o ro sysfs {root}/sys"
              f" && mount -t devpts -o newinstance,ptmxmode=0666 devpts {root}/dev/pts"
              f' && exec chroot {root} /bin/sh -c "$0"')
    # a PID namespace too: daemons the script starts (install-debian's libvirtd) end with it
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "/bin/sh", "-c",
                             mounts, script],
                            env=ENV, stdin=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"in the chroot, {script!r} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def build_base() -> str:
    if os.path.exists(os.path.join(BASE, ".complete")):
        return BASE
    for stale in glob.glob(os.path.join(os.path.dirname(BASE), "debian-base-*")):
        shutil.rmtree(stale, ignore_errors=True)    # a base for another package list, or a broken build
    os.makedirs(os.path.dirname(BASE), exist_ok=True)
    subprocess.run(["debootstrap", "--variant=minbase", "bookworm", BASE, _mirror()], check=True,
                   capture_output=True)
    os.unlink(os.path.join(BASE, "etc/apt/sources.list"))
    for sources in glob.glob("/etc/apt/sources.list.d/*.sources"):
        shutil.copy(sources, os.path.join(BASE, "etc/apt/sources.list.d"))
    with open(os.path.join(BASE, "usr/sbin/policy-rc.d"), "w") as stream:
        stream.write("#!/bin/sh\n# the package tests' chroot: no daemon starts here\nexit 101\n")
    os.chmod(os.path.join(BASE, "usr/sbin/policy-rc.d"), 0o755)
    root = DebRoot(BASE)
    root.run("apt-get -q update && apt-get -q install -y --no-install-recommends " + " ".join(PACKAGES)
             + " && apt-get clean")
    open(os.path.join(BASE, ".complete"), "w").close()
    return BASE


class DebRoot:
    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def copy(cls, path: str) -> DebRoot:
        """A fresh copy of the base at ``path``, with the host's resolver and downloaded packages."""
        base = build_base()
        if os.path.exists(path):
            shutil.rmtree(path)
        # its parent may not exist yet: on a fresh machine the first test to run may be this one
        os.makedirs(os.path.dirname(path), exist_ok=True)
        subprocess.run(["cp", "-a", base, path], check=True)
        shutil.copy("/etc/resolv.conf", os.path.join(path, "etc/resolv.conf"))
        archives = os.path.join(path, "var/cache/apt/archives")
        for deb in glob.glob("/var/cache/apt/archives/*.deb"):
            try:
                os.link(deb, os.path.join(archives, os.path.basename(deb)))
            except OSError:
                break    # another file system: apt downloads instead
        return cls(path)

    def run(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        """``script`` run by /bin/sh in the root, standard input closed (nothing may ask)."""
        return _chroot(self.path, script, check)

    def file(self, inside: str) -> str:
        return os.path.join(self.path, inside.lstrip("/"))

    def snapshot(self) -> set[str]:
        """Every path in the root (files, links, directories), but the state NOT_SNAPSHOT names."""
        paths = set()
        skip = {os.path.join(self.path, part) for part in NOT_SNAPSHOT}
        for directory, subdirs, files in os.walk(self.path):
            subdirs[:] = [d for d in subdirs if os.path.join(directory, d) not in skip]
            for name in subdirs + files:
                paths.add("/" + os.path.relpath(os.path.join(directory, name), self.path))
        return paths

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def beside(roots: list[DebRoot], argv: list[str], env: dict[str, str], start_libvirtd: bool = False
           ) -> subprocess.CompletedProcess:
    """``argv`` run on the host, beside the roots: in mount and PID namespaces of its own in
    which each root has its /proc, /sys and /dev/pts (for a tool that reaches into them, such
    as Ansible's chroot connection), and, with ``start_libvirtd``, a libvirtd of each root's
    own running (they end with the namespace)."""
    steps = []
    for root in roots:
        steps.append(f"mount -t proc proc {root.path}/proc && mount -t sysfs -o ro sysfs {root.path}/sys"
                     f" && mount -t devpts -o newinstance,ptmxmode=0666 devpts {root.path}/dev/pts")
        if start_libvirtd:
            steps.append(f"mkdir -p {root.path}/var/log/libvirt && chroot {root.path} /usr/sbin/libvirtd -d")
    script = " && ".join(steps + ['exec "$@"'])
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "/bin/sh", "-c",
                           script, "sh", *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
