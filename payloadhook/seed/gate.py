"""The seed's traffic tied to the port it enters on: nftables rules in the bridge family.

A request is answered only when the host's tables say it came from a served domain
(identity.py), but the kernel's tables say where a MAC address was last seen, not which
port a frame came in on: a neighbour that takes a domain's MAC and IP address and floods
moves the bridge's forwarding database to its own port between two frames. The service
therefore installs, in a table of its own (``bridge payloadhook_seed``), rules that see each
frame's own ports:

- input: a frame to 169.254.169.254 on the service's TCP port, entering the host from a
  bridge, is accepted only from a served tap (``iifname``) with that tap's own MAC as its
  source; any other such frame, from any other port or with any other MAC, is dropped;
- output: a frame from 169.254.169.254 on that port, leaving through a bridge, is sent only
  through a served tap to that tap's own MAC; any other (a reply the forwarding database,
  moved by a neighbour, would send to the neighbour's port, or flood) is dropped.

The rules are one ruleset, replaced as a whole (``nft -f -``: one transaction) when the
served taps change, and the table is deleted when the service stops: the service removes
exactly what it added. A bridge is served only once its rules are in; if they cannot be
installed, no bridge is (fail closed). Names and MACs come from records the service has
validated (interface names of the kernel's own characters, MACs by is_mac).
"""

from __future__ import annotations

import subprocess

from ..errors import SeedError, shown
from . import SEED_ADDRESS
from .record import is_mac

TABLE = "payloadhook_seed"
NFT = ("/usr/sbin/nft", "/sbin/nft")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def is_ifname(name: object) -> bool:
    """A name the kernel would give a device, safe inside an nft string."""
    return isinstance(name, str) and 0 < len(name) < 16 and set(name) <= _NAME_CHARS and name not in (".", "..")


def ruleset(taps: list[tuple[str, str]], port: int) -> str:
    """The table for the served ``taps`` ([(tap name, MAC), ...]), replacing any earlier one.

    The drops hold on every bridge of the service's network namespace (the bridge family
    cannot name a frame's bridge without nft_meta_bridge, which not every kernel has): the
    seed's port at 169.254.169.254 is reached through a served tap or not at all."""
    seed = f"ip daddr {SEED_ADDRESS} tcp dport {port}"
    back = f"ip saddr {SEED_ADDRESS} tcp sport {port}"
    ins = [f'    iifname "{tap}" ether saddr {mac} {seed} accept' for tap, mac in sorted(set(taps))]
    outs = [f'    oifname "{tap}" ether daddr {mac} {back} accept' for tap, mac in sorted(set(taps))]
    lines = [f"table bridge {TABLE} {{}}", f"delete table bridge {TABLE}", f"table bridge {TABLE} {{",
             "  chain input {", "    type filter hook input priority -200; policy accept;", *ins]
    if taps:
        lines.append(f"    {seed} drop")
    lines += ["  }", "  chain output {", "    type filter hook output priority -200; policy accept;", *outs]
    if taps:
        lines.append(f"    {back} drop")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def _nft(text: str) -> None:
    import os
    command = next((path for path in NFT if os.access(path, os.X_OK)), None)
    if command is None:
        raise SeedError("cannot install the seed's bridge rules: nft (nftables) is not installed")
    try:
        result = subprocess.run([command, "-f", "-"], input=text.encode(), capture_output=True, timeout=30,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SeedError(f"cannot install the seed's bridge rules: {type(exc).__name__}") from None
    if result.returncode != 0:
        first = (result.stderr.decode(errors="replace").strip().splitlines() or ["nft failed"])[0]
        raise SeedError(f"cannot install the seed's bridge rules: {shown(first, 200)}")


class Gate:
    """The service's table: installed as the served taps change, deleted at stop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.installed: str | None = None
        self.touched = False    # whether the service has (or may have) made its table

    def set(self, taps: list[tuple[str, str]]) -> None:
        """Make the table hold exactly ``taps``' rules; SeedError when it could not."""
        for tap, mac in taps:
            if not is_ifname(tap) or not is_mac(mac):
                raise SeedError(f"cannot install the seed's bridge rules for {shown(tap, 20)}: a name nft "
                                "would not read as one")
        text = ruleset(taps, self.port)
        if text == self.installed:
            return
        self.installed = None
        self.touched = True
        _nft(text)
        self.installed = text

    def remove(self) -> None:
        if not self.touched:
            return
        self.installed = None
        self.touched = False
        _nft(f"table bridge {TABLE} {{}}\ndelete table bridge {TABLE}\n")
