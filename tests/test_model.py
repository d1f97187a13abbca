"""The payload rules of docs/format.md, as a table."""

import re

import pytest

from payloadhook.errors import PayloadError
from payloadhook.model import Payload, PayloadFile, check_label, decode_content

VALID_NAMES = [
    ("cdrom", "readme.txt"),
    ("cdrom", "openstack/latest/meta_data.json"),
    ("cdrom", "Ünïcödé/日本語のファイル名.txt"),
    ("cdrom", "a" * 255),
    ("cdrom", "with:colon?and*star.txt"),
    ("cdrom", "/".join("d" * 7) + "/f"),
    ("floppy", "Unattend.xml"),
    ("floppy", "$OEM$/setup script.cmd"),
    ("floppy", "файл.txt"),
    ("floppy", "x" * 255),
    ("floppy", "\U0001F600" * 127),
    ("network", "meta-data"),
    ("network", "openstack/latest/meta_data.json"),
    ("network", "/".join("d" * 12) + "/f"),
    ("network", "Grüße.txt"),
    ("fwcfg", "opt/com.coreos/config"),
    ("fwcfg", "opt/" + "x" * 51),
    ("fwcfg", "opt/org.example/a-b_c.d~e"),
]

INVALID_NAMES = [
    ("cdrom", "", "empty"),
    ("cdrom", "/etc/passwd", "absolute"),
    ("cdrom", "../escape", "'..' component"),
    ("cdrom", "a/../b", "'..' component"),
    ("cdrom", "a/./b", "'.' component"),
    ("cdrom", ".", "'.' component"),
    ("cdrom", "a//b", "empty component"),
    ("cdrom", "dir/", "empty component"),
    ("cdrom", "nul\x00byte", "control character"),
    ("cdrom", "new\nline", "control character"),
    ("cdrom", "del\x7f", "control character"),
    ("cdrom", "c1\x85", "control character"),
    ("cdrom", "a" * 256, "over 255 bytes"),
    ("cdrom", "é" * 128, "over 255 bytes"),
    ("cdrom", "/".join("d" * 8) + "/f", "deeper than 8"),
    ("floppy", "what?.txt", "'?'"),
    ("floppy", 'quote".txt', "'\"'"),
    ("floppy", "back\\slash", "which a FAT long name cannot hold"),
    ("floppy", "colon:name", "':'"),
    ("floppy", "trailing.", "ending in"),
    ("floppy", "trailing ", "ending in"),
    ("floppy", "x" * 256, "over 255 characters"),
    ("floppy", "\U0001F600" * 128, "over 255 characters"),
    ("floppy", "/".join(["y" * 100] * 3), "longer than a FAT path"),
    ("floppy", "tab\tname", "control character"),
    ("network", "../escape", "'..' component"),
    ("network", "a?b", "URL's path"),
    ("network", "a#b", "URL's path"),
    ("network", "%2e%2e", "URL's path"),
    ("network", "back\\slash", "URL's path"),
    ("network", "a" * 256, "over 255 bytes"),
    ("fwcfg", "com.coreos/config", "does not start with 'opt/'"),
    ("fwcfg", "etc/boot-menu-wait", "does not start with 'opt/'"),
    ("fwcfg", "opt/" + "x" * 52, "over the 55"),
    ("fwcfg", "opt/a,b", "printable ASCII"),
    ("fwcfg", "opt/a b", "printable ASCII"),
    ("fwcfg", "opt/ü", "printable ASCII"),
    ("fwcfg", "opt/../x", "'..' component"),
]


@pytest.mark.parametrize("payload_type,name", VALID_NAMES)
def test_valid_names_are_accepted(payload_type, name):
    payload = Payload(type=payload_type, files=(PayloadFile(name, b"x"),))
    assert payload.files[0].name == name


@pytest.mark.parametrize("payload_type,name,fragment", INVALID_NAMES)
def test_invalid_names_are_refused(payload_type, name, fragment):
    with pytest.raises(PayloadError, match=re.escape(fragment)):
        Payload(type=payload_type, files=(PayloadFile(name, b"x"),))


