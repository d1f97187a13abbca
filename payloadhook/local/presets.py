"""A preset's parts named on a command line (``--cloud-init``, ``--config-drive``, ``--sysprep``,
``--ovf-env``): parsing their values, reading their files, and checking those before any
libvirt call or any write. The layouts and the formats' rules live in payloadhook/presets/;
the flags themselves in payloadhook/cli/common.py.

``F`` is a path, ``-`` (standard input, once), or ``json:NAME``: the file NAME of the
``--files-json`` document, so that a caller (the web console) passes content through
neither a command line nor a file. A path that starts with ``json:`` is given as ./json:...
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class Sources:
    """Where the preset's files come from: paths, standard input, ``--files-json`` entries
    (none left over: :meth:`finish`; :func:`_check_sources` has refused standard input
    named twice). Every read within the limits."""

    def __init__(self, args, config) -> None:
        from .files import Budget
        from .files_json import files_from_json
        self.config = config
        self.follow = bool(getattr(args, "follow_symlinks", False))
        self.budget = Budget(config)
        self.entries: dict[str, bytes] | None = None
        self.used: set[str] = set()
        if args.files_json is not None:
            from ..errors import PayloadError, quote
            self.entries = {}
            for item in files_from_json(args.files_json, config):
                if item.name in self.entries:
                    raise PayloadError(f"--files-json: file {quote(item.name, 60)} appears twice")
                self.entries[item.name] = item.content

    def read(self, what: str, source: str) -> bytes:
        from ..errors import PayloadError, UsageError, quote
        from ..errors import shown_path as show
        from .files import read_regular
        if source == "":
            raise UsageError(f"{what}: no file given")
        if source == "-":
            return self._stdin(what)
        if source.startswith("json:") and self.entries is not None:
            name = source[5:]
            if name not in self.entries:
                raise PayloadError(f"{what}: the --files-json document has no file named {quote(name, 60)}")
            self.used.add(name)
            return self.entries[name]
        try:
            return read_regular(source, self.budget, what=what, follow=self.follow)
        except PayloadError as exc:
            if "does not exist" in str(exc):
                raise PayloadError(f"{what}: {show(source)} does not exist") from None
            raise

    def _stdin(self, what: str) -> bytes:
        from ..errors import PayloadError
        limit = self.config.max_file_size
        chunks, got = [], 0
        while True:
            chunk = os.read(0, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            if got > limit:
                raise PayloadError(f"{what}: standard input is over max_file_size ({limit} bytes)")
        self.budget.take_file(f"{what} (standard input)", got)
        return b"".join(chunks)

    def finish(self) -> None:
        """Refuse a ``--files-json`` file the preset did not name: it would be dropped unseen."""
        from ..errors import UsageError, quote
        unused = [name for name in self.entries or () if name not in self.used]
        if unused:
            raise UsageError(f"--files-json file {quote(unused[0], 60)} is not named by the preset "
                             "(give json:NAME to one of its files)")


def parse_parts(flag: str, text: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict[str, str]:
    """``name=F,name=F`` as {name: F}: split at ',' then at each item's first '='."""
    from ..errors import UsageError, quote
    parts: dict[str, str] = {}
    for item in text.split(","):
        name, equals, source = item.partition("=")
        if not equals:
            raise UsageError(f"{flag}: {quote(item, 60)} is not NAME=F (NAME one of {', '.join(allowed)})")
        if name not in allowed:
            raise UsageError(f"{flag}: {quote(name, 40)} is not one of {', '.join(allowed)}")
        if name in parts:
            raise UsageError(f"{flag}: {name} is given twice")
        parts[name] = source
    missing = [name for name in required if name not in parts]
    if missing:
        raise UsageError(f"{flag}: {missing[0]}=F is required")
    return parts


