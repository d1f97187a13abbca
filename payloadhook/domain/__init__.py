"""A domain's XML: safe parsing (xmlsafe), payload metadata (metadata), disks and binding
(disks), the edits of attach and detach (edit), and redaction (redact).

Importing this package costs nothing: the hook imports from it only when a domain has
payload metadata.
"""
