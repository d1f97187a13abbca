"""The tests never read the host's payloadhook set-up: with payloadhook installed and used on
the machine (a configuration in /etc/payloadhook, sealing keys in /etc/payloadhook/keys, an
index in /run/payloadhook.index), the suite sees only its own (tests/conftest.py). Found when
a host key made the OVF tests seal what they meant to import plainly."""

import os
import subprocess
import sys

from payloadhook import config
from payloadhook.store import records


def test_the_configuration_in_process_is_the_sessions_own(private_config):
    loaded = config.load_config()
    assert loaded.source == str(private_config) != config.DEFAULT_PATH
    assert loaded.key_dir != "/etc/payloadhook/keys" and os.listdir(loaded.key_dir) == []
    assert records.index_dir() != records.INDEX_DIR or records.INDEX_DIR != "/run/payloadhook.index"


def test_a_child_command_sees_the_sessions_keys_not_the_hosts(private_config):
    result = subprocess.run([sys.executable, "-m", "payloadhook", "key", "list"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    keys = config.load_config().key_dir
    assert result.stdout == f"no sealing keys in {keys}; 'payloadhook key new' makes one\n"
    assert os.environ[records.INDEX_ENV] != "/run/payloadhook.index"
