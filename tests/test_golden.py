"""Golden files for every XML rewrite: attach, replace, detach, run-once, the
migrate filter, redaction and OVF export, each an input and its exact output in
tests/data/golden/ (tests/golden.py; ``--regen-golden`` rewrites the outputs on purpose).

And the round trip of a real ``virsh dumpxml``: unchanged outside what was edited, the
user's prefixes, comments and other metadata kept.
"""

from __future__ import annotations

import io
import os
import re
import subprocess

import pytest
from lxml import etree

from payloadhook import ovf, xmlsafe
from payloadhook.domain.plan import apply_attach, apply_detach, plan_attach, plan_detach
from payloadhook.domain.redact import redact
from payloadhook.domain.view import read_domain
from payloadhook.hook import main
from payloadhook.model import Payload, PayloadFile
from tests.conftest import REPO

IMAGE_DIR = "/run/payloadhook"
XSL = os.path.join(REPO, "xsl", "redact.xsl")

CIDATA = Payload(type="cdrom", volume_id="cidata", files=(
    PayloadFile("meta-data", b"instance-id: golden\nlocal-hostname: golden\n"),
    PayloadFile("user-data", b"#cloud-config\npassword: not-a-secret\n"),
    PayloadFile("openstack/latest/meta_data.json", b'{"uuid": "golden"}\n'),
))
ANSWERS = Payload(type="floppy", files=(PayloadFile("Autounattend.xml", b"<unattend>golden</unattend>\n"),))


def attached(case: str, payload: Payload) -> bytes:
    view = read_domain(golden_input(case))
    apply_attach(view, plan_attach(view, payload, IMAGE_DIR))
    return xmlsafe.serialize(view.root)


def detached(case: str, **which: str) -> bytes:
    view = read_domain(golden_input(case))
    apply_detach(view, plan_detach(view, IMAGE_DIR, **which))
    return xmlsafe.serialize(view.root)


def golden_input(case: str) -> bytes:
    with open(os.path.join(REPO, "tests", "data", "golden", f"{case}-in.xml"), "rb") as stream:
        return stream.read()


def migrated(case: str, image_dir: str, tmp_path) -> bytes:
    conf = tmp_path / "payloadhook.conf"
    conf.write_text(f"[payloadhook]\nimage_dir = {image_dir}\n")
    out = io.BytesIO()
    assert main(case, "migrate", "begin", io.BytesIO(golden_input(case)), out, {"PAYLOADHOOK_CONF": str(conf)}) == 0
    return out.getvalue()


def xsltproc(xml: bytes) -> bytes:
    return subprocess.run(["xsltproc", "--nonet", "--novalid", XSL, "-"], input=xml, capture_output=True,
                          check=True).stdout


def exported(case: str, with_content: bool) -> bytes:
    view = read_domain(golden_input(case))
    return ovf.export(list(view.targeted()), view.require_name(), with_content)


CASES = {
    # attach: a new disk beside the user's own CD-ROM (never taken over), a floppy, on q35 a new
    # SATA disk (an empty drive is filled when --target names it)
    "attach-new": lambda tmp: attached("plain", CIDATA),
    "attach-floppy-new": lambda tmp: attached("plain", ANSWERS),
    "attach-q35": lambda tmp: attached("q35", CIDATA),
    "attach-q35-empty-drive": lambda tmp: attached("q35", Payload(type="cdrom", target="sda", files=CIDATA.files)),
    # replace: the payload on that disk, label and files changed; the other payload kept as is
    "attach-replace": lambda tmp: attached("captured", CIDATA),
    "attach-replace-prefixes": lambda tmp: attached("prefixes", ANSWERS),
    # run-once hands libvirt's createXML the inactive definition with the payload attached
    "run-once": lambda tmp: attached("captured", ANSWERS),
    "detach-floppy": lambda tmp: detached("captured", payload_type="floppy"),
    "detach-all": lambda tmp: detached("captured"),
    "detach-prefixes": lambda tmp: detached("prefixes", target="fda"),
    "migrate-filter": lambda tmp: migrated("captured", "/srv/payloads", tmp),
    "redact-dumpxml": lambda tmp: redact(golden_input("captured")),
    "redact-xsl": lambda tmp: xsltproc(golden_input("captured")),
    "redact-prefixes": lambda tmp: redact(golden_input("prefixes")),
}

