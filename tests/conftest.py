import os
import pathlib
import shutil
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.harness.libvirtd import Libvirtd  # noqa: E402
from tests.harness import tinyguest  # noqa: E402
from tests.harness.paths import GUEST_CACHE, WORK_ROOT, qemu_readable_dir  # noqa: E402

#: A marker planted in every test payload; nothing printed or logged may contain it.
MARKER = "PAYLOADHOOK-SECRET-7f3a9c"


def _need_root():
    if os.geteuid() != 0:
        pytest.fail("integration and guest tests need root (run them through .ci/run, or select -m 'not integration')")


@pytest.fixture(scope="session", autouse=True)
def private_index(tmp_path_factory):
    """The index of image directories (store/records.py) for the whole session, never the
    host's /run/payloadhook.index: every hook and store call of the tests in this process,
    and every child that inherits the environment, registers its image_dir there."""
    from payloadhook.store import records
    index = str(tmp_path_factory.mktemp("index"))
    saved_env, saved_default = os.environ.get(records.INDEX_ENV), records.INDEX_DIR
    os.environ[records.INDEX_ENV] = records.INDEX_DIR = index
    yield index
    records.INDEX_DIR = saved_default
    if saved_env is None:
        del os.environ[records.INDEX_ENV]
    else:
        os.environ[records.INDEX_ENV] = saved_env


@pytest.fixture(scope="session", autouse=True)
def private_config(tmp_path_factory):
    """The tests' own configuration for the whole session, never the host's
    /etc/payloadhook/payloadhook.conf: its key_dir is an empty directory of the session, so a
    host where payloadhook is installed and has sealing keys gives the tests no key (the
    command seals by default when there is one). Tests that need a key or other settings write
    a configuration of their own; every child that inherits the environment gets this one."""
    from payloadhook import config
    base = tmp_path_factory.mktemp("config")
    keys = base / "keys"
    keys.mkdir(mode=0o700)
    path = base / "payloadhook.conf"
    path.write_text(f"[payloadhook]\nkey_dir = {keys}\n")
    saved = os.environ.get(config.ENV_VAR)
    os.environ[config.ENV_VAR] = str(path)
    yield path
    if saved is None:
        os.environ.pop(config.ENV_VAR, None)
    else:
        os.environ[config.ENV_VAR] = saved


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


@pytest.fixture(scope="session")
def qemu_work_root(request):
    """This session's directory for files QEMU reads or writes, outside the clone (which may
    sit under /root, closed to libvirt-qemu); removed at the end unless a test failed."""
    root = tempfile.mkdtemp(prefix="session-", dir=qemu_readable_dir(WORK_ROOT))
    os.chmod(root, 0o755)
    yield root
    if request.session.testsfailed == 0:
        shutil.rmtree(root)


@pytest.fixture
def workdir(qemu_work_root, request):
    """A directory of this test that libvirt's qemu user can read (kernel logs, XML files).
    Nothing above it is chmod-ed: it lies in a tree made for the purpose (paths.WORK_ROOT)."""
    path = tempfile.mkdtemp(prefix=request.node.name[:60].replace("/", "_") + "-", dir=qemu_work_root)
    os.chmod(path, 0o755)
    return pathlib.Path(path)
