"""The hook reads payload declarations from expat's events, without a tree of them
(domain/metadata.py, PayloadDigest): it reads every document as the tree's reader does
(lxml's tree, which the command edits), the same declarations or the same first refusal,
in whatever order a document holds its faults; and it reads metadata wherever the
document puts it, after a long list of devices too."""

from __future__ import annotations

import itertools
import random

import pytest

from payloadhook.domain.view import read_domain
from payloadhook.errors import PayloadhookError

NS = 'xmlns:pl="urn:payloadhook:payload:1"'

#: Pieces of a <pl:file>: good ones, and each fault the reader refuses.
FILE_PARTS = {
    "name": "<pl:name>a/b.txt</pl:name>",
    "name2": "<pl:name>other</pl:name>",
    "name-mixed": "<pl:name>a<!-- c -->b</pl:name>",
    "name-pi": "<pl:name>a<?x y?></pl:name>",
    "name-child": "<pl:name>a<pl:name>b</pl:name></pl:name>",
    "content": "<pl:content>aGk=</pl:content>",
    "content-empty": "<pl:content/>",
    "content-text": '<pl:content encoding="text">hi</pl:content>',
    "content-sealed": '<pl:content encoding="sealed" key="k1">aGk=</pl:content>',
    "content-mixed": "<pl:content>aG<x/>k=</pl:content>",
    "content2": "<pl:content>aGk=</pl:content>",
    "stray": "<pl:stray/>",
    "foreign": "<other>x</other>",
    "comment": "<!-- a comment -->",
    "text": "loose text",
}

CONTENTS = [FILE_PARTS[key] for key in ("content", "content-empty", "content-text", "content-sealed")]

#: Pieces of a <pl:payload>: its files' list, volume ids, and faults.
PAYLOAD_PARTS = {
    "files": None,    # filled with generated files
    "files2": "<pl:files/>",
    "volume": "<pl:volume_id>LABEL</pl:volume_id>",
    "volume-empty": "<pl:volume_id/>",
    "volume2": "<pl:volume_id>OTHER</pl:volume_id>",
    "volume-mixed": "<pl:volume_id>A<!-- x -->B</pl:volume_id>",
    "stray": "<pl:volumeid>x</pl:volumeid>",
    "comment": "<!-- c -->",
}


def outcome(xml: str, editable: bool) -> object:
    """The declarations read, or the refusal's words."""
    try:
        return read_domain(xml, editable=editable).declared
    except PayloadhookError as exc:
        return f"{type(exc).__name__}: {exc}"


def domain(payloads: str, devices: str = "") -> str:
    return (f"<domain type='kvm'><name>d</name><metadata><pl:payloads {NS}>{payloads}</pl:payloads>"
            f"</metadata><devices>{devices}</devices></domain>")


def random_payloads(rng: random.Random) -> str:
    payloads = []
    for _ in range(rng.randint(1, 3)):
        files = "".join("<pl:file>" + "".join(rng.choice(list(FILE_PARTS.values()))
                                              for _ in range(rng.choice((2, 2, 2, 1, 3, 4)))) + "</pl:file>"
                        if rng.random() < 0.15 else
                        f"<pl:file><pl:name>f{index}</pl:name>{rng.choice(CONTENTS)}</pl:file>"
                        for index in range(rng.randint(0, 4)))
        if rng.random() < 0.2:
            files += rng.choice(("<pl:stray/>", "<!-- c -->", "<pl:file/>", "text"))
        parts = [PAYLOAD_PARTS[key] or f"<pl:files>{files}</pl:files>"
                 for key in rng.sample(list(PAYLOAD_PARTS), rng.choice((0, 0, 1, 1, 2, 3)))]
        if "<pl:files>" not in "".join(parts) and rng.random() < 0.8:
            parts.insert(rng.randint(0, len(parts)), f"<pl:files>{files}</pl:files>")
        attributes = rng.choice(('type="cdrom"',) * 8 + ('type="floppy" target="fda"', "", 'target="hdc"'))
        payloads.append(f"<pl:payload {attributes}>{''.join(parts)}</pl:payload>")
        if rng.random() < 0.1:
            payloads.append(rng.choice(("<pl:unknown/>", '<pl:attached serial="yes"/>', "<!-- c -->")))
    return "".join(payloads)


