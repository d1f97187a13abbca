"""The payload a command line names: ``--type``, ``--target``, ``--label`` and the files
(NAME=PATH, a file, a directory, ``--files-json``), or a preset in their place; read and
checked against the configuration's limits before libvirt is called or anything written.

``args`` is anything with the attributes the command's parser gives (``type``, ``target``,
``label``, ``inputs``, ``files_json``, ``follow_symlinks`` and one per preset flag).
"""

from __future__ import annotations

#: The presets' flags as the parser stores them: payloadhook.presets.KINDS with '_' for '-'
#: (tests/test_presets.py holds the two together), so that a command without a preset does
#: not import the presets (and with them ``re`` and ``dataclasses``) to learn that.
PRESET_ATTRIBUTES = ("cloud_init", "config_drive", "sysprep", "ovf_env", "ignition")


def chosen(args) -> str | None:
    """The preset the command line names, if any (as payloadhook.presets names it)."""
    for attribute in PRESET_ATTRIBUTES:
        if getattr(args, attribute, None) is not None:
            return attribute.replace("_", "-")
    return None


def payload_from_args(args, with_target: bool = True, stream: bool = False):
    """The payload the command line names, checked against the configuration's limits; and
    that configuration. ``stream``: input files are held open as the sources of their
    content (local/sources.py), for a verb that streams them into an image."""
    from ..config import load_config
    from ..errors import UsageError
    from ..model import Payload
    from .files import files_from_args
    if args.type is None:
        raise UsageError("give --type cdrom|floppy|network|fwcfg and the files, or a preset: --cloud-init, "
                         "--config-drive, --sysprep, --ovf-env or --ignition")
    if not args.inputs and args.files_json is None:
        raise UsageError("give the files: NAME=PATH, a file or a directory, or --files-json -")
    config = load_config()
    files = files_from_args(args.inputs, config, args.follow_symlinks, stream=stream)
    if args.files_json is not None:
        from .files_json import files_from_json
        files += files_from_json(args.files_json, config)
    payload = Payload(type=args.type, files=files, target=args.target if with_target else None,
                      volume_id=args.label)
    config.check([payload])
    return payload, config


def payload_maker(args, with_target: bool = True, stream: bool = False):
    """What a verb needs to make its payload: ``(make, config, label_given)``, where
    ``make(root)`` gives the payload for the parsed domain ``root`` (None for ``build``).
    Everything the command line names is read and checked here, before libvirt is called.
    ``stream``: see :func:`payload_from_args` (a preset's files are read)."""
    kind = chosen(args)
    if kind is None:
        if getattr(args, "net", None) or getattr(args, "instance_id", None) is not None:
            from ..errors import UsageError
            raise UsageError("--net and --instance-id go with --cloud-init and --config-drive")
        payload, config = payload_from_args(args, with_target, stream)
        return (lambda root: payload), config, args.label is not None
    from .presets import request_from_args
    request = request_from_args(args, kind, with_target)
    # a preset's label is part of it: a replaced payload never keeps the old one
    return request.payload, request.config, True
