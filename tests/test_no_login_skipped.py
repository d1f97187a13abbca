"""Nothing the project ships, documents or prints may start a service without its login.

`cockpit-ws --local-session=BRIDGE`, run by root, serves a root bridge to whoever reaches its
port, without a password: once printed by install-debian as the way to run the console
without systemd. Every form of that class (Cockpit's local session, libvirt's auth "none",
sudo without a password, a polkit rule that says yes) is searched for in every file the
project ships or shows: the package, packaging, hooks, the console, the demo, the README and
docs/. The tests' own harness is not shipped; its one use, cockpit-ws on loopback in a
test's private namespace, is checked to say so.
"""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("payloadhook", "packaging", "hooks", "cockpit", "demo", "docs", "xsl", "schema",
           "README.md", "pyproject.toml", "setup.cfg")

#: Forms that start or configure a service so that it skips its authentication.
SKIPPING = {
    "Cockpit's local session (no login)": re.compile(r"local[-_ ]session", re.I),
    "libvirt without authentication": re.compile(r"\bauth_(tcp|tls|unix_rw|unix_ro)\s*=\s*\"?none", re.I),
    "sudo without a password": re.compile(r"NOPASSWD", re.I),
    "a polkit rule that allows without asking": re.compile(r"polkit\.Result\.YES|Result(Any|Active|Inactive)\s*=\s*yes", re.I),
    "a switch that turns authentication off": re.compile(r"--no-?auth\b|\bauth(entication)?\s*[=:]\s*[\"']?(none|off)\b", re.I),
    "ssh with empty passwords": re.compile(r"PermitEmptyPasswords\s+yes", re.I),
}


def shipped_files():
    for entry in SHIPPED:
        path = os.path.join(REPO, entry)
        if os.path.isfile(path):
            yield path
            continue
        for top, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "node_modules")]
            for name in files:
                yield os.path.join(top, name)


def findings(paths):
    found = []
    for path in paths:
        with open(path, "rb") as stream:
            text = stream.read().decode("utf-8", "replace")
        for what, pattern in SKIPPING.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{os.path.relpath(path, REPO)}:{line}", what, match.group(0)))
    return found


def test_the_scan_sees_every_kind_of_file_shipped():
    names = {os.path.relpath(path, REPO) for path in shipped_files()}
    for expected in ("packaging/install-debian", "payloadhook/cli/key.py", "README.md", "docs/packaging.md",
                     "cockpit/manifest.json", "demo/run.py", "hooks/qemu"):
        assert expected in names


@pytest.mark.parametrize("what, text", [
    ("Cockpit's local session (no login)", "cockpit-ws --no-tls --local-session=/usr/bin/cockpit-bridge"),
    ("libvirt without authentication", 'auth_tcp = "none"'),
    ("sudo without a password", "admin ALL=(ALL) NOPASSWD: ALL"),
    ("a polkit rule that allows without asking", "return polkit.Result.YES;"),
    ("a switch that turns authentication off", "serve --no-auth"),
])
def test_the_scan_finds_each_form(tmp_path, what, text):
    path = tmp_path / "shown.txt"
    path.write_text(f"to run it:\n  {text}\n")
    assert [found_what for _, found_what, _ in findings([str(path)])] == [what]


def test_nothing_shipped_or_documented_starts_a_service_without_its_login():
    assert findings(shipped_files()) == []


def test_install_debian_without_systemd_prints_nothing_to_run():
    """The branch of install-debian --with-cockpit for a host without systemd, run as it is in
    the script: it says the console needs systemd and gives no command line."""
    script = open(os.path.join(REPO, "packaging", "install-debian")).read()
    start = script.index('if [ -n "$cockpit" ]; then\n    if [ -d /run/systemd/system ]')
    branch = script[start:script.index("\nfi\n", start) + 4]
    no_systemd = branch.replace("[ -d /run/systemd/system ]", "false")
    result = subprocess.run(["bash", "-c", 'set -eu; say() { echo "install-debian: $*"; }; '
                             "quietly() { echo \"ran: $*\"; }; cockpit=1\n" + no_systemd],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert "needs systemd" in line and "cockpit.socket" in line
    assert "cockpit-ws" not in line and "cockpit-bridge" not in line and "http" not in line


def test_the_harness_local_session_is_loopback_and_says_it_is_the_tests_own():
    """tests/harness/cockpit.py runs cockpit-ws with a local session: on 127.0.0.1 only, and its
    docstring says it is the tests' own, never a way to run the console."""
    source = open(os.path.join(REPO, "tests", "harness", "cockpit.py")).read()
    assert findings([os.path.join(REPO, "tests", "harness", "cockpit.py")]) != []
    argv = source[source.index("argv = [COCKPIT_WS"):].split("\n", 1)[0]
    assert '"--address", "127.0.0.1"' in argv and "--local-session" in argv
    docstring = " ".join(source.split('"""')[1].split())
    assert "never a way to run the console" in docstring and "network namespace of its own" in docstring


@pytest.mark.integration
def test_the_harness_loopback_is_out_of_reach_of_the_hosts_processes():
    """What cockpit-ws listens on while the harness's network namespace is entered cannot be
    reached from the test's own namespace (nor from any other process of the host)."""
    import socket

    from tests.harness.cockpit import private_network
    if os.geteuid() != 0:
        pytest.fail("a network namespace needs root (run through .ci/run, or select -m 'not integration')")
    private_network.enter()
    try:
        assert private_network.is_inside()
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=5).close()    # inside: reached
    finally:
        private_network.leave()
    assert not private_network.is_inside()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    result = subprocess.run([sys.executable, "-c", "import socket, sys; socket.create_connection(('127.0.0.1', "
                             f"{port}), timeout=5)"], capture_output=True, text=True)
    assert result.returncode == 1 and "ConnectionRefusedError" in result.stderr
    listening.close()
