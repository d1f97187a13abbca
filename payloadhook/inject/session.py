"""One ``inject`` or ``inject --remove``, step by step (see cli/inject.py for the order and
why): libvirt, the guard's checks, one appliance launch, the guest's file system, the record."""

from __future__ import annotations

import hmac
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import GuestError, SealError, UsageError, command, quote, shown
from . import PANTHER, UNATTEND, disks, guard, ledger, paths, record
from .appliance import Appliance, reason
from .guest import S_IFREG, Guest, Located

#: How many paths a line names before it says how many more.
_NAMED = 5


@dataclass(frozen=True)
class Request:
    """What the command line asks for, read and checked (content in memory only)."""

    files: list            # (name, content) under ``directory``
    directory: str | None
    preset: str | None     # cloud-init, sysprep or None
    parts: object          # the preset's checked request (cli.presets.Request)
    config: object
    disk: str | None
    volume: int | None
    mode: int
    owner: tuple[int, int]
    seal: bool | None
    launch_timeout: float


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _named(items: list[str]) -> str:
    shown_items = [quote(item) for item in items[:_NAMED]]
    more = f" and {len(items) - _NAMED} more" if len(items) > _NAMED else ""
    return ", ".join(shown_items) + more


class _Open:
    """The domain, its saved definition and disks, checked; the appliance with the disks
    added (``written`` read-write, every other local disk read-only) and launched."""

    def __init__(self, uri: str | None, ident: str, target: str | None, timeout: float,
                 recorded: bool = False) -> None:
        from .. import xmlsafe
        from ..ops import virt
        self.conn = virt.connect(uri)
        self.dom = virt.lookup(self.conn, ident)
        self.name = virt.name_of(self.dom)
        self.uuid = self.dom.UUIDString()
        virt.require_persistent(self.dom)
        guard.check_domain(self.dom, self.name)
        self.held: int | None = None
        self.root = xmlsafe.parse_xml(virt.inactive_xml(self.dom, secure=True))
        self.injections = {item.disk: item for item in record.read_injections(self.root)}
        if recorded and target is None and len(self.injections) > 1:
            raise UsageError(f"{self.name} has files injected into disks {', '.join(self.injections)}; "
                             "give --disk TARGET")
        if recorded and target is None and self.injections:
            target = next(iter(self.injections))
        self.all_disks = disks.read_disks(self.root)
        self.disk = disks.written_disk(self.all_disks, target)
        self.timeout = timeout

    def launch(self) -> Guest:
        guard.check_not_shared(self.conn, self.dom, self.disk)     # first: it names the domain
        self.held = guard.check_source(self.disk)      # held (a block device exclusively) until close()
        self.app = Appliance(self.timeout)
        for item in disks.readable_disks(self.all_disks):
            self.app.add(item.target, item.source or "", item.format, writable=item is self.disk)
        try:
            self.app.launch()
            guard.check_domain(self.dom, self.name)    # started meanwhile? (the appliance holds the lock now)
        except BaseException:
            self.app.abandon()
            self.close()
            raise
        return Guest(self.app, self.app.drives.index(self.disk.target), self.disk.target)

    def close(self) -> None:
        """Let go of the disk's source (after the appliance has shut down)."""
        held, self.held = self.held, None
        if held is not None:
            os.close(held)

    def proof(self, where: str) -> ledger.Proof | None:
        """What this host's copy proves of the definition's record of the disk (None: no record)."""
        defined = self.injections.get(self.disk.target)
        if defined is None:
            return None
        return ledger.proven(defined, ledger.read(where, self.uuid, self.disk.target))

    def keep(self, where: str, injection: record.Injection | None) -> None:
        """The record set in this host's copy first, then in the definition; the copy put back
        as it was if the definition cannot be."""
        before = ledger.read(where, self.uuid, self.disk.target)
        ledger.write(where, self.uuid, self.disk.target, injection)
        try:
            self.define(injection)
        except BaseException:
            ledger.write(where, self.uuid, self.disk.target, before)
            raise

    def define(self, injection: record.Injection | None) -> None:
        """The record of the disk set (None: removed) in the saved definition as it is now."""
        from .. import xmlsafe
        from ..ops import virt
        root = xmlsafe.parse_xml(virt.inactive_xml(self.dom, secure=True))
        record.set_injection(root, self.disk.target, injection)
        virt.call(f"cannot define {self.name}", self.conn.defineXML, xmlsafe.serialize(root).decode("utf-8"))


