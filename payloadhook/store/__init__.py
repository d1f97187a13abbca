"""The image directory: where images live, written atomically, and the records of what each
domain's prepare built (records), so that release and gc remove exactly that (images).

Importing this package costs nothing: the hook asks ``records.has_record`` at every release.
"""
