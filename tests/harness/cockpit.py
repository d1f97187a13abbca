"""Debian's cockpit-ws with a local session (no login, no systemd) on 127.0.0.1, showing this
clone's cockpit/ package as packaging/build-cockpit builds it (build/cockpit/, on PatternFly),
whose `payloadhook` command talks to a private libvirtd; and a headless chromium driving it
through chromium-driver.

The local session is the tests' own and never a way to run the console: `--local-session`
skips Cockpit's login, and run by root it hands whoever reaches the port a root bridge with
no password. So it is started only here, on loopback in a network namespace of its own
(:func:`private_network`: the test process's thread that drives it, cockpit-ws, chromedriver
and chromium enter it; no other user's process can reach that 127.0.0.1), and nothing
shipped, printed or documented shows it (tests/test_no_login_skipped.py). Users start the
console through systemd's cockpit.socket, with its login.

The session's bridge runs as this user (root here) and inherits cockpit-ws's environment:
LIBVIRT_DEFAULT_URI (libvirt's own default-URI variable) points the command at the private
daemon, PAYLOADHOOK_CONF at a configuration whose key_dir is the daemon's own, PATH finds a
`payloadhook` that runs this clone, and XDG_DATA_HOME holds cockpit/payloadhook (the bridge
looks for packages in $XDG_DATA_HOME/cockpit). Nothing of the host's libvirt or Cockpit set-up
is touched; the private libvirtd is reached by its Unix socket, which no network namespace hides.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
BRIDGE = "/usr/bin/cockpit-bridge"
PAGE = "/cockpit/@localhost/payloadhook/index.html"


CLONE_NEWNET = 0x40000000


class _PrivateNetwork:
    """One network namespace with only loopback, entered by the calling thread while any
    cockpit-ws or browser of the harness runs (counted: they nest), and left after the last.
    Children (cockpit-ws, chromedriver, chromium) are started from that thread, so inside it."""

    def __init__(self) -> None:
        self.users = 0
        self.home: int | None = None      # the thread's own namespace, to go back to
        self.private: int | None = None

    def enter(self) -> None:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if self.users == 0:
            self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            if self.private is None:
                if libc.unshare(CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) for cockpit-ws")
                self.private = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                _loopback_up()
            elif libc.setns(self.private, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the harness's network namespace")
        self.users += 1

    def leave(self) -> None:
        import ctypes
        self.users -= 1
        if self.users == 0 and self.home is not None:
            if ctypes.CDLL(None, use_errno=True).setns(self.home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back into the test's network namespace")
            os.close(self.home)
            self.home = None

    def is_inside(self) -> bool:
        """Whether the calling thread is in the harness's namespace now."""
        if self.private is None:
            return False
        inside = os.stat("/proc/thread-self/ns/net")
        private = os.fstat(self.private)
        return (inside.st_dev, inside.st_ino) == (private.st_dev, private.st_ino)


private_network = _PrivateNetwork()


