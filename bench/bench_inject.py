"""payloadhook inject against virt-copy-in: the same files (N small files in one directory)
into the same image (a fresh copy of one ext4 qcow2 for every run), each with one appliance
launch, side by side. Both run libguestfs's direct backend with the same KVM-or-TCG choice
(inject makes it itself; virt-copy-in is given it: on a host whose /dev/kvm cannot run guests
it would otherwise hang). What inject adds to the launch: libvirt's description of the domain
and its checks, the record defined, a temporary name and a rename per file.

    bench_inject.py [--runs N] [--counts 1 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import REPO  # noqa: F401  (puts the repository on sys.path)

from payloadhook.inject.appliance import kvm_runs_guests
from tests.harness.guestimages import linux_qcow2
from tests.harness.libvirtd import Libvirtd
from tests.harness.paths import WORK_ROOT, qemu_readable_dir


def timed(argv: list[str], env: dict) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"bench_inject: {argv[0]} {argv[1] if len(argv) > 1 else ''} failed: "
                 f"{result.stderr.decode(errors='replace').strip()[:400]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 1000])
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-inject-", dir=qemu_readable_dir(WORK_ROOT))
    os.chmod(work, 0o755)
    daemon = Libvirtd().start(hook=False)
    try:
        base = linux_qcow2(work, "base")
        image = os.path.join(work, "disk.qcow2")
        xml = os.path.join(work, "vm.xml")
        with open(xml, "w") as stream:
            stream.write(f"""<domain type='qemu'><name>bench-inject</name><uuid>6d1c0b2a-5e4f-4a3b-9c8d-7e6f5a4b3c2d</uuid><memory unit='MiB'>256</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk type='file' device='disk'>
  <driver name='qemu' type='qcow2'/><source file='{image}'/><target dev='vda' bus='virtio'/></disk></devices></domain>""")
        daemon.virsh("define", xml)
        env = {**os.environ, "LC_ALL": "C", "LIBGUESTFS_BACKEND": "direct"}
        ours = [sys.executable, "-m", "payloadhook", "-c", daemon.uri, "inject", "bench-inject", "--no-seal",
                "--into", "/var/lib/bench"]
        theirs_env = dict(env)
        if not kvm_runs_guests():
            theirs_env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
        print(f"bench_inject: {'TCG' if 'LIBGUESTFS_BACKEND_SETTINGS' in theirs_env else 'KVM'}, "
              f"{args.runs} run(s) each, medians in seconds")
        for count in args.counts:
            source = os.path.join(work, f"files-{count}", "bench")
            os.makedirs(source)
            for index in range(count):
                with open(os.path.join(source, f"f{index:04d}"), "wb") as stream:
                    stream.write(os.urandom(100))
            times: dict[str, list[float]] = {"payloadhook inject": [], "virt-copy-in": []}
            for _ in range(args.runs):
                shutil.copyfile(base, image)
                times["payloadhook inject"].append(timed(ours + [source + "/"], env))
                shutil.copyfile(base, image)
                times["virt-copy-in"].append(timed(["virt-copy-in", "--format=qcow2", "-a", image, source,
                                                    "/var/lib"], theirs_env))
                daemon.virsh("define", xml)     # without the record, for the next run
            ours_s, theirs_s = (statistics.median(v) for v in times.values())
            print(f"  {count:5d} file(s): payloadhook inject {ours_s:6.1f}  virt-copy-in {theirs_s:6.1f}  "
                  f"ratio {ours_s / theirs_s:4.2f}")
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