@pytest.mark.parametrize("seed", range(40))
def test_the_hook_reads_every_declaration_as_the_tree_reader_does(seed):
    rng = random.Random(seed)
    for _ in range(50):
        xml = domain(random_payloads(rng))
        assert outcome(xml, editable=False) == outcome(xml, editable=True), xml


@pytest.mark.parametrize("children", list(itertools.permutations(
    ["<pl:stray/>", "<pl:files><pl:file><pl:name>a</pl:name></pl:file></pl:files>",
     "<pl:volume_id>A<!-- x --></pl:volume_id>", "<pl:volume_id>B</pl:volume_id>", "<pl:files/>"], 3)))
def test_the_first_refusal_is_the_tree_readers_whatever_the_order(children):
    """What the tree's reader checks over all of a payload's children (an unexpected
    element, two volume ids, two lists of files) comes before what it finds inside them,
    even when the document holds the inner fault first."""
    xml = domain(f'<pl:payload type="cdrom">{"".join(children)}</pl:payload>')
    assert isinstance(outcome(xml, editable=True), str)    # every three of them hold a fault
    assert outcome(xml, editable=False) == outcome(xml, editable=True)


def test_metadata_after_a_long_device_list_is_still_read():
    devices = "".join(f"<disk type='file' device='disk'><source file='/d/{i}.img'/><target dev='vd{i}'/></disk>"
                      for i in range(20000))
    xml = (f"<domain type='kvm'><name>d</name><devices>{devices}<disk type='file' device='cdrom'>"
           "<source file='/var/lib/payloadhook/d-hdc.iso'/><target dev='hdc'/></disk></devices>"
           f"<metadata><pl:payloads {NS}><pl:payload type='cdrom'><pl:files><pl:file><pl:name>late.txt</pl:name>"
           "<pl:content>aGk=</pl:content></pl:file></pl:files></pl:payload></pl:payloads></metadata></domain>")
    view = read_domain(xml, editable=False)
    (binding,) = view.bindings()
    assert binding.disk.target == "hdc"
    assert [(item.name, item.content) for item in binding.payload.files] == [("late.txt", b"hi")]
    assert view.declared == read_domain(xml, editable=True).declared


def test_payloads_outside_the_metadata_are_not_read():
    """Only <metadata>'s <pl:payloads> declares payloads: one anywhere else is not read,
    by the hook's reader as by the tree's."""
    stray = (f"<pl:payloads {NS}><pl:payload type='cdrom'><pl:files><pl:file><pl:name>x</pl:name>"
             "<pl:content/></pl:file></pl:files></pl:payload></pl:payloads>")
    xml = f"<domain type='kvm'><name>d</name><devices>{stray}</devices><description/></domain>"
    assert read_domain(xml, editable=False).declared == () == read_domain(xml, editable=True).declared


def test_two_payloads_elements_are_refused_before_any_fault_in_the_first():
    xml = (f"<domain type='kvm'><name>d</name><metadata><pl:payloads {NS}><pl:payload/></pl:payloads>"
           f"<pl:payloads {NS}/></metadata></domain>")
    assert outcome(xml, editable=False) == outcome(xml, editable=True)
    assert "more than one <pl:payloads>" in str(outcome(xml, editable=False))


@pytest.mark.parametrize("where", ["pl:file", "pl:name", "pl:content", "pl:payload"])
@pytest.mark.parametrize("attributes", [
    " ".join(f'a{i}="x"' for i in range(300)),
    " ".join(f'xmlns:n{i}="urn:n{i}"' for i in range(300)),
    " ".join(f'xmlns:n{i}="urn:n{i}" n{i}:a="x"' for i in range(130)),
], ids=["attributes", "namespaces", "both"])
def test_an_element_of_too_many_attributes_is_refused_inside_a_declaration_too(where, attributes):
    files = "<pl:file><pl:name>a</pl:name><pl:content>aGk=</pl:content></pl:file>"
    payload = f"<pl:payload type='cdrom'><pl:files>{files}</pl:files></pl:payload>"
    tag = where.partition(":")[2]
    xml = domain(payload.replace(f"<{where}>", f"<{where} {attributes}>", 1) if where != "pl:payload"
                 else payload.replace("<pl:payload ", f"<pl:payload {attributes} ", 1))
    assert f"<pl:{tag} " in xml
    refusal = outcome(xml, editable=False)
    assert refusal == outcome(xml, editable=True)
    assert "more than 256 attributes" in str(refusal)