OVF_CASES = {
    "ovf-export": lambda: exported("captured", with_content=False),
    "ovf-export-content": lambda: exported("captured", with_content=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_xml_rewrites(case, golden, tmp_path):
    golden.compare(case, CASES[case](tmp_path))


@pytest.mark.parametrize("case", sorted(OVF_CASES))
def test_ovf_export(case, golden):
    golden.compare(case, OVF_CASES[case](), ext="ovf")


def test_lxml_xslt_writes_what_xsltproc_writes():
    transform = etree.XSLT(etree.parse(XSL))
    by_lxml = bytes(transform(etree.fromstring(golden_input("captured"))))
    assert etree.tostring(etree.fromstring(by_lxml), method="c14n") == \
        etree.tostring(etree.fromstring(xsltproc(golden_input("captured"))), method="c14n")


def test_the_migrate_filter_prints_nothing_when_nothing_moves(tmp_path):
    assert migrated("captured", IMAGE_DIR, tmp_path) == b""


# -- a real virsh dumpxml, round-tripped --------------------------------------------------------

def double_quoted(xml: bytes) -> bytes:
    """libxml2 writes attributes in double quotes, virsh in single ones (and libxml2 namespace
    declarations before attributes, as libvirt does). Nothing else may differ."""
    return re.sub(rb"='([^'\"]*)'", rb'="\1"', xml)


@pytest.mark.parametrize("case", ["captured", "plain", "prefixes", "q35"])
def test_a_read_and_write_changes_nothing(case):
    original = golden_input(case)
    written = xmlsafe.serialize(read_domain(original).root) + b"\n"
    expected = double_quoted(original)
    if expected.startswith(b"<?xml"):    # lxml keeps no XML declaration; libvirt never writes one
        expected = expected.partition(b"?>\n")[2]
    assert written == expected


def children_except(xml: bytes, edited: set[str]) -> list[bytes]:
    """Every element of the domain but <metadata>'s payloads and the disks named in ``edited``,
    as written (prefixes included)."""
    root = etree.fromstring(xml)
    kept = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        target = element.find("target")
        if element.tag == "disk" and target is not None and target.get("dev") in edited:
            continue
        if any(a.tag == "{urn:payloadhook:payload:1}payloads" or (a.tag == "disk" and a.find("target") is not None
               and a.find("target").get("dev") in edited) for a in element.iterancestors()):
            continue
        if element.tag in ("{urn:payloadhook:payload:1}payloads", "metadata", "devices", "domain"):
            continue
        kept.append(etree.tostring(element, with_tail=False))
    return kept


@pytest.mark.parametrize("case,edit,edited", [
    ("attach-replace", lambda: attached("captured", CIDATA), {"hdc"}),
    ("detach-floppy", lambda: detached("captured", payload_type="floppy"), {"fda"}),
    ("attach-q35", lambda: attached("q35", CIDATA), {"sdb"}),
    ("attach-replace-prefixes", lambda: attached("prefixes", ANSWERS), {"fda"}),
])
def test_an_edit_changes_only_what_it_edits(case, edit, edited):
    source = {"attach-replace": "captured", "detach-floppy": "captured", "attach-q35": "q35",
              "attach-replace-prefixes": "prefixes"}[case]
    assert children_except(edit(), edited) == children_except(golden_input(source), edited)
    if source in ("q35", "prefixes"):    # another tool's metadata keeps its own prefix
        assert re.search(rb"<(libosinfo|app):", edit())