def _sealing(request: Request, root) -> tuple[str | None, bytes | None]:
    """The key the record's MACs are made under (as attach seals: by default when the host has
    a key), or none."""
    if request.seal is False:
        return None, None
    from ..seal.keys import KeyStore
    from ..seal.sealing import current_key
    keys = KeyStore(request.config.key_dir)     # type: ignore[attr-defined]
    key_id = current_key(keys, required=request.seal is True)
    return (key_id, keys.load(key_id)) if key_id is not None else (None, None)


def _preset_files(request: Request, root) -> list:
    if request.preset is None:
        return request.files
    payload = request.parts.payload(root)       # type: ignore[attr-defined]
    if request.preset == "sysprep":
        return [(UNATTEND, payload.files[0].content)]
    return [(item.name, item.content) for item in payload.files]


def _directory(guest: Guest, located: Located, request: Request) -> tuple[str, ...]:
    if request.preset != "sysprep":
        return paths.components(request.directory or "/")
    if not located.windows:
        raise GuestError("--sysprep: the file system found is not a Windows system volume (NTFS with a Windows "
                         "directory); give --disk and --volume N for it")
    systemroot = paths.components(located.systemroot or "/Windows", "the Windows directory")
    found, existing = guest.walk(systemroot)
    if existing < len(systemroot):
        raise GuestError(f"--sysprep: the volume has no Windows directory ({quote(paths.join(systemroot))})")
    return found + (PANTHER,)


@contextmanager
def _libguestfs_errors():
    """A libguestfs call that fails where none was expected: one line, as every refusal."""
    try:
        yield
    except RuntimeError as exc:
        raise GuestError(f"libguestfs failed: {reason(exc)}") from None


def inject(uri: str | None, ident: str, request: Request) -> str:
    with _libguestfs_errors():
        return _inject(uri, ident, request)


def remove(uri: str | None, ident: str, target: str | None, timeout: float) -> str:
    with _libguestfs_errors():
        return _remove(uri, ident, target, timeout)


def _inject(uri: str | None, ident: str, request: Request) -> str:
    session = _Open(uri, ident, request.disk, request.launch_timeout)
    where = request.config.inject_record_dir     # type: ignore[attr-defined]
    proof = session.proof(where)
    previous = proof.injection if proof is not None else None    # only what this host wrote goes forward
    if previous is not None and previous.volume != request.volume:
        raise GuestError(f"disk {shown(session.disk.target, 40)} holds files injected "
                         + ("by inspection" if previous.volume is None else f"on volume {previous.volume}")
                         + "; inject there again, or inject --remove first")
    files = _preset_files(request, session.root)
    key_id, host_key = _sealing(request, session.root)
    guest = session.launch()
    finished = False
    try:
        located = (guest.locate_volume(request.volume) if request.volume is not None
                   else guest.locate_os(disk_named=request.disk is not None))
        plan = guest.plan(_directory(guest, located, request), files)
        made = record.Injection(
            disk=session.disk.target, when=_now(), volume=request.volume,
            files=(previous.files if previous else ()) + tuple(
                record.file_record(item.path, item.content, key_id, host_key) for item in plan.files),
            directories=(previous.directories if previous else ()) + tuple(paths.join(d) for d in plan.new_dirs))
        session.keep(where, made)     # first: whatever reaches the disk is on record, for --remove
        try:
            guest.write(plan, request.mode, request.owner)
            finished = True
            session.app.finish()
        except GuestError as exc:
            remove = command("payloadhook", "inject", "--remove", session.uuid)
            raise GuestError(f"{exc}; the record names each file, and '{remove}' takes out what was "
                             "written") from None
    finally:
        if not finished:
            session.app.abandon()
        session.close()
    size = sum(len(item.content) for item in plan.files)
    where = paths.join(plan.files[0].parts[:-1]) if plan.files else "/"
    return (f"injected {len(plan.files)} file{'s' if len(plan.files) != 1 else ''} ({size} bytes) into "
            f"{quote(where)} on disk {shown(session.disk.target, 40)} of {session.name}"
            + (f", recorded sealed (key {key_id})" if key_id else "")
            + f"; '{command('payloadhook', 'inject', '--remove', session.uuid)}' takes them out")


