"""The configuration file (CONTRACT.md section 3)."""

import pytest

from payloadhook import config as config_module
from payloadhook.config import Config, load_config
from payloadhook.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "payloadhook.conf"
    path.write_text(text)
    return str(path)


def test_missing_default_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "DEFAULT_PATH", str(tmp_path / "absent.conf"))
    config = load_config(environ={})
    assert config == Config()
    assert (config.image_dir, config.max_file_size, config.max_payload_size) == ("/run/payloadhook", 16 << 20, 64 << 20)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(environ={"PAYLOADHOOK_CONF": str(tmp_path / "nope.conf")})


def test_comments_blank_lines_and_units(tmp_path):
    path = write(tmp_path, "# a comment\n; another\n\n[payloadhook]\n# image_dir = /nope\n"
                           "MAX_FILE_SIZE = 512K\nmax_payload_size=2GiB\n")
    config = load_config(path)
    assert (config.image_dir, config.max_file_size, config.max_payload_size) == ("/run/payloadhook", 512 << 10, 2 << 30)


def test_the_shipped_file_is_the_defaults():
    from payloadhook.install import data_file
    assert load_config(data_file("payloadhook.conf")) == Config(source=data_file("payloadhook.conf"))


def test_values(tmp_path):
    path = write(tmp_path, "[payloadhook]\nimage_dir = /srv/payloads/\nmax_file_size = 1M\nmax_payload_size = 1048576\n")
    config = load_config(path)
    assert (config.image_dir, config.max_file_size, config.max_payload_size) == ("/srv/payloads", 1 << 20, 1 << 20)
    assert load_config(environ={"PAYLOADHOOK_CONF": path}) == config


@pytest.mark.parametrize("text,fragment", [
    ("[payloadhook]\nimage_dir = relative/dir\n", "image_dir must be an absolute path"),
    ("[payloadhook]\nimage_dir = /\n", "must not be /"),
    ("[payloadhook]\nmax_file_size = lots\n", "max_file_size is not a size"),
    ("[payloadhook]\nmax_payload_size = 0\n", "max_payload_size must be positive"),
    ("[payloadhook]\nimagedir = /x\n", "unknown key 'imagedir'"),
    ("[other]\nx = 1\n", "unknown section [other]"),
    ("image_dir = /x\n", "malformed: line 1: image_dir comes before the [payloadhook] section"),
    ("[payloadhook]\nimage_dir = /a\nimage_dir = /b\n", "malformed: line 3: image_dir is set twice"),
    ("[payloadhook\n", "malformed: line 1: bad section header"),
    ("[payloadhook]\nimage_dir\n", "malformed: line 2: expected key = value"),
    ("[payloadhook]\nimage_dir = /a\n  /b\n", "malformed: line 3: indented line"),
    ("[payloadhook]\nmax_file_size = 12Q\n", "max_file_size is not a size"),
    ("[payloadhook]\nmax_file_size = ١٢\n", "max_file_size is not a size"),
])
def test_malformed_files_name_file_and_key(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert fragment in str(info.value) and path in str(info.value)


def test_unreadable_file(tmp_path):
    path = tmp_path / "dir.conf"
    path.mkdir()
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(str(path))
