"""A domain's XML, read once: safe parsing (xmlsafe), payload metadata (metadata), the typed
view with disks and binding (view), edits planned then applied (plan, laid out by layout),
``payloadhook check`` (check) and redaction (redact). disks and edit keep the names callers
used before the view; they are one line each over view and plan.

Importing this package costs nothing: the hook imports from it only when a domain has
payload metadata.
"""
