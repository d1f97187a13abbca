"""Sealed payloads through a real libvirtd (README, "Sealed content"): the secret reaches the
guest and nothing else — not a read-only client's dumpxml, not the saved or live definition
on disk, not a log — across save/restore, managedsave, daemon restarts, key rotation,
clones and migration; a blob moved to another domain or name refuses the start."""

import base64
import os
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

from payloadhook.seal.keys import KeyStore
from payloadhook.seal.sealing import seal_payload
from tests.conftest import MARKER, MARKER_FORMS
from tests.harness.domains import IMAGE_DIR, disk, domain, images_of
from tests.harness.libvirtd import Libvirtd, free_tcp_port
from tests.test_lifecycle import CD, EXPECTED, FD, assert_stops_and_resumes, pass_report, wait_round, wait_whole_pass

pytestmark = pytest.mark.integration


def secrets() -> list[bytes]:
    """What must never show: the marker, and each file's content as base64 (at each of the
    three alignments a base64 encoder can put it in)."""
    found = list(MARKER_FORMS)
    for item in CD.files + FD.files:
        for shift in range(3):
            found.append(base64.b64encode(item.content[shift:])[4:28])
    return found


def assert_no_secret(data: bytes, where: str) -> None:
    for secret in secrets():
        assert secret not in data, f"{where} holds {secret!r}"


def keys_of(daemon) -> KeyStore:
    """The daemon's key directory, as its hook sees /etc/payloadhook/keys."""
    return KeyStore(os.path.join(daemon.base, "payloadhook-etc", "keys"))


def command(daemon, *args, check=True):
    """The payloadhook command for this daemon: its image_dir and its key directory."""
    conf = os.path.join(daemon.base, "command.conf")
    with open(conf, "w") as stream:
        stream.write(f"[payloadhook]\nimage_dir = {IMAGE_DIR}\nkey_dir = {keys_of(daemon).key_dir}\n")
    result = subprocess.run([sys.executable, "-m", "payloadhook", "-c", daemon.uri, *args], capture_output=True,
                            text=True, env={**os.environ, "LC_ALL": "C", "PAYLOADHOOK_CONF": conf})
    assert_no_secret((result.stdout + result.stderr).encode(), "the command's output")
    if check:
        assert result.returncode == 0, result.stderr
    return result


def sealed_guest(daemon, workdir, guest_kernel, name, domain_uuid=None, keys=None, transient=False):
    """A looping guest whose CD-ROM and floppy payloads are sealed with the daemon's current key
    (``guest_kernel`` None: no kernel, QEMU runs its firmware, which is enough for libvirt's
    XML); defined, or with ``transient`` created (and so running) without a saved definition."""
    keys = keys or keys_of(daemon)
    domain_uuid = domain_uuid or str(uuid.uuid4())
    payloads = [seal_payload(p, domain_uuid, keys, keys.current()) for p in (CD, FD)]
    console = workdir / f"{name}.log"
    xml = domain(name, [disk("cdrom", "hdc", f"{IMAGE_DIR}/{name}-hdc.iso"),
                        disk("floppy", "fda", f"{IMAGE_DIR}/{name}-fda.img")], payloads,
                 kernel=guest_kernel, console=str(console), devs="sr0,fd0", loop=guest_kernel is not None)
    xml = xml.replace(f"<name>{name}</name>", f"<name>{name}</name><uuid>{domain_uuid}</uuid>", 1)
    path = workdir / f"{name}.xml"
    path.write_text(xml)
    assert_no_secret(xml.encode(), "the sealed definition")
    daemon.virsh("create" if transient else "define", str(path))
    return console, domain_uuid


@pytest.fixture
def keyed(libvirtd):
    """The private daemon with a current key; the key directory emptied after."""
    key_id = command(libvirtd, "key", "new").stdout.split()[2]
    yield key_id
    shutil.rmtree(keys_of(libvirtd).key_dir)


