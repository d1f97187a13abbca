"""The names the project gives the files it writes: how long one may be, and what a file is
called while it is written (one scheme, for the store's images, records and index, and for
every other atomic write). Importable at no cost: the hook's ``release`` reads it.

A file being written is ``.<its name>.payloadhook-tmp`` (a hash in place of a name that
would pass NAME_MAX), renamed onto its name once complete: a writer that names it so must
hold a lock (the store does). A writer without one takes ``.<24 random hex
digits>.payloadhook-tmp``. Either way the name starts with a dot and ends in
:data:`TMP_SUFFIX`, so a leftover one is told apart from an image (store/paths.py).
"""

from __future__ import annotations

#: The longest file name (in bytes) Linux file systems take: every name given here fits.
NAME_MAX = 255
#: Files being written carry this suffix until renamed.
TMP_SUFFIX = ".payloadhook-tmp"
#: The network seed's records in image_dir (payloadhook/seed/record.py): a domain's seed,
#: written at prepare, and its taps, at started; no disk source or fw_cfg file may end so.
SEED_SUFFIX = "-network.seed"
TAPS_SUFFIX = "-network.taps"


def tmp_name(name: str) -> str:
    """The name ``name`` has while it is written: never over NAME_MAX, whatever ``name``."""
    tmp = "." + name + TMP_SUFFIX
    if len(tmp.encode("utf-8", "surrogateescape")) <= NAME_MAX:
        return tmp
    import hashlib
    return ".h-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest() + TMP_SUFFIX


def random_tmp_name() -> str:
    """A fresh temporary name, short whatever the target's, for a writer without a lock."""
    import posix  # not os: release imports this module, and without site os is not loaded
    return "." + posix.urandom(12).hex() + TMP_SUFFIX
