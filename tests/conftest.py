import os
import pathlib
import shutil
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.harness import tinyguest  # noqa: E402
from tests.harness.libvirtd import Libvirtd  # noqa: E402
from tests.harness.paths import GUEST_CACHE, WORK_ROOT, qemu_readable_dir  # noqa: E402

#: A marker planted in every test payload; nothing printed or logged may contain it.
MARKER = "PAYLOADHOOK-SECRET-7f3a9c"


def encoded_forms(secret: bytes) -> list[bytes]:
    """``secret`` and its base64 at each of the three alignments an encoder can put it in
    (what base64 of a longer text holding it always contains: the groups that depend on
    ``secret`` alone), so that content carried as base64 (oVirt's payload files, a pl:content)
    is found too."""
    import base64
    forms = [secret]
    for shift in range(3):
        encoded = base64.b64encode(secret[shift:])
        forms.append(encoded[:len(encoded) - 4] if len(secret[shift:]) % 3 else encoded)
    return forms


#: What no output may hold: the marker, plain or base64.
MARKER_FORMS = encoded_forms(MARKER.encode())


#: Unit tests of rules only root can exercise: files chowned to another user, key directories
#: that must be root's, a tmpfs mounted to fill, modes under root's umask. They carry the
#: marker ``root``: tests/run-unit leaves them out (-m "not root") when it does not run as
#: root; as root (CI, tests/run-all) they run with the others. None: the whole module.
NEEDS_ROOT = {
    "test_fileio.py": ("test_a_directory_another_user_owns_refuses_an_output_not_an_input",
                       "test_a_link_another_user_owns_is_never_followed_unless_asked",
                       "test_the_walk_leaves_no_descriptor_open"),
    "test_hostile_cli.py": ("test_a_link_another_user_owns_is_not_followed_to_an_input",
                            "test_a_link_another_user_owns_is_not_followed_to_an_output",
                            "test_a_link_of_roots_on_the_output_path_is_followed",
                            "test_a_planted_link_beside_a_good_file_is_refused_all_the_same",
                            "test_a_relative_output_is_written_in_the_working_directory_whoever_owns_it",
                            "test_an_existing_output_keeps_its_mode_and_owner",
                            "test_an_output_another_user_planted_is_never_written_over",
                            "test_every_output_refuses_another_users_directory",
                            "test_files_from_takes_regular_files_only",
                            "test_named_documents_follow_no_link_another_user_owns",
                            "test_output_in_another_users_directory_is_refused",
                            "test_output_onto_a_device_node_is_refused_and_the_node_kept",
                            "test_output_through_a_link_in_another_users_directory_is_refused"),
    "test_hostile_store.py": ("test_a_failed_prepare_keeps_the_earlier_images_and_record",
                              "test_a_failed_prepare_on_a_shared_image_dir_leaves_the_source_hosts_record",
                              "test_an_image_dir_another_user_owns_is_refused_with_the_fix",
                              "test_modes_are_exact_under_a_restrictive_umask_too",
                              "test_no_space_for_an_image_is_one_line_leaves_nothing_and_starts_once_there_is_space",
                              "test_no_space_for_the_record_directory_is_one_line",
                              "test_no_space_for_the_record_is_one_line_and_leaves_nothing",
                              "test_no_space_through_the_hook_is_its_one_line_refusal"),
    "test_install.py": ("test_installed_hook_runs_a_contract_example",),
    "test_ovf.py": ("test_outputs_keep_a_files_mode_and_owner_and_new_content_is_0600",),
    "test_presets_consumers.py": ("test_config_drive_latest_serves_a_reader_that_knows_no_dated_version",),
    "test_seal.py": ("test_a_key_directory_reached_through_a_link_is_refused", "test_a_missing_key_is_named",
                     "test_key_new_writes_32_root_only_bytes_and_makes_them_current",
                     "test_keys_that_others_could_read_or_swap_are_refused"),
    "test_seal_hook.py": None,
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = os.path.basename(str(item.fspath))
        if module in NEEDS_ROOT and (NEEDS_ROOT[module] is None or item.originalname in NEEDS_ROOT[module]):
            item.add_marker(pytest.mark.root)


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