@pytest.fixture
def cleanup(libvirtd):
    names = []
    yield names
    for name in names:
        libvirtd.virsh("destroy", name, check=False)
        libvirtd.virsh("managedsave-remove", name, check=False)
        libvirtd.virsh("undefine", name, check=False)


def all_logs(daemon) -> bytes:
    chunks = []
    for top, _, files in os.walk(os.path.join(daemon.base, "log")):
        for name in files:
            with open(os.path.join(top, name), "rb") as stream:
                chunks.append(stream.read())
    return b"".join(chunks)


@pytest.mark.guest
def test_the_guest_reads_the_secret_and_nothing_else_holds_it(libvirtd, keyed, workdir, guest_kernel, cleanup):
    name = "ph-sealed"
    cleanup.append(name)
    console, _ = sealed_guest(libvirtd, workdir, guest_kernel, name)
    saved = os.path.join(libvirtd.base, "etc", "qemu", f"{name}.xml")
    assert_no_secret(open(saved, "rb").read(), "/etc/libvirt/qemu/NAME.xml")
    assert_no_secret(libvirtd.virsh("dumpxml", "--inactive", name, ro=True).stdout.encode(), "virsh -r dumpxml")

    libvirtd.virsh("start", name)
    assert pass_report(console, wait_round(console, 0)) == EXPECTED
    assert_no_secret(libvirtd.virsh("dumpxml", name, ro=True).stdout.encode(), "virsh -r dumpxml (live)")
    assert_no_secret(open(libvirtd.path(f"/run/libvirt/qemu/{name}.xml"), "rb").read(), "/run/libvirt/qemu/NAME.xml")
    shown = command(libvirtd, "show", name).stdout
    assert "sealed (key " in shown and "cdrom on hdc, label cidata" in shown
    assert_no_secret(command(libvirtd, "dumpxml", name).stdout.encode(), "payloadhook dumpxml")

    # save/restore, managedsave and a daemon restart: each prepare opens the files again
    assert_stops_and_resumes(libvirtd, name, console, ("save", name, str(workdir / "saved.img")),
                             ("restore", str(workdir / "saved.img")))
    libvirtd.virsh("start", name)
    wait_round(console, 0)
    assert_stops_and_resumes(libvirtd, name, console, ("managedsave", name), ("start", name))
    libvirtd.virsh("start", name)
    before = wait_round(console, 0)
    libvirtd.kill_daemon(signal.SIGTERM)
    libvirtd.start_daemon()
    assert pass_report(console, wait_whole_pass(console, before)) == EXPECTED
    libvirtd.virsh("destroy", name)
    assert_no_secret(all_logs(libvirtd), "the logs under /var/log/libvirt")


