"""The hook's reader against lxml's where it leaves other applications' <metadata> out of
its tree, and at libxml2's limits on names (bytes of UTF-8, prefixes, processing
instructions' targets): found by the fourth attack of round three; each F1 case and the
F2 cases here failed on the code before its fix."""
import tracemalloc

import pytest

from payloadhook import xmlsafe
from payloadhook.domain.metadata import DIGESTING, SKIPPING
from payloadhook.domain.view import read_domain
from payloadhook.errors import PayloadhookError

PL = ("<pl:payloads xmlns:pl='urn:payloadhook:payload:1'><pl:payload type='cdrom'><pl:files><pl:file>"
      "<pl:name>a</pl:name><pl:content>aGk=</pl:content></pl:file></pl:files></pl:payload></pl:payloads>")


def dom(meta: str, dev: str = "") -> str:
    return ("<domain type='kvm'><name>d</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><metadata>"
            f"{meta}</metadata><devices><disk type='file' device='cdrom'>"
            f"<source file='/run/payloadhook/d.iso'/><target dev='hdc'/></disk>{dev}</devices></domain>")


def read_by(xml: str, editable: bool) -> object:
    try:
        return [(d.type, [f.name for f in d.files]) for d in read_domain(xml, editable=editable).declared]
    except PayloadhookError as exc:
        return type(exc)


P = "p" * 50001
E = "\u00e9" * 25001      # 25,001 characters, 50,002 UTF-8 bytes: libxml2 counts bytes


# -- F1: names libxml2 refuses, which the hook read ----------------------------------------
@pytest.mark.parametrize("xml", [
    dom(PL + f"<{P}:a xmlns:{P}='urn:x'/>"),                         # element prefix (skipped)
    dom(PL + f"<x:a xmlns:x='urn:x' xmlns:{P}='urn:y'/>"),           # a declaration's prefix
    dom(PL, f"<x:a xmlns:x='urn:x' xmlns:{P}='urn:y'/>"),            # ... in the kept tree
    dom(PL, f"<?{P} x?>"),                                           # a PI target, in the tree
    dom(PL + f"<x:a xmlns:x='urn:x'><?{P}?></x:a>"),                 # ... in a skipped subtree
    dom(PL, f"<{E}/>"),                                              # multi-byte local name, tree
    dom(PL + f"<x:{E} xmlns:x='urn:x'/>"),                           # ... skipped
    dom(PL, f"<a {E}='1'/>"),                                        # ... attribute
    dom(PL.replace("<pl:name>", f"<{E}/><pl:name>")),                # ... in a digest (class differs)
], ids=["prefix-skipped", "xmlns-prefix", "xmlns-prefix-tree", "pi-target-tree", "pi-target-skipped",
        "utf8-tag-tree", "utf8-tag-skipped", "utf8-attribute", "utf8-tag-digest"])
def test_the_hook_refuses_the_names_libxml2_refuses(xml):
    assert read_by(xml, editable=False) == read_by(xml, editable=True)


# -- F2: what the hook never reads costs it no tree -----------------------------------------
BULK = "<x:bulk xmlns:x='urn:x'>" + "<x:v/>" * 300_000 + "</x:bulk>"       # 1.8 MB


@pytest.mark.parametrize("meta", [
    "".join(f"<a xmlns='u{i}'/>" for i in range(90_000)) + PL,          # siblings, one per namespace
    "<x:a xmlns:x='urn:x'/>" + BULK + PL,                                # one element holding much
    "<?a?>" * 360_000 + PL,                                              # PIs (libvirt drops these)
], ids=["distinct-namespace-siblings", "bulk", "pis-in-metadata"])
def test_other_applications_metadata_costs_the_hook_no_tree(meta):
    data = dom(meta).encode()
    tracemalloc.start()
    try:
        try:
            root = xmlsafe.read_xml(data, digesting=DIGESTING, skipping=SKIPPING)
        except PayloadhookError:
            root = None
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del root
    assert peak <= 2 * len(data), (peak, len(data))


# -- what held: both readers read these alike ------------------------------------------------
def nest(n: int) -> str:
    return "<x:a xmlns:x='urn:x'>" + "<x:a>" * n + "<!--c--><?p?>t" + "</x:a>" * n + "</x:a>"


@pytest.mark.parametrize("xml", [
    dom(PL.replace("payload:1'", "payload:10'")),                         # our URI as a prefix of another
    dom(PL + "<q:payloads xmlns:q='urn:payloadhook:payload:1}'/>"),       # '}' in a URI (expat refuses)
    dom(PL + "<x:a xmlns:x='urn:x'>" + PL + "</x:a>"),                    # stray payloads in foreign
    dom("<x:a xmlns:x='urn:x'>" + PL + "</x:a>"),
    dom("<x:a xmlns:x='urn:x'><pl:payloads xmlns:pl='urn:x'/></x:a>" + PL.replace("pl:", "q:").replace(
        "xmlns:q", "xmlns:q")),                                           # prefix rebinding
    dom("<payloads xmlns='urn:payloadhook:payload:1'><payload type='cdrom'><files><file><name>a</name>"
        "<content>aGk=</content></file></files></payload></payloads>"),   # default namespace
    dom("<pl:payloads xmlns:pl='urn:x'/>" + PL),
    dom(PL + "<a xmlns='urn:payloadhook:payload:1:x'/>"),
    dom(PL).replace("</metadata>", "</metadata><metadata><x:a xmlns:x='urn:x'/>" + PL + "</metadata>", 1),
    dom(nest(3) + "tail" + PL),                                           # tail after a skip, then ours
    *(dom(nest(3) + nest(n) + PL) for n in (254, 255)),                   # depth after a skipped sibling
    dom(PL + "<x:a xmlns:x='urn:x'><x:b " + " ".join(f"xmlns:n{i}='u'" for i in range(57))
        + " " + " ".join(f"a{i}='1'" for i in range(200)) + "/></x:a>"),  # declarations count when skipped
    dom(PL + "<x:a xmlns:x='urn:x'>&undefined;</x:a>"),
])
def test_held_readers_agree(xml):
    assert read_by(xml, editable=False) == read_by(xml, editable=True)
