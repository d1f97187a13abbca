"""The service's reading of the hook's records in image_dir: which domains are served now.

Read per request: a domain whose release removed its records is no longer served, at once.
Each file is opened without following links, must be a regular file of root's (the
service's user's) and within its size bound; a parsed file is kept while its inode, size
and modification time stay the same (the store replaces files by renaming: a new inode).
"""

from __future__ import annotations

import os
import stat

from .identity import Served
from .record import MAX_SEED, MAX_TAPS, SEED_SUFFIX, TAPS_SUFFIX, Seed, Tap, read_seed, read_taps


class Records:
    def __init__(self, image_dir: str) -> None:
        self.image_dir = image_dir
        self._taps: dict[str, tuple[tuple[int, int, int, int], tuple[str, tuple[Tap, ...]] | None]] = {}
        self._seeds: dict[str, tuple[tuple[int, int, int, int], Seed | None]] = {}

    def _read(self, name: str, limit: int, known: tuple[int, int, int, int] | None = None
              ) -> tuple[tuple[int, int, int, int], bytes] | None:
        """The file's identity and content (b"" when its identity is ``known``: unchanged)."""
        try:
            fd = os.open(f"{self.image_dir}/{name}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > limit:
                return None
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if key == known:
                return key, b""
            chunks, got = [], 0
            while got <= st.st_size:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            return key, b"".join(chunks)
        finally:
            os.close(fd)

    def served(self) -> list[Served]:
        """Every domain with a seed and taps recorded, as the taps file names it."""
        try:
            names = [entry.name for entry in os.scandir(self.image_dir)
                     if entry.name.endswith(TAPS_SUFFIX) and not entry.name.startswith(".")]
        except OSError:
            return []
        found = []
        for name in names:
            domain = name[:-len(TAPS_SUFFIX)]
            read = self._cached_taps(name)
            if read is not None:
                uuid, taps = read
                found.append(Served(domain=domain, uuid=uuid, seed_path=domain + SEED_SUFFIX, taps=taps))
        for gone in set(self._taps) - set(names):
            del self._taps[gone]
        return found

    def _cached_taps(self, name: str) -> tuple[str, tuple[Tap, ...]] | None:
        cached = self._taps.get(name)
        read = self._read(name, MAX_TAPS, cached[0] if cached is not None else None)
        if read is None:
            return None
        key, data = read
        if cached is not None and cached[0] == key:
            return cached[1]
        import json
        try:
            uuid = json.loads(data).get("uuid")
        except (ValueError, AttributeError):
            uuid = None
        value = (uuid, read_taps(data, uuid)) if isinstance(uuid, str) else None
        self._taps[name] = (key, value)
        return value

    def seed(self, served: Served) -> Seed | None:
        """The served domain's seed, if it is still recorded, for the same domain (UUID)."""
        cached = self._seeds.get(served.seed_path)
        read = self._read(served.seed_path, MAX_SEED, cached[0] if cached is not None else None)
        if read is None:
            self._seeds.pop(served.seed_path, None)
            return None
        key, data = read
        seed = cached[1] if cached is not None and cached[0] == key else read_seed(data)
        self._seeds[served.seed_path] = (key, seed)
        if seed is None or seed.uuid != served.uuid or seed.domain != served.domain:
            return None
        return seed
