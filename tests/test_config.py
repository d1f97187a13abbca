"""The configuration file (README, "Configuration")."""

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
    # the limits, and the sealing keys' directory
    ("[payloadhook]\nmax_files = 1K\n", "max_files is not a whole number"),
    ("[payloadhook]\nmax_payloads = 0\n", "max_payloads must be positive"),
    ("[payloadhook]\nmax_directories = -3\n", "max_directories is not a whole number"),
    ("[payloadhook]\nmax_image_size = big\n", "max_image_size is not a size"),
    ("[payloadhook]\nkey_dir = keys\n", "key_dir must be an absolute path"),
    ("[payloadhook]\nkey_dir = /\n", "key_dir must not be /"),
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


# -- limits: configurable, checked before any work --------------------------------------------

def test_limit_keys_and_their_defaults(tmp_path):
    assert Config() == Config(max_payloads=8, max_files=10000, max_directories=1000, max_image_size=256 << 20)
    path = write(tmp_path, "[payloadhook]\nmax_payloads = 2\nmax_files = 50\nmax_directories = 5\n"
                           "max_image_size = 10M\n")
    config = load_config(path)
    assert (config.max_payloads, config.max_files, config.max_directories, config.max_image_size) == (2, 50, 5, 10 << 20)


def test_config_is_frozen():
    config = Config()
    with pytest.raises(AttributeError):
        config.image_dir = "/tmp"    # type: ignore[misc]
    assert config.replace(max_files=3) == Config(max_files=3) and config == Config()
    assert hash(config) == hash(Config())


def test_a_file_over_the_size_limit_is_refused_whole(tmp_path):
    # today's bug: the first MiB was read and image_dir loaded cut short
    path = write(tmp_path, "[payloadhook]\n" + "#" * (config_module.MAX_CONFIG_BYTES - 40) + "\nimage_dir = /srv/" + "x" * 60 + "\n")
    with pytest.raises(ConfigError, match="is over 1048576 bytes; refused rather than read in part"):
        load_config(path)


def test_a_value_with_control_characters_is_shown_escaped(tmp_path):
    path = write(tmp_path, "[payloadhook]\nfake\x1b[2Kkey = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)


from payloadhook.config import check  # noqa: E402
from payloadhook.domain.view import read_domain  # noqa: E402
from payloadhook.errors import PayloadError  # noqa: E402
from payloadhook.model import Payload, PayloadFile  # noqa: E402


def files_xml(names, content=""):
    return "".join(f"<pl:file><pl:name>{n}</pl:name><pl:content>{content}</pl:content></pl:file>" for n in names)


def domain_with(payloads: list[tuple[str, str]]) -> bytes:
    """payloads: (type, files XML) each, bound to its own disk."""
    meta = "".join(f"<pl:payload type='{t}' target='d{i}'><pl:files>{f}</pl:files></pl:payload>"
                   for i, (t, f) in enumerate(payloads))
    disks = "".join(f"<disk type='file' device='{t}'><source file='/run/payloadhook/x-{i}'/><target dev='d{i}'/></disk>"
                    for i, (t, _) in enumerate(payloads))
    return (f"<domain><name>x</name><metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'>{meta}"
            f"</pl:payloads></metadata><devices>{disks}</devices></domain>").encode()


@pytest.mark.parametrize("payloads,config,fragment", [
    ([("cdrom", "")] * 9, Config(), "the domain declares 9 payloads, over max_payloads (8)"),
    ([("cdrom", files_xml(f"f{i}" for i in range(11)))], Config(max_files=10),
     "'cdrom' payload has 11 files, over max_files (10)"),
    ([("cdrom", files_xml(f"d{i}/f" for i in range(6)))], Config(max_directories=5),
     "'cdrom' payload has more than 5 directories, over max_directories"),
    ([("cdrom", files_xml(["a/b/c/d/e/f/g"]))], Config(max_directories=5),
     "more than 5 directories"),
    ([("cdrom", files_xml(["big"], "QUJDRA=="))], Config(max_file_size=3),
     "file 'big' is 4 bytes, over max_file_size (3)"),
    ([("cdrom", files_xml(["a", "b"], "QUJD"))], Config(max_payload_size=5),
     "'cdrom' payload is 6 bytes, over max_payload_size (5)"),
    ([("floppy", ""), ("floppy", "")], Config(max_image_size=2 * 1474560 - 1),
     "the domain's images would take about 2949120 bytes, over max_image_size"),
])
def test_limits_refuse_before_any_content_is_decoded(payloads, config, fragment):
    view = read_domain(domain_with(payloads), editable=False)
    with pytest.raises(PayloadError) as info:
        check(view.declared, config)
    assert fragment in str(info.value)
    assert not view.decoded    # nothing decoded yet


def test_the_limits_count_without_decoding_even_bad_base64():
    # content that would not decode: the limits are told first, from its length alone
    view = read_domain(domain_with([("cdrom", files_xml(["a"], "!!!!" * 100))]), editable=False)
    with pytest.raises(PayloadError, match="over max_file_size"):
        check(view.declared, Config(max_file_size=10))


@pytest.mark.parametrize("text,size", [("", 0), ("YQ==", 1), ("YWI=", 2), ("YWJj", 3), (" Y W\nJ j\t", 3),
                                       ("YWJj\u00a0ZA==", 4)])
def test_declared_size_is_the_decoded_size(text, size):
    (declared,) = read_domain(domain_with([("cdrom", files_xml(["a"], text))]), editable=False).declared
    assert declared.files[0].size == size


def test_check_takes_built_payloads_too():
    payload = Payload(type="cdrom", files=tuple(PayloadFile(f"f{i}", b"x") for i in range(3)))
    check([payload], Config(max_files=3))
    with pytest.raises(PayloadError, match="'cdrom' payload has 3 files, over max_files"):
        check([payload], Config(max_files=2))


# -- the cheap paths' posix functions (posixenv.py) behave as os's --------------------------------

import os  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from payloadhook import posixenv  # noqa: E402


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["", ".", "..", "a", "b.", "..c", "d d"]), max_size=8).map("/".join))
def test_normpath_is_os_paths_for_absolute_paths(tail):
    for path in ("/" + tail, "//" + tail, "///" + tail):
        assert posixenv.normpath(path) == os.path.normpath(path)


def test_getenv_and_lexists_are_os_s(tmp_path):
    assert posixenv.getenv("PATH") == os.environ.get("PATH")
    assert posixenv.getenv("PAYLOADHOOK_NOT_SET") is None
    assert posixenv.getenv("X", {"X": "y"}) == "y"
    (tmp_path / "link").symlink_to(tmp_path / "missing")
    assert posixenv.lexists(str(tmp_path / "link")) and not posixenv.lexists(str(tmp_path / "missing"))
    assert posixenv.fsdecode(b"a\xff") == os.fsdecode(b"a\xff")
