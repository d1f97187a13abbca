"""The image directory: where images live, what each domain's prepare recorded, and gc.

- ``records``: the names the store gives files, the index of image directories, and the
  cheap ``has_record`` the hook asks at every release (imports nothing).
- ``paths``: which names the store may create or delete, and the modes it uses.
- ``dirs``: directories opened following no link, checked to be root's alone, and locked.
- ``book``: the typed record book (``Record``), validated whenever it is read.
- ``images``: ``ImageStore``: prepare, release, gc (``collect``).

Importing this package costs nothing.
"""
