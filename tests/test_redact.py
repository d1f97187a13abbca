"""Redaction (README, "Redaction"): xsl/redact.xsl with xsltproc and lxml, and payloadhook dumpxml's form."""

import hashlib
import os
import subprocess

import pytest
from lxml import etree

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.domain.redact import redact
from tests.conftest import MARKER_FORMS, REPO

XSL = os.path.join(REPO, "xsl", "redact.xsl")
EXAMPLE = os.path.join(REPO, "tests", "data", "contract-example.xml")
PL = "{urn:payloadhook:payload:1}"


def xsltproc(xml: bytes) -> bytes:
    return subprocess.run(["xsltproc", XSL, "-"], input=xml, capture_output=True, check=True).stdout


def lxml_xslt(xml: bytes) -> bytes:
    transform = etree.XSLT(etree.parse(XSL))
    return etree.tostring(transform(etree.fromstring(xml)))


def canonical_without_content(xml: bytes) -> bytes:
    root = etree.fromstring(xml)
    for content in root.iter(PL + "content"):
        content.text = None
        for key in ("redacted", "size", "sha256"):
            content.attrib.pop(key, None)
    return etree.tostring(root, method="c14n")


@pytest.mark.parametrize("apply", [xsltproc, lxml_xslt, lambda x: redact(x, digests=False), redact],
                         ids=["xsltproc", "lxml", "redact", "dumpxml"])
def test_content_goes_names_stay_and_nothing_else_changes(apply):
    original = open(EXAMPLE, "rb").read()
    redacted = apply(original)
    root = etree.fromstring(redacted)
    contents = list(root.iter(PL + "content"))
    assert len(contents) == 3 and all(not c.text and c.get("redacted") == "yes" for c in contents)
    assert [n.text for n in root.iter(PL + "name")] == ["openstack/latest/meta_data.json", "readme.txt", "Unattend.xml"]
    for secret in (b"eyJ1dWlkIjogIngifQo=", b"plain UTF-8 text", b"PD94bWwgdmVyc2lvbj0iMS4wIj8+Cg=="):
        assert secret not in redacted
    assert canonical_without_content(redacted) == canonical_without_content(original)


def test_dumpxml_form_gives_size_and_sha256():
    root = etree.fromstring(redact(open(EXAMPLE, "rb").read()))
    first = next(root.iter(PL + "content"))
    assert first.get("size") == "14"
    assert first.get("sha256") == hashlib.sha256(b'{"uuid": "x"}\n').hexdigest()


def test_redacted_xml_still_reads_as_payload_metadata_with_empty_files():
    payloads = metadata.read_payloads(xmlsafe.parse_xml(xsltproc(open(EXAMPLE, "rb").read())))
    assert [len(f.content) for p in payloads for f in p.files] == [0, 0, 0]


@pytest.mark.parametrize("inside", ["<!-- x -->", "<?pi x?>", "<x/>"])
def test_content_the_hook_would_refuse_is_redacted_whole_and_called_invalid(inside):
    original = open(EXAMPLE, "rb").read().replace(b"eyJ1dWlk", b"eyJ1" + inside.encode() + b"dWlk")
    for apply in (xsltproc, lxml_xslt, redact):
        redacted = apply(original)
        assert b"dWlk" not in redacted and b"eyJ1" not in redacted and inside.encode() not in redacted
    first = next(etree.fromstring(redact(original)).iter(PL + "content"))
    assert (first.get("size"), first.get("sha256")) == ("invalid", "invalid")


# -- oVirt's payload files: their base64 is content, redacted as pl:content ----------------------

def ovirt_with_marker(case: str) -> bytes:
    """The oVirt fixture with every payload file's content replaced by the marker, as base64."""
    import base64

    from tests.conftest import MARKER
    from tests.test_ovirt import fixture
    root = etree.fromstring(fixture(case))
    for item in root.iter("{http://ovirt.org/vm/1.0}file"):
        item.text = base64.b64encode(b"text before " + MARKER.encode() + b" and after").decode()
    return etree.tostring(root)


def assert_no_marker(data: bytes) -> None:
    for form in MARKER_FORMS:
        assert form not in data, form


@pytest.mark.parametrize("case", ["current", "older"])
@pytest.mark.parametrize("apply", [xsltproc, lxml_xslt, redact], ids=["xsltproc", "lxml", "dumpxml"])
def test_ovirt_payload_files_are_redacted_and_their_paths_stay(apply, case):
    original = ovirt_with_marker(case)
    redacted = apply(original)
    assert_no_marker(redacted)
    files = list(etree.fromstring(redacted).iter("{http://ovirt.org/vm/1.0}file"))
    before = list(etree.fromstring(original).iter("{http://ovirt.org/vm/1.0}file"))
    assert files and [f.get("path") for f in files] == [f.get("path") for f in before]
    assert all(not f.text and not len(f) and f.get("redacted") == "yes" for f in files)


@pytest.mark.integration
def test_payloadhook_dumpxml_redacts_an_ovirt_payload(libvirtd, workdir):
    import sys
    path = workdir / "ovirt-secret.xml"
    path.write_bytes(ovirt_with_marker("older").replace(b"<domain type='kvm'>", b"<domain type='qemu'>")
                     .replace(b'<domain type="kvm">', b'<domain type="qemu">'))
    libvirtd.virsh("define", str(path))
    name = etree.fromstring(path.read_bytes()).findtext("name")
    try:
        unredacted = libvirtd.virsh("dumpxml", name, "--inactive").stdout.encode()
        assert any(form in unredacted for form in MARKER_FORMS)    # what the check looks for is there
        for extra in ([], ["--inactive"]):
            out = subprocess.run([sys.executable, "-m", "payloadhook", "-c", libvirtd.uri, "dumpxml", name, *extra],
                                 capture_output=True, check=True, env={**os.environ, "LC_ALL": "C"}).stdout
            assert_no_marker(out)
            assert b'redacted="yes"' in out
    finally:
        libvirtd.virsh("undefine", name)
