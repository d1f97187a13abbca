"""The instance-id of a cloud-init seed (``--instance-id``), one policy for NoCloud and the
config drive.

cloud-init runs its per-instance steps (users, keys, hostname, first-boot network, runcmd)
once per instance-id: a new id makes them run again, the same id keeps what they did. The
peers choose differently and their users complain both ways (Proxmox keeps one id per VM, so a
changed seed is never applied again; LXD changes it on every configuration change). Three
policies, the user's choice:

- ``stable`` (the default for ``attach`` and ``run-once``): the domain's UUID. The domain is
  the instance; a new seed on the same domain is applied only by the steps cloud-init runs
  every boot. ``build`` has no domain: there the default is ``content``, and ``stable`` is
  refused (a config drive's ``meta-data=`` may carry its ``uuid`` instead).
- ``content``: derived from every file of the payload but the id itself (user data, vendor
  data, network configuration, the rest of the meta-data), so it changes exactly when the
  payload does: a changed seed is a new instance, an unchanged one never is.
- any other value: taken literally (cloud-init makes it a directory name under
  /var/lib/cloud/instances/, so it is one path component of printable characters).
"""

from __future__ import annotations

from ..errors import PayloadError, UsageError, quote
from . import Identity, content_id

STABLE = "stable"
CONTENT = "content"
#: cloud-init keeps each instance under /var/lib/cloud/instances/<id>/: one file name.
MAX_LENGTH = 255


def check_value(value: str) -> str:
    """A policy or a literal id from the command line."""
    if value in (STABLE, CONTENT):
        return value
    if not value:
        raise UsageError("--instance-id: give stable, content or a value")
    if not is_literal(value):
        raise UsageError(f"--instance-id {quote(value, 40)} is not one path component of printable characters "
                         f"without '/' or surrounding blanks (cloud-init makes it a directory name), "
                         f"{MAX_LENGTH} bytes at most")
    return value


def is_literal(value: str) -> bool:
    """Whether ``value`` can be an instance-id: one path component of printable characters."""
    return 0 < len(value.encode("utf-8", "surrogatepass")) <= MAX_LENGTH and "/" not in value and \
        value not in (".", "..") and value.isprintable() and value == value.strip()


def resolve(policy: str | None, identity: Identity, files: dict[str, bytes], prefix: str) -> str:
    """The id under ``policy`` (None: the default, ``stable`` with a domain, ``content``
    without); ``files``: every file of the payload but the id, for ``content``, which is
    ``prefix`` (``iid-``, or ``uuid``) applied to their digest (:func:`content_id`)."""
    if policy is None:
        policy = STABLE if identity.uuid else CONTENT
    if policy == STABLE:
        if not identity.uuid:
            raise PayloadError("--instance-id stable is the domain's UUID, and build has no domain: give "
                               "--instance-id content (the default there) or a value")
        return identity.uuid
    if policy == CONTENT:
        return content_form(prefix, content_id(files))
    return policy


def content_form(prefix: str, hexdigest: str) -> str:
    """``iid-`` and 16 hex digits (NoCloud), or a name-based UUID of the digest (the config
    drive's ``uuid``, which OpenStack readers expect to look like one)."""
    if prefix == "uuid":
        import uuid
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "payloadhook:" + hexdigest))
    return prefix + hexdigest[:16]
