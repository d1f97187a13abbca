"""The systemd unit of the seed service, ``payloadhook-seed.service``.

The RPM ships packaging/payloadhook-seed.service (the command at /usr/bin/payloadhook);
``install-hook`` writes the same unit for the interpreter it installs the hook for. Neither
enables it: the administrator does (``systemctl enable --now payloadhook-seed``), as the README says.
"""

from __future__ import annotations

NAME = "payloadhook-seed.service"

TEMPLATE = """[Unit]
Description=payloadhook network seed: network payloads served to their own domains from 169.254.169.254
Documentation=file:///usr/share/doc/payloadhook/README.md
After=network.target libvirtd.service virtqemud.service

[Service]
Type=simple
ExecStart={command} serve
Restart=on-failure
# root, for the records and keys (root's, 0600); the address on the bridges (NET_ADMIN), a
# listener bound to each (NET_RAW) on port 80 (NET_BIND_SERVICE); nothing else
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=full
ProtectHome=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_NETLINK AF_UNIX
LockPersonality=yes

[Install]
WantedBy=multi-user.target
"""


def unit_text(command: str) -> str:
    """The unit running ``command`` (a path, or a path and options) ``serve``."""
    return TEMPLATE.format(command=command)


def command_of(text: str) -> str | None:
    """The command a unit this module wrote runs, or None where the text is not one."""
    for line in text.splitlines():
        if line.startswith("ExecStart=") and line.endswith(" serve"):
            command = line[len("ExecStart="):-len(" serve")]
            return command if unit_text(command) == text else None
    return None
