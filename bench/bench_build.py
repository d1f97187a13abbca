"""A 1,000-file, 10 MB CD-ROM image: ``payloadhook build`` against ``genisoimage -J -R``.
Target: at most 1.5x the time; peak memory printed, aim at most twice the payload.

Usage: python3 bench/bench_build.py [--runs N] [--files N] [--megabytes N]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from common import bench_python, header, record, run_measured, side_by_side

from payloadhook.install import COMMAND_IMPORTS, command_script, import_path


def main(runs: int, files: int, megabytes: int) -> dict:
    python = bench_python()
    with tempfile.TemporaryDirectory() as work:
        tree = os.path.join(work, "tree")
        size = megabytes * 1024 * 1024 // files
        for index in range(files):
            path = os.path.join(tree, f"dir{index % 20:02}", f"file-{index:04}.bin")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as stream:
                stream.write(os.urandom(size))
        # the command as the RPM writes it (packaging/payloadhook.spec), for this interpreter
        command = os.path.join(work, "payloadhook")
        with open(command, "w") as stream:
            stream.write(command_script(python, import_path(python, COMMAND_IMPORTS)))
        os.chmod(command, 0o755)
        header(f"{files} files, {megabytes} MB, CD-ROM image", "payloadhook", "genisoimage", runs)
        ours = [command, "build", "--type", "cdrom", "-o", f"{work}/ours.iso", tree]
        theirs = ["genisoimage", "-quiet", "-J", "-R", "-input-charset", "utf-8", "-o", f"{work}/theirs.iso", tree]
        result = side_by_side(f"build {files} files {megabytes} MB", lambda: run_measured(ours),
                              lambda: run_measured(theirs), runs)
        bare = run_measured([python, "-I", "-c", "import payloadhook.cli, payloadhook.local.files, payloadhook.media.iso"])[1]
        payload = files * size / 1024
        print(f"peak memory: {result['ours_kib'] / 1024:.1f} MiB, of which {(result['ours_kib'] - bare) / 1024:.1f} MiB "
              f"above the interpreter with its imports; payload {payload / 1024:.1f} MiB "
              f"(ratio {(result['ours_kib'] - bare) / payload:.2f})")
        record("build_ratio", result["ratio"])
        record("build_peak_mib", result["ours_kib"] / 1024)
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--megabytes", type=int, default=10)
    arguments = parser.parse_args()
    main(arguments.runs, arguments.files, arguments.megabytes)
