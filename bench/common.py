"""Shared pieces of the benchmarks: an installed (not editable) payloadhook, and side-by-side timing.

Each comparison runs the two commands alternately, N times each, and reports medians
and their ratio, so that load on the machine hits both alike.
"""

from __future__ import annotations

import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO, ".cache", "bench-venv")
sys.path.insert(0, REPO)


def bench_python() -> str:
    """A Python with payloadhook installed as ops install it (pip, not editable): an editable
    install's import finder alone costs several milliseconds a start and would skew the figures."""
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--force-reinstall",
                    "--no-deps", REPO], check=True, stderr=subprocess.DEVNULL)
    # the hook's dependencies beyond the system's lxml (setup.cfg's install_requires)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "defusedxml"],
                   check=True, stderr=subprocess.DEVNULL)
    return python


def installed_hook(work: str, python: str) -> tuple[str, dict]:
    """The hook as install-hook writes it, in ``work``, with a configuration whose image_dir
    is ``work``/images; and the environment libvirt gives a hook (LC_ALL=C and a PATH,
    virCommandAddEnvPassCommon) naming that configuration."""
    from payloadhook.install import hook_script, import_path
    hook = os.path.join(work, "50-payloadhook")
    with open(hook, "w") as stream:
        stream.write(hook_script(python, import_path(python)))
    os.chmod(hook, 0o755)
    conf = os.path.join(work, "payloadhook.conf")
    with open(conf, "w") as stream:
        stream.write(f"[payloadhook]\nimage_dir = {work}/images\n")
    # the index of image directories too: the benchmark's own, never the host's
    return hook, {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PAYLOADHOOK_CONF": conf,
                  "PAYLOADHOOK_INDEX": os.path.join(work, "index")}


def run_once(argv: list[str], stdin: bytes | None = None, env: dict | None = None) -> tuple[float, None]:
    """Wall time in seconds of one run of ``argv`` (and no memory figure: the child's peak
    RSS as wait4 reports it includes the moments before exec, when it is still a copy of
    this benchmark, so it says nothing about the command; see run_measured)."""
    elapsed, _ = run_cpu(argv, stdin, env)
    return elapsed, None


def run_cpu(argv: list[str], stdin: bytes | None = None, env: dict | None = None) -> tuple[float, float]:
    """Wall time and CPU time (user + system, as wait4 reports them) in seconds of one run of
    ``argv``: CPU time holds where other processes share the machine, wall time does not."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[0]} failed: {process.stderr.read().decode(errors='replace')}")
    return elapsed, usage.ru_utime + usage.ru_stime


# The command waits on this gate (its standard input, a pipe) until the shell that started it
# has exited and it is this process's child: then it execs, from the shell's small image.
_GATE = 'exec 3<&0; { read -r _ <&3; exec 3<&-; exec "$@" </dev/null; } >/dev/null & echo $!'
_PR_SET_CHILD_SUBREAPER = 36


def run_measured(argv: list[str]) -> tuple[float, int]:
    """Wall time in seconds and peak RSS in KiB of one run of ``argv`` (see run_usage)."""
    elapsed, peak, _ = run_usage(argv)
    return elapsed, peak


def run_usage(argv: list[str]) -> tuple[float, int, float]:
    """Wall time in seconds, peak RSS in KiB and CPU time (user + system) in seconds of one
    run of ``argv``, as GNU time measures them, without needing GNU time (a minimal Debian
    lacks it). CPU time is the figure a loaded machine disturbs least.

    The peak is the ``ru_maxrss`` that wait4 returns for the command's process. That figure
    counts whatever the process held before its exec, so the process must not begin as a fork
    of this benchmark (tens of MiB). A shell, whose image is about 1 MiB, starts it in the
    background and exits; this process, a child subreaper, inherits it and reaps it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    gate_read, gate_write = os.pipe()
    with tempfile.TemporaryFile() as stderr_file:
        started = time.perf_counter()
        try:
            try:
                shell = subprocess.run(["/bin/sh", "-c", _GATE, "sh", *argv], stdin=gate_read,
                                       stdout=subprocess.PIPE, stderr=stderr_file, check=True)
            finally:
                os.close(gate_read)
            pid = int(shell.stdout)
        finally:
            os.close(gate_write)   # opens the gate (or, on failure, lets the command go and end)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            stderr_file.seek(0)
            raise RuntimeError(f"{argv[0]} failed: {stderr_file.read().decode(errors='replace')}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def side_by_side(name: str, ours, theirs, runs: int) -> dict:
    """Run ``ours()`` and ``theirs()`` (each returning (seconds, peak KiB or None)) alternately;
    print medians, and the peaks where they are known."""
    ours()
    theirs()  # warm both: page cache, pyc files
    a, b, mem_a, mem_b = [], [], [], []
    for _ in range(runs):
        t, m = ours()
        a.append(t)
        mem_a.append(m)
        t, m = theirs()
        b.append(t)
        mem_b.append(m)
    result = {"name": name, "ours_ms": statistics.median(a) * 1000, "theirs_ms": statistics.median(b) * 1000}
    result["ratio"] = result["ours_ms"] / result["theirs_ms"]
    line = f"{name:58} {result['ours_ms']:8.1f} ms {result['theirs_ms']:8.1f} ms  ratio {result['ratio']:5.2f}"
    if mem_a[0] is not None:
        result["ours_kib"], result["theirs_kib"] = max(mem_a), max(mem_b)
        line += f"   peak {result['ours_kib'] / 1024:6.1f} / {result['theirs_kib'] / 1024:6.1f} MiB"
    print(line, flush=True)
    return result


def record(figure: str, value: float) -> None:
    """Keep one figure of the issue's table for bench/table.py, in the file $BENCH_RESULTS
    names (bench/run sets it); without it, nothing."""
    path = os.environ.get("BENCH_RESULTS")
    if path:
        import json
        with open(path, "a") as stream:
            stream.write(json.dumps({"figure": figure, "value": value}) + "\n")


def header(title: str, ours: str, theirs: str, runs: int) -> None:
    print(f"\n== {title} (median of {runs} runs each, alternating) ==")
    print(f"{'':58} {ours:>11} {theirs:>11}  ours/theirs")
