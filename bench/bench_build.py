"""``payloadhook build`` against the C tools an administrator would run: a 1,000-file, 10 MB
CD-ROM image against ``genisoimage -J -R``, and a 100-file, 1 MB floppy against ``mkfs.vfat``
and ``mcopy``. Goals (the issue's table): the CD-ROM build at most 1.0 times genisoimage, its
peak memory at most 14 MiB.

Each command runs alternately with its peer, N times; the ratios are of CPU time (user +
system of the command and the children it waited for), best of N, which a loaded machine
disturbs least; medians of wall time are printed beside them. Peak memory is the largest
``ru_maxrss`` over the runs.

Usage: python3 bench/bench_build.py [--runs N] [--files N] [--megabytes N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from common import bench_python, record, run_usage

from payloadhook.install import COMMAND_IMPORTS, command_script, import_path

#: The goals of the issue's table (bench/table.py holds them too, for the final table).
GOAL_RATIO = 1.0
GOAL_PEAK_MIB = 14.0


def make_tree(tree: str, files: int, total: int, dirs: int) -> None:
    size = total // files
    for index in range(files):
        path = os.path.join(tree, f"dir{index % dirs:02}", f"file-{index:04}.bin")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as stream:
            stream.write(os.urandom(size))


def compare(name: str, ours: list[str], theirs: list[str], runs: int) -> dict:
    """Run both alternately (after one warm-up each); CPU best of N, wall medians, peaks."""
    run_usage(ours)
    run_usage(theirs)
    a, b = [], []
    for _ in range(runs):
        a.append(run_usage(ours))
        b.append(run_usage(theirs))
    result = {
        "name": name,
        "ours_cpu_ms": min(r[2] for r in a) * 1000, "theirs_cpu_ms": min(r[2] for r in b) * 1000,
        "ours_ms": statistics.median(r[0] for r in a) * 1000, "theirs_ms": statistics.median(r[0] for r in b) * 1000,
        "ours_kib": max(r[1] for r in a), "theirs_kib": max(r[1] for r in b),
    }
    result["ratio"] = result["ours_cpu_ms"] / result["theirs_cpu_ms"]
    print(f"{name:40} CPU {result['ours_cpu_ms']:7.1f} / {result['theirs_cpu_ms']:7.1f} ms  "
          f"ratio {result['ratio']:5.2f}   wall {result['ours_ms']:7.1f} / {result['theirs_ms']:7.1f} ms   "
          f"peak {result['ours_kib'] / 1024:5.1f} / {result['theirs_kib'] / 1024:5.1f} MiB", flush=True)
    return result


def main(runs: int, files: int, megabytes: int) -> dict:
    python = bench_python()
    with tempfile.TemporaryDirectory() as work:
        tree = os.path.join(work, "tree")
        make_tree(tree, files, megabytes * 1024 * 1024, 20)
        small = os.path.join(work, "small")
        floppy_files = max(1, files // 10)
        make_tree(small, floppy_files, 1024 * 1024 * megabytes // 10, 5)
        # the command as the RPM writes it (packaging/payloadhook.spec), for this interpreter
        command = os.path.join(work, "payloadhook")
        with open(command, "w") as stream:
            stream.write(command_script(python, import_path(python, COMMAND_IMPORTS)))
        os.chmod(command, 0o755)
        print(f"\n== payloadhook build against the C tools (CPU best of {runs}, wall median; alternating) ==")
        print(f"{'':40} {'payloadhook / peer':>27}")
        iso = compare(f"cdrom, {files} files, {megabytes} MB",
                      [command, "build", "--type", "cdrom", "-o", f"{work}/ours.iso", tree],
                      ["genisoimage", "-quiet", "-J", "-R", "-input-charset", "utf-8", "-o", f"{work}/theirs.iso",
                       tree], runs)
        img = f"{work}/theirs.img"
        peer = (f"rm -f {img} && mkfs.vfat -C -n PAYLOAD {img} 1440 >/dev/null && "
                f"mcopy -i {img} -s {small}/* ::")
        floppy = compare(f"floppy, {floppy_files} files, {megabytes * 1024 // 10} KiB",
                         [command, "build", "--type", "floppy", "-o", f"{work}/ours.img", small],
                         ["/bin/sh", "-c", peer], runs)
        bare = run_usage([python, "-I", "-c", "import payloadhook.cli, payloadhook.local.files, payloadhook.media.iso"])[1]
        payload = megabytes * 1024
        peak = iso["ours_kib"] / 1024
        print(f"cdrom build / genisoimage, CPU time: {iso['ratio']:.2f} (goal ≤ {GOAL_RATIO:.1f}: "
              f"{'met' if iso['ratio'] <= GOAL_RATIO else 'not met'})")
        print(f"cdrom build's peak memory: {peak:.1f} MiB (goal ≤ {GOAL_PEAK_MIB:.0f} MiB: "
              f"{'met' if peak <= GOAL_PEAK_MIB else 'not met'}); the interpreter with its imports "
              f"{bare / 1024:.1f} MiB, payload {payload / 1024:.1f} MiB")
        print(f"floppy build / mkfs.vfat + mcopy, CPU time: {floppy['ratio']:.2f}")
        record("build_ratio", iso["ratio"])
        record("build_peak_mib", peak)
        return iso


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--megabytes", type=int, default=10)
    arguments = parser.parse_args()
    main(arguments.runs, arguments.files, arguments.megabytes)
