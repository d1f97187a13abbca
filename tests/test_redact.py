"""Redaction (README, "Redaction"): xsl/redact.xsl with xsltproc and lxml, and payloadhook dumpxml's form."""

import hashlib
import os
import subprocess

import pytest
from lxml import etree

from payloadhook import xmlsafe
from payloadhook.domain import metadata
from payloadhook.domain.redact import redact
from tests.conftest import REPO

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
