"""How the web console names a domain to the command (README, "The web console"): as
``uuid:UUID``, which the command looks up by that UUID only. A bare UUID falls back to a name
lookup when no domain has it, as virsh does, so a domain definer's domain named like another's
UUID would be taken for it; a ``uuid:`` one never is."""

import json
import os
import subprocess
import sys

import pytest

from tests.harness.domains import domain

pytestmark = pytest.mark.integration

#: A UUID no domain has, the name of the definer's domain.
GONE = "7e57a11e-0000-4000-8000-00000000dead"


#: What the page sends attach and run-once on standard input (no content of note).
FILES = json.dumps({"files": [{"name": "one.txt", "content": "b25l"}]})


def payloadhook(libvirtd, *args):
    return subprocess.run([sys.executable, "-m", "payloadhook", "-c", libvirtd.uri, *args], input=FILES,
                          capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})


@pytest.fixture
def named_like_a_uuid(libvirtd, workdir):
    """A domain named GONE (its own UUID another), with nothing else of that UUID."""
    (workdir / "named.xml").write_text(domain(GONE, []))
    libvirtd.virsh("define", str(workdir / "named.xml"))
    uuid = libvirtd.virsh("domuuid", GONE).stdout.strip()
    assert uuid != GONE
    yield uuid
    libvirtd.virsh("undefine", uuid, check=False)


def test_a_uuid_prefixed_domain_is_looked_up_by_that_uuid_only(libvirtd, named_like_a_uuid):
    # the bare UUID falls back to the name: the domain named so answers
    bare = payloadhook(libvirtd, "show", GONE, "--json")
    assert bare.returncode == 0 and json.loads(bare.stdout)["uuid"] == named_like_a_uuid
    # uuid:UUID is that UUID or nothing: no domain has it, so none is shown, attached or detached
    for verb in (["show", f"uuid:{GONE}", "--json"], ["detach", f"uuid:{GONE}", "--type", "cdrom"],
                 ["attach", f"uuid:{GONE}", "--type", "cdrom", "--no-seal", "--files-json", "-"],
                 ["run-once", f"uuid:{GONE}", "--type", "cdrom", "--no-seal", "--files-json", "-"]):
        refused = payloadhook(libvirtd, *verb)
        assert refused.returncode != 0 and refused.stdout == "", verb
        assert refused.stderr.strip().splitlines() == [f"payloadhook: domain 'uuid:{GONE}' not found"], verb
    assert json.loads(payloadhook(libvirtd, "show", named_like_a_uuid, "--json").stdout)["payloads"] == []
    # upper case and the domain's own UUID: that domain
    own = payloadhook(libvirtd, "show", f"uuid:{named_like_a_uuid.upper()}", "--json")
    assert own.returncode == 0 and json.loads(own.stdout)["domain"] == GONE


def test_uuid_with_no_uuid_after_it_is_refused_never_looked_up_as_a_name(libvirtd, workdir):
    (workdir / "prefixed.xml").write_text(domain("uuid:ph-prod-db", []))
    libvirtd.virsh("define", str(workdir / "prefixed.xml"))
    try:
        refused = payloadhook(libvirtd, "show", "uuid:ph-prod-db", "--json")
        assert refused.returncode != 0 and refused.stdout == ""
        assert refused.stderr.strip() == "payloadhook: domain 'uuid:ph-prod-db' has no UUID after 'uuid:'"
    finally:
        libvirtd.virsh("undefine", "uuid:ph-prod-db", check=False)
