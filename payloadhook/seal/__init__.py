"""Sealed content (README, "Sealed content"): file contents encrypted and authenticated under a
host key, bound to one domain's UUID and one file name.

``keys`` holds the key directory (``payloadhook key new``, ``key list``); ``blob`` seals and
opens one file's content. Importing this package costs nothing: cryptography is imported
only where sealed content is sealed or opened.
"""