def _matches(guest: Guest, found: tuple[str, int, int], item: record.InjectedFile, keys, limit: int) -> str | None:
    """Why the guest's file ``found`` (path, type, size) is not what was injected as ``item``;
    None when it is. A sealed file is read to check its MAC, never more than ``limit``
    (max_file_size) bytes."""
    path, kind, size = found
    if kind != S_IFREG:
        return "no longer a regular file"
    if size != item.size:
        return "changed since it was injected"
    if item.sealed:
        if size > limit:
            return f"unverifiable: larger than max_file_size ({limit} bytes)"
        try:
            key = keys.load(item.key)
        except SealError:
            return f"unverifiable: key {item.key} is not on this host"
        content = guest.content_of(path, size)
        return None if hmac.compare_digest(record.mac_of(key, item.path, content), item.mac or "") \
            else "changed since it was injected"
    return None if guest.g.checksum("sha256", path) == item.sha256 else "changed since it was injected"


def _remove(uri: str | None, ident: str, target: str | None, timeout: float) -> str:
    from ..config import load_config
    from ..seal.keys import KeyStore
    session = _Open(uri, ident, target, timeout, recorded=True)
    injection = session.injections.get(session.disk.target)
    if injection is None:
        return f"{session.name}: no files are recorded as injected" + (
            f" into disk {shown(session.disk.target, 40)}" if target else "")
    config = load_config()
    proof = session.proof(config.inject_record_dir)
    assert proof is not None
    if proof.injection is None or not (proof.injection.files or proof.injection.directories):
        doubt = proof.why or "this host has no record of them"
        raise GuestError(f"the record of disk {shown(session.disk.target, 40)} in the definition of {session.name} "
                         f"names entries inject did not write on this host ({doubt}: "
                         f"{_named(list(proof.unproven))}); nothing removed")
    mine = proof.injection
    keys = KeyStore(config.key_dir)
    guest = session.launch()
    removed: list[str] = []
    gone: list[str] = []
    left: list[tuple[record.InjectedFile, str]] = []
    kept: list[str] = []
    rmdirs: list[str] = []
    finished = False
    try:
        if mine.volume is not None:
            guest.locate_volume(mine.volume)
        else:
            guest.locate_os(disk_named=True)
        doomed: list[tuple[str, str]] = []
        by_directory: dict[tuple[str, ...], list[tuple[record.InjectedFile, str]]] = {}
        for item in mine.files:
            parts = paths.components(item.path, "file")
            try:
                where, existing = guest.walk(parts[:-1])
            except GuestError:
                left.append((item, "a link or a file is now on its way"))
                continue
            if existing < len(where):
                gone.append(item.path)
            else:
                by_directory.setdefault(where, []).append((item, parts[-1]))
        for directory, entries in by_directory.items():
            for (item, _), state in zip(entries, guest.lstat_names(directory, [name for _, name in entries])):
                if state is None:
                    gone.append(item.path)
                    continue
                why = _matches(guest, state, item, keys, config.max_file_size)
                if why is None:
                    doomed.append((item.path, state[0]))
                else:
                    left.append((item, why))
        if doomed or mine.directories:
            guest.make_writable()      # every file checked first, on a read-only mount
        for path, found in doomed:
            guest.remove_file(found)
            removed.append(path)
        for made in sorted(mine.directories, key=lambda d: d.count("/"), reverse=True):
            if guest.remove_dir_if_empty(made):
                rmdirs.append(made)
            else:
                kept.append(made)
        finished = True
        session.app.finish()
    finally:
        if not finished:
            session.app.abandon()
        session.close()
    # what was left stays on record (here and in the definition), so a later --remove can try again
    rest = record.Injection(disk=mine.disk, when=mine.when, volume=mine.volume,
                            files=tuple(item for item, _ in left),
                            directories=tuple(d for d in mine.directories if d in kept))
    session.keep(config.inject_record_dir, rest if rest.files or rest.directories else None)
    line = (f"removed {len(removed)} injected file{'s' if len(removed) != 1 else ''}"
            + (f" ({_named(removed)})" if removed else "")
            + f" from disk {shown(session.disk.target, 40)} of {session.name}")
    if rmdirs:
        line += f"; removed the directories inject made: {_named(rmdirs)}"
    if gone:
        line += f"; {len(gone)} already gone"
    if left:
        line += f"; left {len(left)} the guest changed, kept on record: " + ", ".join(
            f"{quote(item.path)} ({why})" for item, why in left[:_NAMED]) + (
            f" and {len(left) - _NAMED} more" if len(left) > _NAMED else "")
    if kept:
        line += f"; kept directories that are not empty: {_named(kept)}"
    if proof.unproven:
        line += (f"; ignored {len(proof.unproven)} recorded entries inject did not write on this host: "
                 f"{_named(list(proof.unproven))}")
    return line