def _check_sources(flag: str, named: dict[str, str], files_json: str | None) -> None:
    """Refuse, before reading anything, standard input named twice and json:NAME without
    a --files-json document."""
    from ..errors import UsageError, quote
    stdin = ["--files-json"] if files_json == "-" else []
    for name, source in named.items():
        what = flag if name in ("answer", "document", "config") else f"{flag} {name}"
        if source == "-":
            if stdin:
                raise UsageError(f"{what}: standard input (-) is already taken by {stdin[0]}; give it to one "
                                 "file only")
            stdin.append(what)
        elif source.startswith("json:") and files_json is None:
            raise UsageError(f"{what} names {quote(source, 60)} but no --files-json document was given")


def is_properties(value: str) -> bool:
    """Whether an ``--ovf-env`` value is KEY=VALUE,… rather than F (by the inputs' rule: a
    path starts with / or ./, or holds no '=')."""
    return not value.startswith(("/", "./", "json:")) and value != "-" and "=" in value


@dataclass(frozen=True)
class Request:
    """A preset read and checked from the command line, made into a payload once the domain
    (its UUID, name and machine) is known; for ``build``, without one."""

    kind: str
    parts: dict
    config: object
    target: str | None
    medium: str | None
    label: str | None
    instance_id: str | None = None
    nets: tuple = ()

    def payload(self, root=None):
        from .. import presets
        from ..domain.view import I440FX, view_of
        from ..model import CDROM, FLOPPY, NETWORK
        from ..presets import cloudinit, configdrive, ovfenv, sysprep
        view = view_of(root) if root is not None else None
        identity = presets.Identity(uuid=view.uuid, name=view.name) if view is not None else presets.Identity()
        parts = self._with_network(root)
        if self.kind == presets.CLOUD_INIT:
            medium = self.medium if self.medium in (CDROM, FLOPPY) else CDROM    # network: laid out as on a CD-ROM
            payload = cloudinit.build(parts, identity, self.target, self.instance_id, medium)
        elif self.kind == presets.CONFIG_DRIVE:
            payload = configdrive.build(parts, identity, self.target, self.instance_id)
        elif self.kind == presets.SYSPREP:
            medium = self.medium or (CDROM if view is not None and view.machine_family != I440FX else FLOPPY)
            payload = sysprep.build(self.parts["answer"], medium, self.target, self.label)
        elif self.kind == presets.IGNITION:
            from ..presets import ignition
            payload = ignition.build(self.parts["config"])
        else:
            document = self.parts.get("document") or ovfenv.document(self.parts["properties"], identity)
            payload = ovfenv.build(document, self.target, self.label)
        if self.medium == NETWORK:    # the seed served over the network: the same files, no medium
            from ..model import replace
            payload = replace(payload, type=NETWORK, target=None, volume_id=None)
        self.config.check([payload])    # type: ignore[attr-defined]
        return payload

    def _with_network(self, root) -> dict:
        """The parts, with the network configuration ``--net`` makes for the domain ``root``
        (None: build, whose interfaces are named by MAC)."""
        from .. import presets
        from ..presets import network
        if not self.nets:
            return self.parts
        nics = network.resolve(self.nets, network.interfaces_of(root) if root is not None else None)
        if self.kind == presets.CLOUD_INIT:
            return {**self.parts, "network-config": network.network_config(nics)}
        return {**self.parts, "network-data": network.network_data(nics)}