@pytest.mark.parametrize("payload_type,names,fragment", [
    ("cdrom", ["a.txt", "a.txt"], "duplicates"),
    ("cdrom", ["d/a", "d/a"], "duplicates"),
    ("floppy", ["Readme.txt", "README.TXT"], "differs only in case"),
    ("floppy", ["Dir/a", "dir"], "also a directory"),
    ("floppy", ["Dir/a", "DIR/b"], "directory 'DIR' that differs only in case from 'Dir'"),
    ("floppy", ["a/Sub/x", "a/SUB/y"], "directory 'SUB' that differs only in case from 'Sub'"),
    ("floppy", ["a/Sub/x", "A/sub/y"], "directory 'A' that differs only in case from 'a'"),
    ("floppy", ["a/b/c", "a/b"], "also a directory"),
    ("cdrom", ["a", "a/b"], "also a directory"),
    ("cdrom", ["a/b", "a"], "also a directory"),
])
def test_colliding_names_are_refused(payload_type, names, fragment):
    with pytest.raises(PayloadError, match=fragment):
        Payload(type=payload_type, files=tuple(PayloadFile(n, b"") for n in names))


def test_case_differences_are_fine_on_cdrom():
    payload = Payload(type="cdrom", files=(PayloadFile("Readme.txt", b"1"), PayloadFile("README.TXT", b"2")))
    assert len(payload.files) == 2
    payload = Payload(type="cdrom", files=(PayloadFile("Dir/a", b"1"), PayloadFile("DIR/b", b"2")))
    assert len(payload.files) == 2


def test_same_directory_written_alike_is_fine_on_floppy():
    payload = Payload(type="floppy", files=(PayloadFile("Dir/a", b"1"), PayloadFile("Dir/B/c", b"2"),
                                            PayloadFile("Dir/b2", b"3")))
    assert len(payload.files) == 3


@pytest.mark.parametrize("payload_type,label,written", [
    ("cdrom", "config-2", "config-2"),
    ("cdrom", "cidata", "cidata"),
    ("cdrom", "x" * 32, "x" * 32),
    ("floppy", "unattend", "UNATTEND"),
    ("floppy", "PAYLOAD", "PAYLOAD"),
    ("floppy", "A" * 11, "A" * 11),
])
def test_labels(payload_type, label, written):
    assert check_label(label, payload_type) == written
    assert Payload(type=payload_type, files=(), volume_id=label).label == written


@pytest.mark.parametrize("payload_type,label,fragment", [
    ("cdrom", "x" * 33, "longer than 32"),
    ("floppy", "A" * 12, "longer than 11"),
    ("floppy", "ÜBER", "not ASCII"),
    ("floppy", "A.B", "cannot hold"),
    ("cdrom", "", "empty"),
    ("cdrom", "bad\nlabel", "control"),
])
def test_bad_labels(payload_type, label, fragment):
    with pytest.raises(PayloadError, match=fragment):
        Payload(type=payload_type, files=(), volume_id=label)


def test_default_label_is_payload():
    assert Payload(type="cdrom", files=()).label == "PAYLOAD"
    assert Payload(type="floppy", files=()).label == "PAYLOAD"


@pytest.mark.parametrize("text,encoding,expected", [
    ("eyJ1dWlkIjogIngifQo=", "base64", b'{"uuid": "x"}\n'),
    ("eyJ1dWlk\n  IjogIngi\r\n\tfQo=\n", None, b'{"uuid": "x"}\n'),
    ("plain UTF-8 text, kept verbatim", "text", b"plain UTF-8 text, kept verbatim"),
    ("  spaces\nand lines  ", "text", b"  spaces\nand lines  "),
    ("Grüße", "text", "Grüße".encode()),
    ("", "base64", b""),
])
def test_content_decoding(text, encoding, expected):
    assert decode_content(text, encoding, "f") == expected


@pytest.mark.parametrize("text,encoding,fragment", [
    ("not*base64!", "base64", "not valid base64"),
    ("abc", "base64", "not valid base64"),
    ("aGVsbG8=", "hex", "encoding 'hex' is unknown"),
    ("aGVsbG8=", "Base64", "unknown"),
    ("ü", None, "not valid base64"),
])
def test_bad_content(text, encoding, fragment):
    with pytest.raises(PayloadError, match=fragment):
        decode_content(text, encoding, "f")