def _loopback_up() -> None:
    """`ip link set lo up` in the calling thread's network namespace, by SIOCSIFFLAGS."""
    import fcntl
    import struct
    siocsifflags, iff_up, iff_loopback, iff_running = 0x8914, 0x1, 0x8, 0x40
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        fcntl.ioctl(probe, siocsifflags, struct.pack("16sH22x", b"lo", iff_up | iff_loopback | iff_running))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CockpitWs:
    """``user`` (a name, with its group ``group``): run cockpit-ws, and so the session, as that
    user instead of root, as a user without administrative access. ``system_bus``: the address
    of a private system bus (tests/harness/systembus.py) the session's D-Bus clients use,
    cockpit-machines' among them."""

    def __init__(self, uri: str, conf: str, user: str | None = None, group: str | None = None,
                 system_bus: str | None = None):
        self.uri = uri
        self.system_bus = system_bus
        self.conf = conf
        self.user = user
        self.group = group
        self.base = tempfile.mkdtemp(prefix="payloadhook-cockpit-")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.entered = False
        self.log = os.path.join(self.base, "cockpit-ws.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PAGE}"

    def start(self) -> CockpitWs:
        private_network.enter()
        self.entered = True
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> CockpitWs:
        packages = os.path.join(self.base, "share", "cockpit")
        os.makedirs(packages)
        # The page as packaging/build-cockpit built it (on PatternFly). Copies, not links into
        # the clone: a session as another user must read them, and a clone under /root (0700)
        # is closed to every other user.
        built = os.path.join(REPO, "build", "cockpit")
        if not os.path.exists(os.path.join(built, "patternfly.css")):
            raise RuntimeError("the web console is not built: run packaging/build-cockpit (tests/run-all does)")
        shutil.copytree(built, os.path.join(packages, "payloadhook"))
        bin_dir = os.path.join(self.base, "bin")
        os.makedirs(bin_dir)
        command = os.path.join(bin_dir, "payloadhook")
        if self.user is None:    # root: the tests' own interpreter, where payloadhook is installed
            script = f"#!/bin/sh\nexec {sys.executable} -m payloadhook \"$@\"\n"
        else:                    # another user: Debian's python3 and a copy of the package
            library = os.path.join(self.base, "lib")
            shutil.copytree(os.path.join(REPO, "payloadhook"), os.path.join(library, "payloadhook"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            script = f"#!/bin/sh\nPYTHONPATH={library} exec /usr/bin/python3 -m payloadhook \"$@\"\n"
        with open(command, "w") as stream:
            stream.write(script)
        os.chmod(command, 0o755)
        argv = [COCKPIT_WS, "--no-tls", "--address", "127.0.0.1", "--port", str(self.port), f"--local-session={BRIDGE}"]
        env = {**os.environ}
        if self.user is not None:
            import pwd
            os.chmod(self.base, 0o755)
            home = os.path.join(self.base, "home")
            os.makedirs(home)
            os.chown(home, pwd.getpwnam(self.user).pw_uid, -1)
            env.update(HOME=home, USER=self.user, LOGNAME=self.user)
            argv = ["setpriv", f"--reuid={self.user}", f"--regid={self.group}", "--clear-groups", *argv]
        # The page's connection, as an administrator changes it: an override of the package's
        # manifest (Cockpit reads <package>.override.json in $XDG_CONFIG_DIRS/cockpit). The
        # command's environment points at the same daemon, should the override be missed.
        overrides = os.path.join(self.base, "config", "cockpit")
        os.makedirs(overrides)
        with open(os.path.join(overrides, "payloadhook.override.json"), "w") as stream:
            json.dump({"config": {"uri": self.uri}}, stream)
        env = {**env, "LIBVIRT_DEFAULT_URI": self.uri, "XDG_CONFIG_DIRS": os.path.join(self.base, "config"), "PAYLOADHOOK_CONF": self.conf,
               "XDG_DATA_HOME": os.path.join(self.base, "share"), "PATH": bin_dir + ":" + os.environ["PATH"],
               "LC_ALL": "C.UTF-8"}
        if self.system_bus is not None:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = self.system_bus
        with open(self.log, "wb") as log:
            # a session of its own: what the bridge starts and leaves (its dbus-daemon and
            # ssh-agent outlive it) is ended with it in stop()
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("cockpit-ws did not start: " + self.read_log())
                time.sleep(0.1)
        self.check_private()
        return self

    def check_private(self) -> None:
        """Refuse to go on unless cockpit-ws, which runs without Cockpit's login, listens in a
        network namespace of its own (never the machine's, where any local user could reach a
        root bridge), and the page's connection is the private daemon's."""
        import urllib.request
        ours = os.stat(f"/proc/{self.process.pid}/ns/net")
        # the namespace the tests came from, and the machine's (init's) where it can be read
        # (a sandbox may hide init's: the tests' own namespace is checked then, still)
        assert private_network.home is not None
        home = os.fstat(private_network.home)
        theirs = {(home.st_dev, home.st_ino)}
        try:
            init = os.stat("/proc/1/ns/net")
            theirs.add((init.st_dev, init.st_ino))
        except PermissionError:
            pass
        if (ours.st_dev, ours.st_ino) in theirs:
            raise RuntimeError("cockpit-ws runs without its login in the machine's own network namespace")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/cockpit/@localhost/manifests.json",
                                    timeout=30) as answer:
            manifests = json.load(answer)
        uri = manifests["payloadhook"]["config"]["uri"]
        if uri != self.uri:
            raise RuntimeError(f"the page would manage {uri}, not the private {self.uri}")

    def read_log(self) -> str:
        with open(self.log, errors="replace") as stream:
            return stream.read()

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            try:    # the rest of its process group: the session's dbus-daemon and ssh-agent
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)
        if self.entered:
            self.entered = False
            private_network.leave()


def chromium():
    """A headless chromium through Debian's chromium-driver, with the browser's console log
    readable (get_log("browser"))."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    private_network.enter()    # where cockpit-ws listens; left when the browser quits
    try:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    except BaseException:
        private_network.leave()
        raise
    quit_browser = driver.quit

    def quit() -> None:
        try:
            quit_browser()
        finally:
            if not getattr(driver, "_left_private_network", False):
                driver._left_private_network = True
                private_network.leave()
    driver.quit = quit
    return driver


def slowest_waits(path: str) -> list[tuple[str, str, float, str, int]]:
    """From a wait log (one JSON line per wait: test, what, seconds), each test's slowest wait
    on the page and, apart, on its guest ("the guest powered off"): (test, kind, seconds, what,
    how many such waits were logged), slowest first."""
    slowest: dict[tuple[str, str], tuple[float, str]] = {}
    counts: dict[tuple[str, str], int] = {}
    with open(path) as stream:
        for line in stream:
            wait = json.loads(line)
            key = (wait["test"], "guest" if wait["what"].startswith("the guest") else "page")
            counts[key] = counts.get(key, 0) + 1
            if key not in slowest or wait["seconds"] > slowest[key][0]:
                slowest[key] = (wait["seconds"], wait["what"])
    return sorted(((test, kind, seconds, what, counts[test, kind]) for (test, kind), (seconds, what)
                   in slowest.items()), key=lambda row: (row[1], -row[2]))


if __name__ == "__main__":    # python -m tests.harness.cockpit WAIT_LOG: the slowest wait of each test
    for test, kind, seconds, what, waits in slowest_waits(sys.argv[1]):
        print(f"{seconds:8.2f} s  {kind:5}  {test.split('::')[-1]}: {what} (slowest of {waits})")
