"""``virsh start`` on a real libvirtd (the test harness's private one), with and without a payload.

1. One TCG domain with a CD-ROM, started alternately with a 16 KiB payload on it and with
   a pre-built ISO of the same payload outside image_dir (the same size, labelled by libvirt
   alike; the hook runs for both, prepare, start and started): the median of the pairs'
   differences is what the payload costs a start, with its quartiles to tell noise from it.
2. N payload domains started at once: no collision, total time.
3. libvirtd restarted under them: how long until it answers, and until every domain has
   reconnected (each ``reconnect`` hook call included) and accepts a job again.

Usage: python3 bench/bench_start.py [--runs N] [--domains N]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time

import libvirt
from common import REPO  # noqa: F401  (puts the repository on sys.path)

from payloadhook.model import Payload, PayloadFile
from tests.harness.domains import IMAGE_DIR, disk, domain, images_of
from tests.harness.libvirtd import Libvirtd

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
PAYLOAD = Payload(type="cdrom", volume_id="cidata", files=tuple(PayloadFile(f"f{i}", os.urandom(4096)) for i in range(4)))


def small(xml: str) -> str:
    return xml.replace("<memory unit='MiB'>256</memory>", "<memory unit='MiB'>64</memory>")


def at_once(function, names: list[str]) -> None:
    """``function(name)`` for every name, each in its own thread, all started together."""
    threads = [threading.Thread(target=function, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


#: Put in the hook's place in the private libvirtd: runs the hook, and logs how long each call took.
TIMING_WRAPPER = """#!/bin/sh
s=$(date +%s%N)
"$(dirname "$0")/../payloadhook.real" "$@"
rc=$?
e=$(date +%s%N)
echo "$2 $((e - s))" >> {log}
exit $rc
"""


def time_the_hook(daemon, log: str) -> None:
    """Wrap the private libvirtd's hook so that each call's wall time goes to ``log`` (the
    hook itself moved out of qemu.d, where libvirt would run it too)."""
    hooks = os.path.join(daemon.base, "etc", "hooks")
    os.rename(os.path.join(hooks, "qemu.d", "50-payloadhook"), os.path.join(hooks, "payloadhook.real"))
    with open(os.path.join(hooks, "qemu.d", "50-payloadhook"), "w") as stream:
        stream.write(TIMING_WRAPPER.format(log=log))
    os.chmod(os.path.join(hooks, "qemu.d", "50-payloadhook"), 0o755)


def start_ms(conn, name: str, log: str | None = None) -> tuple[float, float]:
    """How long ``virsh start`` took, and how long of it the hook ran (prepare, start, started)."""
    dom = conn.lookupByName(name)
    if log:
        open(log, "w").close()
    started = time.perf_counter()
    dom.create()
    elapsed = (time.perf_counter() - started) * 1000
    hook = 0.0
    if log:
        with open(log) as stream:
            # the previous destroy's stopped and release may be logged late: not this start's
            hook = sum(int(time_ns) for operation, time_ns in (line.split() for line in stream if line.strip())
                       if operation in ("prepare", "start", "started")) / 1e6
    dom.destroy()
    return elapsed, hook


def main(runs: int, domains: int) -> None:
    daemon = Libvirtd().start()
    work = tempfile.mkdtemp(prefix="payloadhook-bench-")
    os.chmod(work, 0o755)
    try:
        conn = libvirt.open(daemon.uri)
        static = os.path.join(work, "static.iso")
        from payloadhook.media.iso import build_iso
        with open(static, "wb") as stream:
            stream.write(build_iso(PAYLOAD))
        conn.defineXML(small(domain("bench-with", [disk("cdrom", "hdc", f"{IMAGE_DIR}/bench-with-hdc.iso")], [PAYLOAD])))
        conn.defineXML(small(domain("bench-without", [disk("cdrom", "hdc", static)])))
        log = os.path.join(work, "hook-times")
        time_the_hook(daemon, log)
        for _ in range(2):    # warm both: page cache, pyc files, QEMU's first start
            start_ms(conn, "bench-with", log)
            start_ms(conn, "bench-without", log)
        with_payload, without, differences, hook_differences = [], [], [], []
        for run in range(runs):
            # pairs in alternating order (with, without; then without, with): a drift in the
            # machine's load hits both sides of each pair alike, whichever runs first
            if run % 2 == 0:
                a, b = start_ms(conn, "bench-with", log), start_ms(conn, "bench-without", log)
            else:
                b, a = start_ms(conn, "bench-without", log), start_ms(conn, "bench-with", log)
            with_payload.append(a[0])
            without.append(b[0])
            differences.append(a[0] - b[0])
            hook_differences.append(a[1] - b[1])
        a, b = statistics.median(with_payload), statistics.median(without)
        difference = statistics.median(differences)
        quartiles = statistics.quantiles(differences, n=4) if runs >= 2 else [difference] * 3
        hook_difference = statistics.median(hook_differences)
        hook_quartiles = statistics.quantiles(hook_differences, n=4) if runs >= 2 else [hook_difference] * 3
        print(f"\n== virsh start of a TCG domain (median of {runs} each, pairs in alternating order) ==")
        print(f"with a 16 KiB CD-ROM payload {a:8.1f} ms, with a static ISO {b:8.1f} ms")
        print(f"the payload adds {difference:6.1f} ms (median of the pairs' differences; quartiles "
              f"{quartiles[0]:.1f} to {quartiles[2]:.1f} ms; goal: at most 20 ms)")
        print(f"of which the hook's calls (prepare, start, started; their wall time as libvirt waits for "
              f"them) {hook_difference:6.1f} ms (quartiles {hook_quartiles[0]:.1f} to {hook_quartiles[2]:.1f} ms)")
        from common import record
        record("start_ms", difference)

        names = [f"bench-many-{i:02}" for i in range(domains)]
        for name in names:
            conn.defineXML(small(domain(name, [disk("cdrom", "hdc", f"{IMAGE_DIR}/{name}-hdc.iso")], [PAYLOAD])))
        errors: list[str] = []

        def start(name: str) -> None:
            try:
                libvirt.open(daemon.uri).lookupByName(name).create()
            except libvirt.libvirtError as exc:
                errors.append(f"{name}: {exc}")

        started = time.perf_counter()
        at_once(start, names)
        total = time.perf_counter() - started
        images = images_of(daemon, "bench-many-")
        print(f"\n== {domains} payload domains started at once ==")
        print(f"total {total:.2f} s, {len(errors)} errors, {len(images)} distinct images")
        for error in errors[:5]:
            print("  ", error)

        daemon.kill_daemon(signal.SIGTERM)
        started = time.perf_counter()
        daemon.start_daemon()
        answering = time.perf_counter() - started
        # every domain's reconnect (and its hook call) done: each domain accepts a job again
        for name in names:
            libvirt.open(daemon.uri).lookupByName(name).setMetadata(
                libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, "bench", None, None, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        print(f"libvirtd restarted under {domains} running payload domains: answering after {answering:.2f} s, "
              f"every domain reconnected (hook 'reconnect begin' included) after {time.perf_counter() - started:.2f} s")
        at_once(lambda name: libvirt.open(daemon.uri).lookupByName(name).destroy(), names)
        left = images_of(daemon, "bench-")
        print(f"after stopping them all: {len(left)} images left")
        if errors or left or len(images) != domains:
            sys.exit("bench_start: collisions or leftovers")
    finally:
        daemon.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--domains", type=int, default=50)
    arguments = parser.parse_args()
    main(arguments.runs, arguments.domains)
