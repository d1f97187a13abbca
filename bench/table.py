"""The issue's table of figures, each beside its goal, from what the benchmarks recorded.

bench/run sets $BENCH_RESULTS to a file, each benchmark appends its figures there
(common.record), and this prints them. A figure measured more than once (the no-payload
ratio, once per operation) is shown as its range, and held to its goal at its worst.

Usage: python3 bench/table.py RESULTS
"""

from __future__ import annotations

import json
import sys

#: (figure, what it is, goal as text, the worst value the goal allows, format)
ROWS = [
    ("no_payload", "any operation on a domain without payload / `python3 -I -c pass`", "≤ 0.7 on every operation",
     0.7, "{:.2f}"),
    ("prepare_cdrom", "`prepare`, 16 KiB CD-ROM / plain hook", "≤ 0.7", 0.7, "{:.2f}"),
    ("prepare_floppy", "`prepare`, 16 KiB floppy / plain hook", "≤ 0.8", 0.8, "{:.2f}"),
    ("sealed_ms", "sealed 16 KiB CD-ROM `prepare` − unsealed (ms of CPU time, best of N)", "≤ +2 ms", 2.0, "{:+.1f}"),
    ("build_ratio", "`build`, 1,000 files, 10 MB / `genisoimage -J -R` (CPU time)", "≤ 1.0", 1.0, "{:.2f}"),
    ("build_peak_mib", "that build's peak memory (MiB)", "≤ 14 MiB", 14.0, "{:.1f}"),
    ("scale_cdrom_plain", "10,000 files / 1,000: CD-ROM, plain names", "≤ 11", 11.0, "{:.1f}"),
    ("scale_cdrom_shared", "10,000 files / 1,000: CD-ROM, shared prefix", "≤ 11", 11.0, "{:.1f}"),
    ("scale_floppy_plain", "10,000 files / 1,000: floppy, plain names", "≤ 11", 11.0, "{:.1f}"),
    ("scale_floppy_shared", "10,000 files / 1,000: floppy, shared prefix", "≤ 11", 11.0, "{:.1f}"),
    ("largest_peak_mib", "hook `prepare` of the largest document the limits allow (8 MiB): peak (MiB)", "≤ 50 MiB",
     50.0, "{:.1f}"),
    ("largest_seconds", "the same: time (s)", "≤ 0.7 s", 0.7, "{:.2f}"),
    ("start_ms", "`virsh start` with a 16 KiB payload − without (ms)", "≤ +20 ms", 20.0, "{:+.1f}"),
]


def main(path: str) -> None:
    values: dict[str, list[float]] = {}
    with open(path) as stream:
        for line in stream:
            entry = json.loads(line)
            values.setdefault(entry["figure"], []).append(entry["value"])
    print("\n== the issue's table ==")
    print("| figure | measured | goal | met |")
    print("| --- | --- | --- | --- |")
    for figure, what, goal, limit, shape in ROWS:
        found = values.get(figure)
        if not found:
            print(f"| {what} | not measured | {goal} | |")
            continue
        low, high = min(found), max(found)
        shown = shape.format(high) if low == high else f"{shape.format(low)}–{shape.format(high)}"
        print(f"| {what} | {shown} | {goal} | {'yes' if high <= limit else 'no'} |")


if __name__ == "__main__":
    main(sys.argv[1])
