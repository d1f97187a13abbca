"""schema/payloads.rng: the RELAX NG schema editors and xmllint validate payload
metadata with, held to the same good and bad cases as the model.

Every case the model refuses for its structure or its words is refused by the schema, and
every good case accepted; what a schema cannot say is listed in KNOWN with the reason, and
checked to be what it says (accepted by the schema, refused by payloadhook).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from payloadhook import xmlsafe
from payloadhook.domain.view import read_domain
from payloadhook.errors import PayloadhookError, XMLError
from tests.conftest import REPO
from tests.test_hostile_xml import ACCEPTED, REFUSED
from tests.test_model import INVALID_NAMES, VALID_NAMES

SCHEMA = os.path.join(REPO, "schema", "payloads.rng")
DATA = os.path.join(REPO, "tests", "data")
BAD = sorted(glob.glob(os.path.join(DATA, "bad", "*.xml")))
NS = "urn:payloadhook:payload:1"


def lxml_validates(xml: bytes) -> bool:
    schema = etree.RelaxNG(etree.parse(SCHEMA))
    return bool(schema.validate(etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))))


def xmllint_validates(xml: bytes) -> bool:
    result = subprocess.run(["xmllint", "--noout", "--nonet", "--relaxng", SCHEMA, "-"], input=xml,
                            capture_output=True)
    assert result.returncode in (0, 3), result.stderr    # 3: does not validate; else the schema broke
    return result.returncode == 0


VALIDATORS = [lxml_validates, pytest.param(xmllint_validates, marks=pytest.mark.skipif(
    shutil.which("xmllint") is None, reason="xmllint (Debian: libxml2-utils) is not installed"))]


@pytest.fixture(params=VALIDATORS, ids=["lxml", "xmllint"])
def validates(request):
    return request.param


def xml_text(value: str) -> str:
    """A value as XML text: escaped, and every character XML 1.0 allows only as a reference so."""
    return "".join(ch if ch.isprintable() or ch == " " else f"&#{ord(ch)};" for ch in escape(value))


def payloads(payload_type: str = "cdrom", name: str = "a", label: str | None = None, content: str = "YQ==",
             encoding: str | None = None) -> bytes:
    volume = f"<pl:volume_id>{xml_text(label)}</pl:volume_id>" if label is not None else ""
    attribute = f' encoding="{encoding}"' if encoding is not None else ""
    return (f'<pl:payloads xmlns:pl="{NS}"><pl:payload type="{payload_type}">{volume}<pl:files><pl:file>'
            f"<pl:name>{xml_text(name)}</pl:name><pl:content{attribute}>{xml_text(content)}</pl:content>"
            "</pl:file></pl:files></pl:payload></pl:payloads>").encode()


def in_domain(fragment: bytes) -> bytes:
    return (b"<domain type='kvm'><name>x</name><uuid>u</uuid><metadata><x:y xmlns:x='urn:other'/>" + fragment
            + b"</metadata><devices><disk type='file' device='cdrom'><target dev='hdc'/></disk></devices></domain>")


def model_accepts(fragment: bytes) -> bool:
    try:
        read_domain(in_domain(fragment), editable=False).payloads
    except PayloadhookError:
        return False
    return True


#: What the model refuses and the schema cannot say, and why.
KNOWN = {
    "bytes": "lengths in UTF-8 bytes (Rock Ridge's 255 per component): XSD facets count characters",
    "units": "lengths in UTF-16 units per FAT component: XSD facets count characters of the whole value",
    "nul": "XML 1.0 cannot carry NUL at all: the parser refuses the document before any schema",
    "duplicates": "duplicate names, case-insensitive collisions and a file that is also a directory: "
                  "RELAX NG compares no values across elements",
    "limits": "sizes and counts are the host's configuration, not the format",
    "binding": "which disk a payload binds to, its source and driver are the rest of the domain, not the metadata",
    "mixed": "RELAX NG ignores comments and processing instructions; payloadhook refuses them inside "
             "<pl:name>, <pl:content> and <pl:volume_id>",
    "parse": "the document is refused by the XML reader before any schema (not well-formed, DOCTYPE, entities)",
    "floppy-root": "an over-full floppy root is known only once the FAT layout is built",
    "fwcfg-parts": "an fw_cfg name's empty, '.' and '..' components: its pattern holds its characters and "
                   "length only (55 ASCII bytes)",
}

KNOWN_NAMES = {
    ("cdrom", "a" * 256): "bytes", ("cdrom", "é" * 128): "bytes",
    ("floppy", "x" * 256): "units", ("floppy", "\U0001F600" * 128): "units",
    ("cdrom", "nul\x00byte"): "nul",
    ("network", "a" * 256): "bytes", ("fwcfg", "opt/../x"): "fwcfg-parts",
}

KNOWN_BAD = {
    "07-name-nul": "parse", "12-name-duplicate": "duplicates", "13-name-case-duplicate-floppy": "duplicates",
    "16-name-fat-too-long": "units", "17-name-rock-ridge-too-long": "bytes", "19-name-file-and-directory": "duplicates",
    "22-content-over-max-file-size": "limits", "23-content-over-max-payload-size": "limits",
    "24-floppy-root-full": "floppy-root", "27-target-no-disk": "binding", "28-target-wrong-device": "binding",
    "29-binding-several-disks": "binding", "30-binding-two-payloads-one-disk": "binding",
    "31-binding-no-source": "binding", "32-binding-block-device": "binding",
    "33-source-outside-image-dir": "binding", "34-source-traversal": "binding", "35-source-reserved-name": "binding",
    "36-xml-not-well-formed": "parse", "37-xml-entity-bomb": "parse", "38-xml-external-entity": "parse",
    "41-xml-comment-in-name": "mixed", "42-xml-comment-in-content": "mixed", "43-xml-pi-in-content": "mixed",
    "46-disk-driver-qcow2": "binding", "47-limit-payloads": "limits", "48-limit-directories": "limits",
    "50-message-huge-target": "binding", "51-source-dotdot-end": "binding", "52-xml-mismatch-quotes-no-text": "parse",
    "53-foreign-image": "binding",
}

KNOWN_REFUSED = {"comment-in-name": "mixed", "comment-in-content": "mixed", "comment-in-text-content": "mixed",
                 "pi-in-name": "mixed", "pi-in-content": "mixed", "comment-in-volume-id": "mixed",
                 "namespace-by-reference": "parse", "utf-16": "parse", "doctype": "parse",
                 "undefined-entity": "parse",
                 # payloadhook reads UTF-8 (or US-ASCII) only, whatever the declaration says:
                 # refused by its readers before any schema
                 "utf-32": "parse", "ebcdic": "parse",
                 **{f"declared-{name}": "parse" for name in ("ISO-8859-1", "macintosh", "Shift_JIS", "EUC-JP",
                                                             "GBK", "BIG5", "UTF-7", "windows-874", "x-unknown")}}


def test_the_schema_compiles_and_every_reason_is_used():
    etree.RelaxNG(etree.parse(SCHEMA))
    used = set(KNOWN_NAMES.values()) | set(KNOWN_BAD.values()) | set(KNOWN_REFUSED.values())
    assert used == set(KNOWN)


@pytest.mark.parametrize("payload_type,name", VALID_NAMES)
def test_valid_names(payload_type, name, validates):
    fragment = payloads(payload_type, name)
    assert model_accepts(fragment) and validates(fragment) and validates(in_domain(fragment))


@pytest.mark.parametrize("payload_type,name,fragment", INVALID_NAMES)
def test_invalid_names(payload_type, name, fragment, validates):
    if (payload_type, name) in KNOWN_NAMES:    # a rule no schema can state: the gap is checked
        if "\x00" not in name:                  # (NUL: XML cannot carry it at all)
            assert validates(payloads(payload_type, name)) and not model_accepts(payloads(payload_type, name))
        return
    assert not model_accepts(payloads(payload_type, name))
    assert not validates(payloads(payload_type, name)) and not validates(in_domain(payloads(payload_type, name)))


@pytest.mark.parametrize("payload_type,label", [("cdrom", "config-2"), ("cdrom", "cidata"), ("cdrom", "x" * 32),
                                                ("floppy", "unattend"), ("floppy", "PAYLOAD"), ("floppy", "A" * 11),
                                                ("floppy", "MY DISK-1_~")])
def test_good_labels(payload_type, label, validates):
    assert model_accepts(payloads(payload_type, label=label)) and validates(payloads(payload_type, label=label))


@pytest.mark.parametrize("payload_type,label", [("cdrom", "x" * 33), ("floppy", "A" * 12), ("floppy", "ÜBER"),
                                                ("floppy", "A.B"), ("floppy", "A+B"), ("floppy", "[A]"),
                                                ("cdrom", ""), ("cdrom", "bad\nlabel")])
def test_bad_labels(payload_type, label, validates):
    assert not model_accepts(payloads(payload_type, label=label))
    assert not validates(payloads(payload_type, label=label))


@pytest.mark.parametrize("text,encoding", [("eyJ1dWlkIjogIngifQo=", "base64"), ("eyJ1dWlk\n  IjogIngi\r\n\tfQo=\n", None),
                                           ("plain UTF-8 text", "text"), ("  spaces\nand lines  ", "text"),
                                           ("Grüße", "text"), ("", "base64"), ("", None), ("YWI=", None)])
def test_good_content(text, encoding, validates):
    fragment = payloads(content=text, encoding=encoding)
    assert model_accepts(fragment) and validates(fragment)


@pytest.mark.parametrize("text,encoding", [("not*base64!", "base64"), ("abc", "base64"), ("aGVsbG8=", "hex"),
                                           ("aGVsbG8=", "Base64"), ("ü", None), ("YQ", None), ("Y===", None)])
def test_bad_content(text, encoding, validates):
    fragment = payloads(content=text, encoding=encoding)
    assert not model_accepts(fragment) and not validates(fragment)


@pytest.mark.parametrize("fragment", [
    payloads().replace(b"<pl:files>", b"<pl:volumeid>x</pl:volumeid><pl:files>"),          # the typo the schema was made for
    payloads().replace(b"<pl:name>a</pl:name>", b""),                                         # no name
    payloads().replace(b"</pl:file>", b"<pl:content>YQ==</pl:content></pl:file>"),           # two contents
    payloads().replace(b"</pl:file>", b"<pl:name>b</pl:name></pl:file>"),                   # two names
    payloads().replace(b' type="cdrom"', b""),                                                # no type
    payloads().replace(b' type="cdrom"', b' type="usb"'),                                     # unknown type
    payloads().replace(b"<pl:files>", b"<pl:volume_id>A</pl:volume_id><pl:volume_id>B</pl:volume_id><pl:files>"),
    payloads().replace(b"</pl:payload>", b"<pl:files/></pl:payload>"),                        # two file lists
    payloads().replace(b"<pl:name>a</pl:name>", b"<pl:name>a<pl:b/></pl:name>"),              # element in a name
    payloads().replace(b"</pl:payloads>", b"<pl:other/></pl:payloads>"),                      # unknown element
    payloads("network", "meta-data").replace(b"<pl:payload ", b'<pl:payload target="hdc" '),  # a target
    payloads("fwcfg", "opt/x").replace(b"<pl:files>", b"<pl:volume_id>A</pl:volume_id><pl:files>"),  # a label
], ids=["volumeid", "no-name", "two-contents", "two-names", "no-type", "unknown-type", "two-labels", "two-files",
        "element-in-name", "unknown-element", "network-target", "fwcfg-label"])
def test_structure_the_model_refuses(fragment, validates):
    assert not model_accepts(fragment)
    assert not validates(fragment) and not validates(in_domain(fragment))


@pytest.mark.parametrize("fragment", [
    payloads().replace(b"<pl:payload ", b'<pl:payload taget="hdd" '),
    payloads().replace(b"<pl:content>", b'<pl:content encodng="text">'),
    payloads().replace(b"<pl:content>", b'<pl:content pl:encoding="base64">'),
], ids=["target-typo", "encoding-typo", "namespaced-encoding"])
def test_the_schema_is_stricter_on_attributes(fragment, validates):
    """payloadhook ignores an attribute it does not know (as before); the schema, a tool to
    catch typos, refuses an unqualified or payloadhook-namespaced one: taget= would bind the
    payload to the default disk, encodng= read text as base64."""
    assert model_accepts(fragment)
    assert not validates(fragment)


def test_two_payload_roots_are_refused(validates):
    fragment = payloads() + payloads()
    assert not model_accepts(fragment) and not validates(in_domain(fragment))


@pytest.mark.parametrize("path", BAD, ids=[os.path.basename(p)[:-4] for p in BAD])
def test_the_bad_corpus(path, validates):
    case = os.path.basename(path)[:-4]
    xml = open(path, "rb").read()
    if KNOWN_BAD.get(case) == "parse":      # refused before any schema: KNOWN["parse"]
        with pytest.raises(XMLError):
            xmlsafe.parse_xml(xml)
        return
    if case in KNOWN_BAD:                   # a rule no schema can state, KNOWN[KNOWN_BAD[case]]: the
        assert validates(xml), "the schema refuses it now: take it off KNOWN_BAD"   # gap is checked
        return
    assert not validates(xml)


GOOD_DOMAINS = ["contract-example.xml", "plain-domain.xml", "restore-begin-captured.xml"]


@pytest.mark.parametrize("name", GOOD_DOMAINS)
def test_good_domains_validate(name, validates):
    xml = open(os.path.join(DATA, name), "rb").read()
    assert validates(xml)
    root = etree.fromstring(xml)
    for element in root.iter(f"{{{NS}}}payloads"):
        assert validates(etree.tostring(element))


@pytest.mark.parametrize("xml", [case[1] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_what_every_reader_accepts_validates(xml, validates):
    assert validates(xml)


@pytest.mark.parametrize("case", REFUSED, ids=[case[0] for case in REFUSED])
def test_what_every_reader_refuses(case, validates):
    name, xml, _ = case
    if KNOWN_REFUSED.get(name) == "parse":   # refused by the readers before any schema: KNOWN["parse"]
        return
    if name in KNOWN_REFUSED:                # a rule no schema can state: the gap is checked
        assert validates(xml), "the schema refuses it now: take it off KNOWN_REFUSED"
        return
    assert not validates(xml)


def test_xmllint_points_at_the_payloads_and_a_payloads_element_alone_at_the_typo(tmp_path):
    if shutil.which("xmllint") is None:
        pytest.skip("xmllint is not installed")
    fragment = payloads().replace(b"<pl:files>", b"\n<pl:volumeid>x</pl:volumeid><pl:files>")
    for document, said in ((in_domain(fragment), "payloads"), (fragment, "extra content: volumeid")):
        path = tmp_path / "typo.xml"
        path.write_bytes(document)
        result = subprocess.run(["xmllint", "--noout", "--relaxng", SCHEMA, str(path)], capture_output=True, text=True)
        assert result.returncode == 3 and "fails to validate" in result.stderr
        assert said in result.stderr, result.stderr
