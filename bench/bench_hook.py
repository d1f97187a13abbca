"""The hook, whole process, as libvirt runs it (LC_ALL=C, a bare environment).

1. A domain without payload, each operation, against the interpreter doing nothing
   (``python -I -c pass``). Target: at most 1.5x; aim 1.1x.
2. ``prepare`` of a 16 KiB CD-ROM payload against plain_hook.py (stdlib + genisoimage).
   Target: at most 1.5x; aim 1.0x.
3. The same for a 16 KiB floppy against plain_hook.py (stdlib + mkfs.vfat + mcopy).

Usage: python3 bench/bench_hook.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from common import REPO, bench_python, header, installed_hook, run_once, side_by_side

from payloadhook.domain import metadata, xmlsafe
from payloadhook.model import Payload, PayloadFile

PLAIN = os.path.join(REPO, "bench", "plain_hook.py")
PLAIN_DOMAIN = open(os.path.join(REPO, "tests", "data", "plain-domain.xml"), "rb").read()


def payload_domain(image_dir: str, payload_type: str) -> bytes:
    files = tuple(PayloadFile(name, os.urandom(4096)) for name in
                  ("meta-data", "user-data", "openstack/latest/meta_data.json", "vendor-data"))
    target = "hdc" if payload_type == "cdrom" else "fda"
    suffix = "iso" if payload_type == "cdrom" else "img"
    root = xmlsafe.parse_xml(f"<domain type='kvm'><name>bench</name><devices><disk type='file' "
                            f"device='{payload_type}'><source file='{image_dir}/bench-{target}.{suffix}'/>"
                            f"<target dev='{target}'/></disk></devices></domain>")
    metadata.set_payloads(root, [Payload(type=payload_type, target=target, volume_id="cidata", files=files)])
    return xmlsafe.serialize(root)


def main(runs: int) -> list[dict]:
    python = bench_python()
    results = []
    with tempfile.TemporaryDirectory() as work:
        # the hook as install-hook writes it, run as libvirt runs it: executed, by its #! line
        hook, env = installed_hook(work, python)

        header("hook on a domain without payload, against the bare interpreter", "hook", "-c pass", runs)
        bare = [python, "-I", "-c", "pass"]
        for operation in (("prepare", "begin"), ("start", "begin"), ("started", "begin"), ("stopped", "end"),
                          ("release", "end"), ("reconnect", "begin"), ("migrate", "begin")):
            argv = [hook, "plain", *operation, "-"]
            results.append(side_by_side(f"{' '.join(operation)} (no payload)",
                                        lambda: run_once(argv, PLAIN_DOMAIN, env),
                                        lambda: run_once(bare, PLAIN_DOMAIN, env), runs))

        for payload_type, tools in (("cdrom", "genisoimage"), ("floppy", "mkfs.vfat+mcopy")):
            header(f"prepare of a 16 KiB {payload_type} payload, whole process", "payloadhook", tools, runs)
            ours_dir, plain_dir = os.path.join(work, "images"), os.path.join(work, "plain")
            os.makedirs(plain_dir, exist_ok=True)
            ours_xml, plain_xml = payload_domain(ours_dir, payload_type), payload_domain(plain_dir, payload_type)
            ours = [hook, "bench", "prepare", "begin", "-"]
            theirs = [python, "-I", PLAIN, "bench", "prepare", "begin", "-"]
            results.append(side_by_side(f"prepare {payload_type} 16 KiB",
                                        lambda: run_once(ours, ours_xml, env),
                                        lambda: run_once(theirs, plain_xml, env), runs))
            run_once([hook, "bench", "release", "end", "-"], b"", env)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    main(parser.parse_args().runs)