def request_from_args(args, kind: str, with_target: bool = True) -> Request:
    """The preset's files read and checked (nothing written, libvirt not called yet)."""
    from .. import presets
    from ..errors import UsageError
    from ..presets import cloudinit, configdrive, instanceid, network, ovfenv, sysprep
    flag = "--" + kind
    if args.inputs:
        raise UsageError(f"{flag} lays out its own files: give no NAME=PATH, file or directory with it")
    served = args.type == "network" and kind in (presets.CLOUD_INIT, presets.CONFIG_DRIVE)    # the seed service
    if args.type is not None and kind not in (presets.SYSPREP, presets.CLOUD_INIT) and not served:
        raise UsageError(f"{flag} makes a CD-ROM; --type goes with --sysprep and --cloud-init only (and --type "
                         "network with --cloud-init and --config-drive)")
    if kind == presets.IGNITION and getattr(args, "target", None) is not None:
        raise UsageError("--ignition is an fw_cfg entry, on no disk: --target does not go with it")
    nets, instance_id = tuple(getattr(args, "net", None) or ()), getattr(args, "instance_id", None)
    if (nets or instance_id is not None) and kind not in (presets.CLOUD_INIT, presets.CONFIG_DRIVE):
        raise UsageError("--net and --instance-id go with --cloud-init and --config-drive")
    if args.label is not None and kind in (presets.CLOUD_INIT, presets.CONFIG_DRIVE):
        label = cloudinit.LABEL if kind == presets.CLOUD_INIT else configdrive.LABEL
        raise UsageError(f"{flag} needs the label {label}, which its reader looks for; --label cannot change it")
    value = getattr(args, kind.replace("-", "_"))
    named: dict[str, str] = {}      # part: F, each told apart before any is read
    if kind in (presets.CLOUD_INIT, presets.CONFIG_DRIVE):
        module = cloudinit if kind == presets.CLOUD_INIT else configdrive
        named = parse_parts(flag, value, module.PARTS, module.REQUIRED)
        _check_seed_options(flag, named, nets, instance_id)
    elif kind == presets.SYSPREP:
        named = {"answer": value}
    elif kind == presets.IGNITION:
        named = {"config": value}
    elif not is_properties(value):
        named = {"document": value}
    else:
        properties = ovfenv.parse_properties(value)
        if ovfenv.names_a_file(properties.get(ovfenv.USER_DATA, "")):
            named = {ovfenv.USER_DATA: properties[ovfenv.USER_DATA]}
    if instance_id is not None:
        instance_id = instanceid.check_value(instance_id)
    specs = tuple(network.parse(text) for text in nets)
    _check_sources(flag, named, args.files_json)
    from ..config import load_config
    config = load_config()
    sources = Sources(args, config)
    parts: dict = {name: sources.read(flag if name in ("answer", "document", "config") else f"{flag} {name}", source)
                   for name, source in named.items()}
    if kind in (presets.CLOUD_INIT, presets.CONFIG_DRIVE):
        module.check(parts, config.max_file_size)
    elif kind == presets.SYSPREP:
        sysprep.check(parts["answer"])
    elif kind == presets.IGNITION:
        from ..presets import ignition
        ignition.check(parts["config"])
    elif "document" in parts:
        ovfenv.check(parts["document"], config.max_file_size)
    else:
        if ovfenv.USER_DATA in parts:
            properties[ovfenv.USER_DATA] = ovfenv.user_data_value(parts[ovfenv.USER_DATA], config.max_file_size)
        elif ovfenv.USER_DATA in properties:
            ovfenv.check_user_data_value(properties[ovfenv.USER_DATA], config.max_file_size)
        parts = {"properties": properties}
    sources.finish()
    return Request(kind=kind, parts=parts, config=config, target=None if served else getattr(args, "target", None)
                   if with_target else None, medium=args.type, label=args.label, instance_id=instance_id, nets=specs)


def _check_seed_options(flag: str, named: dict[str, str], nets: tuple, instance_id: str | None) -> None:
    """--net and --instance-id against the files given: each question answered once."""
    from .. import presets
    from ..errors import UsageError
    if nets:
        given = "network-config" if flag == "--" + presets.CLOUD_INIT else "network-data"
        if given in named:
            raise UsageError(f"--net makes the {given}; give either --net or {flag} {given}=F")
    if instance_id is not None and flag == "--" + presets.CLOUD_INIT and "meta-data" in named:
        raise UsageError("--instance-id goes into the meta-data the command makes; a given meta-data=F holds "
                         "its own instance-id")

