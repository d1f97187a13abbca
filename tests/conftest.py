import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.harness.libvirtd import Libvirtd  # noqa: E402
from tests.harness import tinyguest  # noqa: E402

#: A marker planted in every test payload; nothing printed or logged may contain it.
MARKER = "PAYLOADHOOK-SECRET-7f3a9c"

GUEST_CACHE = os.environ.get("PAYLOADHOOK_GUEST_CACHE", os.path.join(REPO, ".cache", "guest"))


def _need_root():
    if os.geteuid() != 0:
        pytest.fail("integration and guest tests need root (run them through .ci/run, or select -m 'not integration')")


@pytest.fixture(scope="session")
def libvirtd():
    """One private libvirtd, with the hook installed, for the whole session."""
    _need_root()
    daemon = Libvirtd().start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def guest_kernel():
    _need_root()
    return tinyguest.build(GUEST_CACHE)


@pytest.fixture
def workdir(tmp_path):
    """A directory libvirt's qemu user can read (kernel logs, XML files)."""
    os.chmod(tmp_path, 0o755)
    for parent in tmp_path.parents:
        if parent == parent.parent:
            break
        mode = os.stat(parent).st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o011)
    return tmp_path
