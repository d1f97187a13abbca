"""How the work grows with the input. Prints figures; asserts nothing.

1. Building a 10,000-file payload against a 1,000-file one (the model's checks and the
   image written to /dev/null, in this process, the collector off as in the hook): the ratio of the two CPU times, for a CD-ROM and a floppy, with
   plain names and with names that share one prefix (every one needs a numbered name:
   the case that was quadratic). 10 is linear.
2. Peak memory (``ru_maxrss`` from wait4) of the hook's ``prepare``, run as libvirt runs
   it, on the largest domain the default limits let through: max_payloads payloads
   (CD-ROMs and two floppies), each with up to max_files files in max_directories
   directories, and the rest of the document filled with content, for a document of
   libvirt's 4 MiB and one of the hook's own cap.

Usage: python3 bench/bench_scale.py [--runs N] [--small N]
"""

from __future__ import annotations

import argparse
import base64
import gc
import os
import tempfile
import time

from common import bench_python, installed_hook, record, run_measured, run_usage

from payloadhook import NAMESPACE
from payloadhook.config import Config
from payloadhook.media import write_image
from payloadhook.model import Payload, PayloadFile
from payloadhook.xmlsafe import MAX_XML_BYTES

LIBVIRT_XML_BYTES = 4 * 1024 * 1024


def names(payload_type: str, count: int, shared: bool) -> list[str]:
    """``count`` file names in 100 directories: plain 8.3-like ones, or long ones sharing a prefix."""
    if shared:
        return [f"d{i % 100:02}/a-name-sharing-its-prefix-" + "x" * 50 + f"-{i:05}.txt" for i in range(count)] \
            if payload_type == "cdrom" else [f"d{i % 100:02}/samepref{i:05}" for i in range(count)]
    return [f"d{i % 100:02}/f{i:05}.txt" for i in range(count)]


def build_seconds(payload_type: str, count: int, shared: bool, runs: int) -> float:
    """Best time of ``runs`` to check and write a payload of ``count`` files (empty on a floppy, which
    could not hold 10,000 clusters of data; 100 bytes each on a CD-ROM) to a file, as prepare does
    (/dev/null: what is measured is the work, not the disk), with the cyclic collector off, as
    the hook and ``build`` run (with it on, its passes over every object made so far grow
    faster than the work: not what either does)."""
    content = b"x" * 100 if payload_type == "cdrom" else b""
    files = [(name, content) for name in names(payload_type, count, shared)]
    times = []
    with open(os.devnull, "wb") as sink:
        for _ in range(runs):
            gc.collect()
            gc.disable()
            try:
                started = time.process_time()    # CPU time: what another process on the machine takes is not ours
                write_image(Payload(type=payload_type, files=tuple(PayloadFile(n, c) for n, c in files)), sink)
                times.append(time.process_time() - started)
            finally:
                gc.enable()
    return min(times)   # the least disturbed by the rest of the machine


def scaling(runs: int, small: int) -> None:
    print(f"\n== building {10 * small} files against {small} (best of {runs} runs, in process) ==")
    print(f"{'':40} {small:>8} {10 * small:>10}   ratio (10: linear)")
    for payload_type in ("cdrom", "floppy"):
        for shared in (False, True):
            one, ten = (build_seconds(payload_type, count, shared, runs) for count in (small, 10 * small))
            label = f"{payload_type}, {'names sharing a prefix' if shared else 'plain names'}"
            print(f"{label:40} {one * 1000:6.1f} ms {ten * 1000:8.1f} ms   {ten / one:5.1f}", flush=True)
            record(f"scale_{payload_type}_{'shared' if shared else 'plain'}", ten / one)


# -- the largest domain the default limits allow -----------------------------------

CDROM_TARGETS = ("hda", "hdb", "hdc", "hdd", "sda", "sdb", "sdc", "sdd", "sde", "sdf")
FLOPPY_TARGETS = ("fda", "fdb")


