"""What the tests of a fleet share: two private libvirtds to migrate between, and a
controller's sealing keys encrypted with ansible-vault, as an administrator keeps them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness.libvirtd import Libvirtd, free_tcp_port


@contextmanager
def two_libvirtds(prefix: str) -> Iterator[tuple[Libvirtd, Libvirtd]]:
    """A source and a destination libvirtd (hostnames PREFIX-source, PREFIX-destination),
    each listening on a free TCP port for the migration; both stopped afterwards."""
    source = Libvirtd(hostname=f"{prefix}-source", tcp_port=free_tcp_port()).start()
    try:
        destination = Libvirtd(hostname=f"{prefix}-destination", tcp_port=free_tcp_port()).start()
        try:
            yield source, destination
        finally:
            destination.stop()
    finally:
        source.stop()


def vault_keys(top: Path, group: str, key_ids: tuple[str, ...], password: str, env: dict) -> dict[str, bytes]:
    """A key of 32 random bytes for each of KEY_IDS in TOP/keys/GROUP/ID.key, each encrypted
    in place with ansible-vault under PASSWORD (kept in TOP/vault-password); returns the
    plain keys, for the tests to compare with what the role installs."""
    (top / "vault-password").write_text(password + "\n")
    keys = top / "keys" / group
    keys.mkdir(parents=True)
    plain = {}
    for key_id in key_ids:
        plain[key_id] = os.urandom(32)
        (keys / f"{key_id}.key").write_bytes(plain[key_id])
        subprocess.run(["ansible-vault", "encrypt", "--vault-password-file", str(top / "vault-password"),
                        str(keys / f"{key_id}.key")], check=True, capture_output=True, env=env)
        assert (keys / f"{key_id}.key").read_bytes().startswith(b"$ANSIBLE_VAULT;")
    return plain