def test_limits():
    payload = Payload(type="cdrom", files=(PayloadFile("a", b"x" * 10), PayloadFile("b", b"x" * 10)))
    payload.check_limits(max_file_size=10, max_payload_size=20)
    with pytest.raises(PayloadError, match="over max_file_size"):
        payload.check_limits(max_file_size=9, max_payload_size=100)
    with pytest.raises(PayloadError, match="over max_payload_size"):
        payload.check_limits(max_file_size=100, max_payload_size=19)


def test_unknown_type():
    with pytest.raises(PayloadError, match="unknown; use cdrom, floppy, network or fwcfg"):
        Payload(type="usb", files=())


def test_repr_never_shows_content():
    assert "SECRET" not in repr(Payload(type="cdrom", files=(PayloadFile("a", b"SECRET"),)))


def test_messages_never_show_control_characters():
    with pytest.raises(PayloadError) as info:
        Payload(type="cdrom", files=(PayloadFile("a\nb\x1b[31m", b""),))
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


@pytest.mark.parametrize("name,shown", [
    ("a\nb", "'a\\nb'"),
    ("esc\x1b[31m", "'esc\\x1b[31m'"),
    ("line\u2028sep", "'line\\u2028sep'"),
])
def test_messages_show_readable_escapes(name, shown):
    with pytest.raises(PayloadError, match="control character") as info:
        Payload(type="cdrom", files=(PayloadFile(name, b""),))
    assert str(info.value) == f"file name {shown} contains a control character"


def test_a_byte_that_is_not_utf8_is_called_that():
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")   # as os.listdir gives a Latin-1 name
    with pytest.raises(PayloadError) as info:
        Payload(type="floppy", files=(PayloadFile(name, b""),))
    assert str(info.value) == "file name 'caf\\xe9.txt' (not UTF-8) is refused: names are UTF-8"
    assert "control" not in str(info.value)


def test_a_lone_surrogate_is_not_a_character():
    with pytest.raises(PayloadError, match="lone surrogate"):
        Payload(type="cdrom", files=(PayloadFile("a\ud800", b""),))


def test_messages_are_bounded():
    with pytest.raises(PayloadError) as info:
        Payload(type="cdrom", files=(PayloadFile("x" * 1_000_000 + "\n", b""),))
    assert len(str(info.value)) < 200 and "…" in str(info.value)


def test_models_are_frozen_and_replace_checks_anew():
    from payloadhook.model import replace
    payload = Payload(type="cdrom", files=[PayloadFile("a", b"x")], volume_id="cidata")
    with pytest.raises(AttributeError, match="frozen"):
        payload.volume_id = "other"    # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        payload.files[0].content = b"y"    # type: ignore[misc]
    assert payload.files == (PayloadFile("a", b"x"),)    # a list given is kept as a tuple
    assert replace(payload, target="hdc") == Payload(type="cdrom", files=payload.files, target="hdc",
                                                     volume_id="cidata")
    assert hash(payload) == hash(replace(payload))
    with pytest.raises(PayloadError, match="duplicates"):
        replace(payload, files=payload.files * 2)
    assert "x" not in repr(PayloadFile("a", b"x" * 8))    # content is never shown


@pytest.mark.parametrize("payload_type", ["network", "fwcfg"])
def test_payloads_without_a_device_take_no_target_or_label(payload_type):
    name = "opt/x" if payload_type == "fwcfg" else "meta-data"
    payload = Payload(type=payload_type, files=(PayloadFile(name, b"x"),))
    assert payload.label is None and not payload.is_medium
    with pytest.raises(PayloadError, match="binds to no disk; it takes no target"):
        Payload(type=payload_type, files=(PayloadFile(name, b"x"),), target="hdc")
    with pytest.raises(PayloadError, match="is no medium; it takes no volume_id"):
        Payload(type=payload_type, files=(PayloadFile(name, b"x"),), volume_id="cidata")
