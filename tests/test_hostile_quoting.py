"""Every value a message quotes goes through the one bounded, escaped quoting (errors.quote):
1 MiB, with a newline (and the other line breaks str.splitlines knows), or not UTF-8, in each
attribute and element of a domain the contract reads, gives a refusal of one line under
1 KiB, at the hook's prepare and at `payloadhook check FILE.xml` alike. (The third review
found `type=` echoed whole: a 2 MB attribute made a 2 MB "one line" in libvirt's log.)"""

import io
import os

import pytest

from payloadhook.cli import main as command
from payloadhook.hook import run
from payloadhook.seal.blob import seal

MiB = 1024 * 1024
UUID = "7d6c5b4a-3928-4716-a5b4-c3d2e1f00918"
LIMIT = 1024

#: One domain, every place the contract reads a value from a slot: {NAME} and so on.
TEMPLATE = """<domain type='{DOMTYPE}'>
  <name>{NAME}</name>
  <uuid>{UUID}</uuid>
  <metadata>
    <pl:payloads xmlns:pl="urn:payloadhook:payload:1">
      <pl:payload type="{TYPE}" target="{TARGET}"{ATTR}>
        <pl:volume_id>{VOLID}</pl:volume_id>{ELEMENT}
        <pl:files>
          <pl:file><pl:name>{FNAME}</pl:name><pl:content encoding="{ENCODING}">{CONTENT}</pl:content></pl:file>
          <pl:file><pl:name>secret</pl:name><pl:content encoding="sealed" key="{KEY}">{SEALED}</pl:content></pl:file>
        </pl:files>
      </pl:payload>
    </pl:payloads>
  </metadata>
  <devices>
    <disk type='{DISKTYPE}' device='{DEVICE}'>
      <driver name='qemu' type='{DRIVER}'/>
      <source file='{SOURCE}'/>
      <target dev='{DEV}' bus='{BUS}'/>
      <readonly/>
    </disk>
  </devices>
</domain>"""

#: An element and an attribute the contract does not know, named with 1 MiB (a name can hold
#: neither a newline nor a stray byte); absent from the good document.
NAMES = {"ELEMENT": b"<pl:%s/>", "ATTR": b' %s="x"'}


def good(image_dir: str, key_id: str) -> dict[str, str]:
    import base64
    blob = seal(KEY_BYTES, key_id, UUID, "secret", b"the secret")
    return {"DOMTYPE": "kvm", "NAME": "quoted", "UUID": UUID, "TYPE": "cdrom", "TARGET": "hdc", "ATTR": "",
            "VOLID": "cidata", "ELEMENT": "", "FNAME": "user-data", "ENCODING": "base64",
            "CONTENT": base64.b64encode(b"#cloud-config\n").decode(), "KEY": key_id,
            "SEALED": base64.b64encode(blob).decode(), "DISKTYPE": "file", "DEVICE": "cdrom", "DRIVER": "raw",
            "SOURCE": f"{image_dir}/quoted-hdc.iso", "DEV": "hdc", "BUS": "ide"}


KEY_BYTES = bytes(range(32))
SLOTS = tuple(good("/i", "k"))


def hostile(kind: str, slot: str) -> bytes:
    """A value for the slot, as it stands in the document."""
    if slot in NAMES:
        return NAMES[slot] % (b"A" * MiB)
    if kind == "long":
        return b"A" * MiB
    if kind == "newline":        # a character reference: attribute normalisation keeps it a newline
        return b"A" * MiB + b"&#10;payloadhook: forged second line&#13;&#x2028;&#x85;\xc2\x85B"
    return b"\xff\xfeA" + b"A" * MiB    # not UTF-8: the document itself is refused


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    base = tmp_path_factory.mktemp("quoting")
    os.chmod(base, 0o755)
    keys_dir = base / "keys"
    keys_dir.mkdir(mode=0o700)
    key_id = "quoting-1"
    (keys_dir / f"{key_id}.key").write_bytes(KEY_BYTES)
    os.chmod(keys_dir / f"{key_id}.key", 0o600)
    conf = base / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {base}/images\nkey_dir = {keys_dir}\n")
    environ = {"PAYLOADHOOK_CONF": str(conf), "PAYLOADHOOK_INDEX": str(base / "index"), "LC_ALL": "C"}
    return base, environ, good(f"{base}/images", key_id)


def document(values: dict[str, str], slot: str, value: bytes) -> bytes:
    text = TEMPLATE
    for name, good_value in values.items():
        if name != slot:
            text = text.replace("{" + name + "}", good_value)
    before, after = text.split("{" + slot + "}")
    return before.encode() + value + after.encode()