def domain_xml(image_dir: str, config: Config, budget: int) -> tuple[bytes, str]:
    """A domain of at most ``budget`` bytes that the limits let through, as large as they allow."""
    floppies = min(2, config.max_payloads)
    cdroms = min(config.max_payloads - floppies, len(CDROM_TARGETS))
    directories = max(1, min(config.max_directories, 1000) - 1)   # under one top directory

    def document(files_each: int, content_each: int) -> bytes:
        disks, payloads = [], []
        for index, (kind, target) in enumerate([("cdrom", t) for t in CDROM_TARGETS[:cdroms]] +
                                                [("floppy", t) for t in FLOPPY_TARGETS[:floppies]]):
            suffix = "iso" if kind == "cdrom" else "img"
            disks.append(f"<disk type='file' device='{kind}'><driver name='qemu' type='raw'/>"
                         f"<source file='{image_dir}/scale-{target}.{suffix}'/><target dev='{target}'/></disk>")
            entries = [f"<pl:file><pl:name>t/d{i % directories:03}/f{i:05}.bin</pl:name><pl:content/></pl:file>"
                       for i in range(files_each - 1)]
            size = content_each if kind == "cdrom" else min(content_each, 512 * 1024)
            blob = base64.b64encode(os.urandom(size)).decode()
            entries.append(f"<pl:file><pl:name>big.bin</pl:name><pl:content>{blob}</pl:content></pl:file>")
            payloads.append(f"<pl:payload type='{kind}' target='{target}'><pl:files>{''.join(entries)}"
                            "</pl:files></pl:payload>")
        return (f"<domain type='kvm'><name>scale</name><metadata><pl:payloads xmlns:pl='{NAMESPACE}'>"
                f"{''.join(payloads)}</pl:payloads></metadata><devices>{''.join(disks)}</devices>"
                "</domain>").encode()

    files_each = config.max_files
    while len(document(files_each, 0)) > budget * 0.8:     # leave a fifth of the document for content
        files_each = files_each * 3 // 4
    spare = budget - len(document(files_each, 0)) - 4096
    content_each = max(0, spare * 3 // 4 // (cdroms + floppies))
    xml = document(files_each, content_each)
    while len(xml) > budget:
        content_each = content_each * 9 // 10
        xml = document(files_each, content_each)
    return xml, (f"{cdroms} cdrom + {floppies} floppy payloads, {files_each} files each in {directories} "
                 f"directories, {content_each // 1024} KiB of content each (floppies at most 512 KiB)")


def peak_memory(runs: int) -> None:
    python = bench_python()
    config = Config()
    print("\n== peak memory of the hook's prepare at the default limits (ru_maxrss of the hook process) ==")
    print(f"limits: max_payloads {getattr(config, 'max_payloads', '-')}, max_files {getattr(config, 'max_files', '-')}, "
          f"max_directories {getattr(config, 'max_directories', '-')}, "
          f"max_image_size {getattr(config, 'max_image_size', 0) // (1 << 20)} MiB, "
          f"max_payload_size {config.max_payload_size // (1 << 20)} MiB")
    with tempfile.TemporaryDirectory() as work:
        hook, env = installed_hook(work, python)
        image_dir = os.path.join(work, "images")
        os.environ.update(env)
        bare = run_measured([python, "-I", "-c", "pass"])[1]
        print(f"{'bare interpreter':58} {bare / 1024:7.1f} MiB")
        for budget, what in ((LIBVIRT_XML_BYTES, "libvirt's 4 MiB"), (MAX_XML_BYTES, "the hook's cap")):
            xml, shape = domain_xml(image_dir, config, budget)
            path = os.path.join(work, "domain.xml")
            with open(path, "wb") as stream:
                stream.write(xml)
            # the shell only redirects standard input, then execs the hook: the peak is the hook's
            argv = ["/bin/sh", "-c", 'exec "$@" < "$0"', path, hook, "scale", "prepare", "begin", "-"]
            release = ["/bin/sh", "-c", 'exec "$@" < /dev/null', "sh", hook, "scale", "release", "end", "-"]
            figures = []    # each run a new prepare (the previous one released): best time, worst peak
            for _ in range(runs):
                figures.append(run_usage(argv))
                written = sum(os.path.getsize(os.path.join(image_dir, name)) for name in os.listdir(image_dir)
                              if not name.startswith("."))
                run_measured(release)
            seconds = min(wall for wall, _, _ in figures)
            cpu = min(cpu for _, _, cpu in figures)
            peak = max(peak for _, peak, _ in figures)
            print(f"{'prepare, ' + what + f' document ({len(xml) / (1 << 20):.2f} MiB)':58} {peak / 1024:7.1f} MiB"
                  f"  in {seconds * 1000:.0f} ms ({cpu * 1000:.0f} ms of CPU; best of {runs}, peak the worst); "
                  f"images {written / (1 << 20):.1f} MiB")
            print(f"  ({shape})")
            if budget == MAX_XML_BYTES:
                record("largest_peak_mib", peak / 1024)
                record("largest_seconds", seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small", type=int, default=1000, help="the smaller payload's file count (default 1000)")
    arguments = parser.parse_args()
    scaling(arguments.runs, arguments.small)
    peak_memory(max(1, min(arguments.runs, 3)))
