"""Ignition (Fedora CoreOS, Flatcar): its config as the QEMU fw_cfg entry
``opt/com.coreos/config``, where Ignition's QEMU platform reads it
(``/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw``).

The config is checked as Ignition checks it before anything else: a JSON object with an
``ignition`` object whose ``version`` is a string ("3.4.0"; Ignition refuses a config
without one).
"""

from __future__ import annotations

from ..errors import PayloadError
from ..model import FWCFG, Payload, PayloadFile
from .formats import load_json

ENTRY = "opt/com.coreos/config"


def check(config: bytes) -> None:
    document = load_json(config, "--ignition")
    if not isinstance(document, dict):
        raise PayloadError("--ignition is not a JSON object, as an Ignition config is")
    ignition = document.get("ignition")
    if not isinstance(ignition, dict) or not isinstance(ignition.get("version"), str) or not ignition["version"]:
        raise PayloadError('--ignition has no "ignition": {"version": "..."}, which Ignition requires')


def build(config: bytes) -> Payload:
    return Payload(type=FWCFG, files=(PayloadFile(ENTRY, config),))