def assert_one_bounded_line(text: str, where: str) -> None:
    assert text.endswith("\n"), f"{where}: {text[:200]!r}"
    assert len(text.splitlines()) == 1 and text.count("\n") == 1, f"{where}: {text[:300]!r}"
    assert len(text.encode("utf-8", "surrogateescape")) < LIMIT, f"{where}: {len(text)} characters"
    assert text.startswith("payloadhook: ")


def test_the_good_document_is_accepted_by_both(host, capsys, monkeypatch):
    """The control: with every slot good, the hook builds and check says ok, so each refusal
    below is the hostile value's."""
    base, environ, values = host
    xml = document(values, "BUS", b"ide")
    stderr = io.StringIO()
    assert run(["qemu", "quoted", "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr, environ) == 0
    assert stderr.getvalue() == ""
    run(["qemu", "quoted", "release", "end", "-"], io.BytesIO(b""), io.BytesIO(), io.StringIO(), environ)
    path = base / "good.xml"
    path.write_bytes(xml)
    monkeypatch.setenv("PAYLOADHOOK_CONF", environ["PAYLOADHOOK_CONF"])
    assert command(["check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["long", "newline", "not-utf8"])
@pytest.mark.parametrize("slot", SLOTS)
def test_a_hostile_value_anywhere_gives_one_bounded_line(host, capsys, monkeypatch, slot, kind):
    base, environ, values = host
    xml = document(values, slot, hostile(kind, slot))
    stderr = io.StringIO()
    status = run(["qemu", "quoted", "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr, environ)
    run(["qemu", "quoted", "release", "end", "-"], io.BytesIO(b""), io.BytesIO(), io.StringIO(), environ)
    if status != 0 or stderr.getvalue():
        assert_one_bounded_line(stderr.getvalue(), f"prepare, {slot} {kind}")

    path = base / f"{slot}-{kind}.xml"
    path.write_bytes(xml)
    monkeypatch.setenv("PAYLOADHOOK_CONF", environ["PAYLOADHOOK_CONF"])
    status = command(["check", str(path)])
    out, err = capsys.readouterr()
    if status != 0:
        assert_one_bounded_line(err, f"check, {slot} {kind}")
    for line in out.splitlines():
        assert len(line.encode("utf-8", "surrogateescape")) < LIMIT, f"check's report, {slot} {kind}"
    path.unlink()


@pytest.mark.parametrize("slot", ["TYPE", "TARGET", "VOLID", "FNAME", "ENCODING", "KEY", "SOURCE", "DEVICE"])
def test_each_of_these_is_refused_and_the_line_names_it_escaped(host, slot):
    """Values the refusal quotes: refused, and quoted cut short with '…', the newline escaped."""
    _, environ, values = host
    xml = document(values, slot, hostile("newline", slot))
    stderr = io.StringIO()
    assert run(["qemu", "quoted", "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr, environ) == 1
    assert_one_bounded_line(stderr.getvalue(), slot)
    assert "AAAA…" in stderr.getvalue() and "forged" not in stderr.getvalue()


def test_a_hostile_domain_name_from_libvirts_argv_is_bounded_too(host):
    _, environ, values = host
    xml = document(values, "TYPE", b"tape")
    name = "A" * (100 * 1024) + "\npayloadhook: forged\udcff"    # a byte not UTF-8, as os.fsdecode gives it
    stderr = io.StringIO()
    assert run(["qemu", name, "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr, environ) == 1
    assert_one_bounded_line(stderr.getvalue(), "argv")
    assert "'tape'" in stderr.getvalue()


def test_a_file_name_on_checks_command_line_is_quoted_escaped(host, tmp_path, capsys, monkeypatch):
    """check FILE.xml names its file: a name with a newline and a byte that is not UTF-8."""
    _, environ, values = host
    path = os.path.join(os.fsencode(tmp_path), b"bad\npayloadhook: forged\xff.xml")
    with open(path, "wb") as stream:
        stream.write(document(values, "TYPE", b"tape"))
    monkeypatch.setenv("PAYLOADHOOK_CONF", environ["PAYLOADHOOK_CONF"])
    assert command(["check", os.fsdecode(path)]) == 1
    err = capsys.readouterr().err
    assert_one_bounded_line(err, "check's file name")
    assert "'tape' is unknown" in err


def test_no_message_quotes_input_with_repr():
    """repr() is neither bounded nor the project's escaping: messages quote with errors.quote
    (or errors.shown). A raise or print whose f-string uses !r is a value quoted the wrong way."""
    import re
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "payloadhook")
    message = re.compile(r"(Error|print)\(\s*f[\"'][^\n]*!r\}")
    found = []
    for top, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                for number, line in enumerate(open(os.path.join(top, name), encoding="utf-8"), 1):
                    if message.search(line):
                        found.append(f"{name}:{number}: {line.strip()}")
    assert found == []


def test_libvirts_own_messages_are_bounded_and_escaped_too():
    """libvirt's errors quote what they were given (a domain name, XML): the command shows
    their first line through the same quoting."""
    from payloadhook.ops.virt import _reason

    class Failure(Exception):
        def get_error_message(self):
            return "Domain not found: no domain with matching name '" + "A" * MiB + "\x1b[2J'\nsecond line"
    reason = _reason(Failure())
    assert len(reason) < LIMIT and "\x1b" not in reason and "second line" not in reason
    assert reason.startswith("Domain not found: no domain with matching name 'AAAA") and reason.endswith("…")


#: The speed review's documents: a type that forges a line where config.check named it bare
#: (over max_directories, and unknown), targets that each quote within bounds yet 16 of them
#: (or two names) made a line over 1 KiB, and file names differing only in case.
FORGED = b"cdrom&#10;payloadhook: domain web1: all fine, proceed" + b"A" * 3000
TAG = b"&#xE0001;"     # a format character: escaped as \U000e0001, ten characters for one


def _doc(payload_attrs: bytes, files: bytes, disks: bytes) -> bytes:
    return (b"<domain><name>d</name><metadata><pl:payloads xmlns:pl='urn:payloadhook:payload:1'><pl:payload "
            + payload_attrs + b"><pl:files>" + files + b"</pl:files></pl:payload></pl:payloads></metadata><devices>"
            + disks + b"</devices></domain>")


def _file(name: bytes) -> bytes:
    return b"<pl:file><pl:name>" + name + b"</pl:name><pl:content encoding='text'>x</pl:content></pl:file>"


def _disk(device: bytes, source: bytes, dev: bytes) -> bytes:
    return (b"<disk type='file' device='" + device + b"'><source file='" + source + b"'/><target dev='" + dev
            + b"'/></disk>")


def reviewed(name: str, image_dir: str) -> bytes:
    images = image_dir.encode()
    several = b"".join(_disk(b"cdrom", images + b"/d%d.iso" % i, TAG * 22 + b"%d" % i) for i in range(17))
    return {
        "type_dirs": _doc(b"type='" + FORGED + b"'", b"".join(_file(b"d%d/f" % i) for i in range(1001)),
                          _disk(b"cdrom", images + b"/d.iso", b"hdc")),
        "type_unknown": _doc(b"type='" + FORGED + b"'", _file(b"a"), _disk(b"cdrom", images + b"/d.iso", b"hdc")),
        "targets_several": _doc(b"type='cdrom'", _file(b"a"), several),
        "targets_unknown2": _doc(b"type='cdrom' target='zz'", _file(b"a"), several),
        "names_case2": _doc(b"type='floppy'", _file(b"a" + TAG * 72) + _file(b"A" + TAG * 72),
                            _disk(b"floppy", images + b"/f.img", b"fda")),
    }[name]


@pytest.mark.parametrize("name", ["type_dirs", "type_unknown", "targets_several", "targets_unknown2",
                                  "names_case2"])
def test_the_speed_reviews_documents_are_refused_in_one_bounded_line(host, capsys, monkeypatch, name):
    base, environ, _ = host
    xml = reviewed(name, f"{base}/images")
    stderr = io.StringIO()
    assert run(["qemu", "d", "prepare", "begin", "-"], io.BytesIO(xml), io.BytesIO(), stderr, environ) == 1
    run(["qemu", "d", "release", "end", "-"], io.BytesIO(b""), io.BytesIO(), io.StringIO(), environ)
    assert_one_bounded_line(stderr.getvalue(), f"prepare, {name}")
    assert "all fine" not in stderr.getvalue() or "\\npayloadhook: domain web1: all fine" in stderr.getvalue()
    path = base / f"{name}.xml"
    path.write_bytes(xml)
    monkeypatch.setenv("PAYLOADHOOK_CONF", environ["PAYLOADHOOK_CONF"])
    assert command(["check", str(path)]) == 1
    assert_one_bounded_line(capsys.readouterr().err, f"check, {name}")
    path.unlink()


@pytest.mark.parametrize("message", ["a\nb", "x" * 5000, "'" + "\U000e0001" * 200 + "' and '" + "é" * 900 + "'",
                                     "bad byte \udcff\r\x1b[2J"])
def test_one_line_bounds_and_escapes_whatever_it_is_given(message):
    """The one place every printed line goes through: under 1 KiB, one line, cut with '…'."""
    from payloadhook.errors import one_line
    line = one_line(message)
    assert_one_bounded_line(line, repr(message[:40]))
    assert "\x1b" not in line and "\r" not in line
    if len(message.encode("utf-8", "surrogateescape")) > LIMIT:
        assert line.endswith("…\n")
