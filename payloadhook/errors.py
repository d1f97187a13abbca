"""The kinds of failure, each with a message a user can act on.

As in pycdlib, the type says whose fault it is. Entry points (the hook, the command)
turn any of these into one line, ``payloadhook: <message>``, and an exit status.
No message ever contains payload content.
"""


class PayloadhookError(Exception):
    """Base of every error the library raises on purpose."""


class PayloadError(PayloadhookError):
    """The payload metadata is invalid: a bad name, bad content, over a limit."""


class XMLError(PayloadhookError):
    """A document (domain XML, OVF) is not acceptable XML."""


class BindingError(PayloadhookError):
    """A payload cannot be bound to a disk of the domain."""


class ConfigError(PayloadhookError):
    """The configuration file cannot be read or holds a bad value."""


class StoreError(PayloadhookError):
    """An image cannot be written, recorded or removed in the image directory."""


class LibvirtError(PayloadhookError):
    """A libvirt call made by the command failed."""
