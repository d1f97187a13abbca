"""A domain's XML, read once: payload metadata (metadata), the typed view with disks and
binding (view), edits planned then applied (plan, laid out by layout) and redaction
(redact). Parsing is :mod:`payloadhook.xmlsafe`'s, the hook's prepare pipeline
:mod:`payloadhook.prepare`'s.

Importing this package costs nothing: the hook imports from it only when a domain has
payload metadata.
"""