def test_attach_seals_by_default_and_says_how(libvirtd, keyed, workdir, cleanup):
    name = "ph-seal-cli"
    cleanup.append(name)
    (workdir / "plain.xml").write_text(domain(name, []))
    libvirtd.virsh("define", str(workdir / "plain.xml"))
    secret = workdir / "Autounattend.xml"
    secret.write_bytes(MARKER.encode() + b"<unattend/>")
    out = command(libvirtd, "attach", name, "--type", "cdrom", f"Autounattend.xml={secret}").stdout
    assert f"sealed with key {keyed}" in out
    xml = libvirtd.virsh("dumpxml", "--inactive", name, ro=True).stdout
    assert f'encoding="sealed" key="{keyed}"' in xml
    assert_no_secret(xml.encode(), "the definition")
    document = command(libvirtd, "show", name, "--json").stdout
    assert '"sealed": true' in document and f'"key": "{keyed}"' in document and '"sha256": null' in document
    listing = command(libvirtd, "list").stdout
    assert f"{name}" in listing and "sealed" in listing
    assert command(libvirtd, "check", name).returncode == 0

    out = command(libvirtd, "attach", name, "--type", "cdrom", "--no-seal", f"readme.txt={secret}").stdout
    assert "sealed" not in out
    assert 'encoding="base64"' in libvirtd.virsh("dumpxml", "--inactive", name).stdout

    shutil.rmtree(keys_of(libvirtd).key_dir)
    refused = command(libvirtd, "attach", name, "--type", "cdrom", "--seal", f"a={secret}", check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "payloadhook key new" in refused.stderr
    os.makedirs(keys_of(libvirtd).key_dir, 0o700)     # for the fixture's cleanup


def _metadata_of(libvirtd, name) -> str:
    xml = libvirtd.virsh("dumpxml", "--inactive", name).stdout
    return xml[xml.index("<metadata>"):xml.index("</metadata>") + len("</metadata>")]


@pytest.mark.parametrize("move", ["transplanted", "renamed"])
def test_a_moved_blob_refuses_the_start_in_one_line(libvirtd, keyed, workdir, guest_kernel, cleanup, move):
    source = f"ph-seal-src-{move}"
    cleanup.append(source)
    sealed_guest(libvirtd, workdir, guest_kernel, source)
    metadata = _metadata_of(libvirtd, source)
    if move == "renamed":
        target = source
        metadata = metadata.replace("<pl:name>meta-data</pl:name>", "<pl:name>meta-data2</pl:name>")
        xml = libvirtd.virsh("dumpxml", "--inactive", source).stdout
        xml = xml[:xml.index("<metadata>")] + metadata + xml[xml.index("</metadata>") + len("</metadata>"):]
    else:
        target = f"ph-seal-dst-{move}"
        cleanup.append(target)
        xml = domain(target, [disk("cdrom", "hdc", f"{IMAGE_DIR}/{target}-hdc.iso"),
                              disk("floppy", "fda", f"{IMAGE_DIR}/{target}-fda.img")], kernel=guest_kernel)
        xml = xml.replace("<devices>", metadata + "<devices>", 1)
    (workdir / "moved.xml").write_text(xml)
    libvirtd.virsh("define", str(workdir / "moved.xml"))
    result = libvirtd.virsh("start", target, check=False)
    assert result.returncode != 0
    reason = "sealed for another domain" if move == "transplanted" else "under another name"
    assert reason in result.stderr and f"(key {keyed})" in result.stderr and MARKER not in result.stderr
    assert images_of(libvirtd, target) == []


@pytest.mark.guest
def test_key_rotation_then_the_old_key_can_go(libvirtd, keyed, workdir, guest_kernel, cleanup):
    name = "ph-seal-rotate"
    cleanup.append(name)
    console, _ = sealed_guest(libvirtd, workdir, guest_kernel, name)
    new_key = command(libvirtd, "key", "new").stdout.split()[2]
    assert "sealed again with key " + new_key in command(libvirtd, "reseal", "--all").stdout
    assert keyed not in _metadata_of(libvirtd, name)
    command(libvirtd, "key", "retire", keyed)
    listing = command(libvirtd, "key", "list").stdout
    assert new_key in listing and keyed not in listing
    libvirtd.virsh("start", name)
    assert pass_report(console, wait_round(console, 0)) == EXPECTED


@pytest.mark.guest
def test_a_clone_needs_reseal_from_uuid(libvirtd, keyed, workdir, guest_kernel, cleanup):
    original, clone = "ph-seal-original", "ph-seal-clone"
    cleanup.extend([original, clone])
    _, original_uuid = sealed_guest(libvirtd, workdir, guest_kernel, original)
    # virt-clone looks the disks' directory up as a storage pool: it exists on a host (tmpfiles.d)
    libvirtd.nsenter("install", "-d", "-m", "0711", IMAGE_DIR)
    result = subprocess.run(["virt-clone", "--connect", libvirtd.uri, "--original", original, "--name", clone,
                             "--auto-clone", "--check", "all=off"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # the clone has a UUID of its own: its sealed files do not open there, and the start says why
    refused = libvirtd.virsh("start", clone, check=False)
    assert refused.returncode != 0 and "reseal --from-uuid" in refused.stderr
    out = command(libvirtd, "reseal", clone, "--from-uuid", original_uuid).stdout
    assert f"re-bound from {original_uuid}" in out
    console = workdir / f"{original}.log"      # virt-clone kept the serial console's file
    libvirtd.virsh("start", clone)
    assert pass_report(console, wait_round(console, 0)) == EXPECTED


@pytest.mark.guest
def test_migration_needs_the_key_on_the_destination(workdir, guest_kernel):
    source = Libvirtd(hostname="ph-seal-source", tcp_port=free_tcp_port()).start()
    destination = None
    try:
        destination = Libvirtd(hostname="ph-seal-destination", tcp_port=free_tcp_port()).start()
        command(source, "key", "new")
        name = "ph-seal-migrating"
        console, _ = sealed_guest(source, workdir, guest_kernel, name)
        source.virsh("start", name)
        before = wait_whole_pass(console, 0)

        migrate = ("migrate", "--live", name, destination.tcp_uri, "--migrateuri", "tcp://127.0.0.1")
        refused = source.virsh(*migrate, check=False)
        assert refused.returncode != 0 and "is not on this host" in refused.stderr
        assert source.virsh("domstate", name).stdout.strip() == "running"
        assert images_of(destination, name) == []

        shutil.copytree(keys_of(source).key_dir, keys_of(destination).key_dir)   # as one copies TLS keys
        result = source.virsh(*migrate, check=False)
        assert result.returncode == 0, result.stderr
        assert destination.virsh("domstate", name).stdout.strip() == "running"
        assert pass_report(console, wait_whole_pass(console, before)) == EXPECTED
        destination.virsh("destroy", name)
    finally:
        if destination is not None:
            destination.stop()
        source.stop()


def test_reseal_all_goes_on_past_a_domain_that_does_not_open(libvirtd, keyed, workdir, guest_kernel, cleanup):
    good, bad = "ph-reseal-good", "ph-reseal-bad"
    cleanup.extend([good, bad])
    sealed_guest(libvirtd, workdir, guest_kernel, good)
    sealed_guest(libvirtd, workdir, guest_kernel, bad)
    # bad carries good's blobs: sealed for another domain, they open nowhere but in good
    xml = libvirtd.virsh("dumpxml", "--inactive", bad).stdout
    xml = xml[:xml.index("<metadata>")] + _metadata_of(libvirtd, good) + xml[xml.index("</metadata>") + 11:]
    (workdir / "bad.xml").write_text(xml)
    libvirtd.virsh("define", str(workdir / "bad.xml"))
    new_key = command(libvirtd, "key", "new").stdout.split()[2]
    result = command(libvirtd, "reseal", "--all", check=False)
    assert result.returncode == 1
    assert f"{good}: 3 sealed files sealed again with key {new_key}" in result.stdout   # after bad, by name
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and f"domain {bad}:" in lines[0] and "sealed for another domain" in lines[0]
    assert "1 domain could not be resealed" in lines[1]
    assert new_key in _metadata_of(libvirtd, good) and new_key not in _metadata_of(libvirtd, bad)


def test_a_transient_domain_is_never_made_persistent(libvirtd, keyed, workdir, guest_kernel, cleanup):
    """attach and reseal edit a saved definition; a transient domain has none, and defining
    its XML would make it persistent behind its owner's back (found by the second review)."""
    name = "ph-transient"
    cleanup.append(name)
    (workdir / "transient.xml").write_text(domain(name, [], kernel=guest_kernel, loop=True))
    libvirtd.virsh("create", str(workdir / "transient.xml"))
    secret = workdir / "s"
    secret.write_bytes(b"x")
    refused = command(libvirtd, "attach", name, "--type", "cdrom", f"s={secret}", check=False)
    assert refused.returncode == 1 and "is transient" in refused.stderr
    assert "sealed again" not in command(libvirtd, "reseal", "--all").stdout
    assert libvirtd.virsh("dominfo", name).stdout.split("Persistent:")[1].split()[0] == "no"


# -- retiring a key: every XML libvirt keeps (issue 21) -------------------------------------------

def key_ids_in(xml: str) -> set[str]:
    import re
    return set(re.findall(r'encoding="sealed" key="([a-z0-9-]+)"', xml))


def sealed_places(libvirtd, running, transient, saved, snapshotted, checkpointed):
    """Each place's key ids, read back with virsh: saved definitions, live XML, the managed
    save image, a snapshot's domain and a checkpoint's."""
    snapshot = libvirtd.virsh("snapshot-dumpxml", snapshotted, "before").stdout
    assert "<inactiveDomain" in snapshot
    return {
        "snapshot, inactive": key_ids_in(snapshot[snapshot.index("<inactiveDomain"):]),
        "running, saved": key_ids_in(libvirtd.virsh("dumpxml", "--inactive", running).stdout),
        "running, live": key_ids_in(libvirtd.virsh("dumpxml", running).stdout),
        "transient, live": key_ids_in(libvirtd.virsh("dumpxml", transient).stdout),
        "managed-saved, saved": key_ids_in(libvirtd.virsh("dumpxml", "--inactive", saved).stdout),
        "managed-saved, image": key_ids_in(libvirtd.virsh("managedsave-dumpxml", saved).stdout),
        "snapshot": key_ids_in(snapshot[snapshot.index("<domain"):snapshot.index("<inactiveDomain")]),
        "checkpoint": key_ids_in(libvirtd.virsh("checkpoint-dumpxml", "--security-info", checkpointed,
                                                "nightly").stdout),
    }


def metadata_only_snapshot(libvirtd, workdir, name):
    """A snapshot named 'before' holding the domain's definition as it is, twice: as its
    <domain> and as the <inactiveDomain> a snapshot of a running domain also keeps (virsh's
    --redefine: metadata only, no disk state, as a restored snapshot list is)."""
    xml = libvirtd.virsh("dumpxml", "--inactive", "--security-info", name).stdout
    inactive = xml.replace("<domain ", "<inactiveDomain ", 1).replace("</domain>", "</inactiveDomain>")
    (workdir / "snapshot.xml").write_text(f"<domainsnapshot><name>before</name><state>shutoff</state>"
                                          f"<creationTime>1700000000</creationTime>{xml}{inactive}</domainsnapshot>")
    libvirtd.virsh("snapshot-create", name, str(workdir / "snapshot.xml"), "--redefine")


def metadata_only_checkpoint(libvirtd, workdir, name):
    """A checkpoint named 'nightly' holding the domain's definition (virsh's --redefine, as a
    backup tool restores its checkpoint list: libvirt's metadata only, no disk bitmap)."""
    xml = libvirtd.virsh("dumpxml", "--inactive", "--security-info", name).stdout
    (workdir / "checkpoint.xml").write_text(f"<domaincheckpoint><name>nightly</name>"
                                            f"<creationTime>1700000000</creationTime>{xml}</domaincheckpoint>")
    libvirtd.virsh("checkpoint-create", name, str(workdir / "checkpoint.xml"), "--redefine")


@pytest.fixture
def every_place(libvirtd, keyed, workdir, cleanup):
    """Domains holding sealed files in each place libvirt keeps XML, all under the key 'keyed':
    a running persistent domain, a transient one, a managed-saved one, and a shut-off one
    with a snapshot. No guest kernel: QEMU's firmware runs, which libvirt's XML needs alone."""
    running, transient, saved, snapshotted = "ph-retire-running", "ph-retire-transient", "ph-retire-saved", \
        "ph-retire-snap"
    cleanup.extend([running, transient, saved, snapshotted])
    sealed_guest(libvirtd, workdir, None, running)
    libvirtd.virsh("start", running)
    sealed_guest(libvirtd, workdir, None, transient, transient=True)
    sealed_guest(libvirtd, workdir, None, saved)
    libvirtd.virsh("start", saved)
    libvirtd.virsh("managedsave", saved)
    sealed_guest(libvirtd, workdir, None, snapshotted)
    metadata_only_snapshot(libvirtd, workdir, snapshotted)
    checkpointed = "ph-retire-checkpoint"
    cleanup.append(checkpointed)
    sealed_guest(libvirtd, workdir, None, checkpointed)
    metadata_only_checkpoint(libvirtd, workdir, checkpointed)
    yield running, transient, saved, snapshotted, checkpointed
    libvirtd.virsh("snapshot-delete", snapshotted, "before", "--metadata", check=False)
    libvirtd.virsh("checkpoint-delete", checkpointed, "nightly", "--metadata", check=False)


def test_retire_refuses_and_names_every_place_that_holds_the_key(libvirtd, keyed, every_place):
    running, transient, saved, snapshotted, checkpointed = every_place
    assert set().union(*sealed_places(libvirtd, *every_place).values()) == {keyed}
    new_key = command(libvirtd, "key", "new").stdout.split()[2]
    refused = command(libvirtd, "key", "retire", keyed, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    lines = refused.stderr.splitlines()
    named = {line.split("is still used: ")[1].split(": ")[0] for line in lines[:-1]}
    assert named == {f"domain {running}, saved definition", f"domain {running}, live XML",
                     f"domain {transient}, live XML", f"domain {saved}, saved definition",
                     f"domain {saved}, managed save image", f"domain {snapshotted}, saved definition",
                     f"domain {snapshotted}, snapshot before", f"domain {checkpointed}, saved definition",
                     f"domain {checkpointed}, checkpoint nightly"}
    assert all(line.endswith(": 3 files sealed under it") for line in lines[:-1] if "snapshot" not in line)
    assert [line for line in lines if "snapshot before" in line][0].endswith(": 6 files sealed under it")
    assert lines[-1].startswith(f"payloadhook: key {keyed} not retired: 9 places still hold blobs under it")
    assert os.path.exists(os.path.join(keys_of(libvirtd).key_dir, f"{keyed}.key"))
    # the current key is never retired, and an unknown one is said to be unknown
    current = command(libvirtd, "key", "retire", new_key, check=False)
    assert current.returncode == 1 and "is the current key" in current.stderr
    unknown = command(libvirtd, "key", "retire", "20200101-00000000", check=False)
    assert unknown.returncode == 1 and "is not on this host" in unknown.stderr


def test_reseal_all_reaches_every_place_then_the_old_key_retires(libvirtd, keyed, every_place):
    running, transient, saved, snapshotted, checkpointed = every_place
    new_key = command(libvirtd, "key", "new").stdout.split()[2]
    out = command(libvirtd, "reseal", "--all").stdout
    for line in (f"{running}: 3 sealed files", f"{running} (live XML): 3 sealed files",
                 f"{transient} (live XML): 3 sealed files", f"{saved}: 3 sealed files",
                 f"{saved} (managed save image): 3 sealed files", f"{snapshotted}: 3 sealed files",
                 f"{snapshotted} (snapshot before): 6 sealed files", f"{checkpointed}: 3 sealed files",
                 f"{checkpointed} (checkpoint nightly): 3 sealed files"):
        assert line + f" sealed again with key {new_key}" in out
    assert all(keys == {new_key} for keys in sealed_places(libvirtd, *every_place).values())
    assert libvirtd.virsh("dominfo", transient).stdout.split("Persistent:")[1].split()[0] == "no"
    assert libvirtd.virsh("domstate", running).stdout.strip() == "running"
    assert libvirtd.virsh("snapshot-current", "--name", snapshotted, check=False).stdout.strip() in ("before", "")
    retired = command(libvirtd, "key", "retire", keyed)
    assert f"retired key {keyed}" in retired.stdout and retired.stderr == ""
    assert not os.path.exists(os.path.join(keys_of(libvirtd).key_dir, f"{keyed}.key"))
    assert keyed not in command(libvirtd, "key", "list").stdout


def test_reseal_names_a_place_it_cannot_reseal_and_fails(libvirtd, keyed, workdir, cleanup):
    """A running domain whose live XML holds blobs under a key this host has lost: the saved
    definition is resealed, the live XML is named with the reason, and the status is 1."""
    name = "ph-reseal-live-stranded"
    cleanup.append(name)
    sealed_guest(libvirtd, workdir, None, name)
    libvirtd.virsh("start", name)
    lost = command(libvirtd, "key", "new").stdout.split()[2]
    command(libvirtd, "reseal", name)                       # saved and live under 'lost'
    assert key_ids_in(libvirtd.virsh("dumpxml", name).stdout) == {lost}
    os.unlink(os.path.join(keys_of(libvirtd).key_dir, f"{lost}.key"))
    current = command(libvirtd, "key", "new").stdout.split()[2]
    libvirtd.virsh("define", str(workdir / f"{name}.xml"))   # the saved definition back under 'keyed'
    result = command(libvirtd, "reseal", name, check=False)
    assert result.returncode == 1
    assert result.stdout == f"{name}: 3 sealed files sealed again with key {current}\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"payloadhook: domain {name} (live XML): sealed file ")
    assert f"(key {lost})" in lines[0] and "is not on this host" in lines[0]
    assert lines[1].startswith("payloadhook: 1 domain could not be resealed")
    assert key_ids_in(libvirtd.virsh("dumpxml", name).stdout) == {lost}     # left as it was
    assert key_ids_in(libvirtd.virsh("dumpxml", "--inactive", name).stdout) == {current}


@pytest.mark.guest
def test_after_key_rotation_each_domain_still_starts_or_restores(libvirtd, keyed, workdir, guest_kernel, cleanup):
    """key new, reseal --all, key retire; then a running domain saved and restored (its live
    XML, which migration and save hand the hook), a transient one likewise, and a managed-saved
    one started (its managed save image): each prepare opens the files under the new key."""
    running, transient, saved = "ph-rotate-running", "ph-rotate-transient", "ph-rotate-saved"
    cleanup.extend([running, transient, saved])
    consoles = {}
    for name in (saved, running, transient):     # one guest booting at a time: TCG on a busy host
        consoles[name], _ = sealed_guest(libvirtd, workdir, guest_kernel, name, transient=name == transient)
        if name != transient:
            libvirtd.virsh("start", name)
        assert pass_report(consoles[name], wait_round(consoles[name], 0)) == EXPECTED
        if name == saved:
            libvirtd.virsh("managedsave", saved)
    new_key = command(libvirtd, "key", "new").stdout.split()[2]
    command(libvirtd, "reseal", "--all")
    command(libvirtd, "key", "retire", keyed)
    assert not os.path.exists(os.path.join(keys_of(libvirtd).key_dir, f"{keyed}.key"))

    for name in (running, transient):
        image = str(workdir / f"{name}.save")
        assert key_ids_in(libvirtd.virsh("dumpxml", name).stdout) == {new_key}
        assert_stops_and_resumes(libvirtd, name, consoles[name], ("save", name, image), ("restore", image))
    assert key_ids_in(libvirtd.virsh("managedsave-dumpxml", saved).stdout) == {new_key}
    before = wait_round(consoles[saved], 0)
    libvirtd.virsh("start", saved)       # restores the managed save image: prepare opens its blobs
    assert len(images_of(libvirtd, saved)) == 2
    assert pass_report(consoles[saved], wait_whole_pass(consoles[saved], before)) == EXPECTED
    libvirtd.virsh("destroy", saved)
    libvirtd.virsh("start", saved)       # a fresh start: the saved definition, resealed too
    assert len(images_of(libvirtd, saved)) == 2
