"""The shared result cache: opaque entries by name, on disk under scratch_dir/cache, bounded.

Three namespaces share one store and one size bound: ``v1`` (pumpcc's entries, keyed by the
client's cache key), and Bazel's HTTP remote cache, ``ac`` (serialized ActionResults, keyed by
action digest) and ``cas`` (content, keyed by its own sha256).  The store only keeps bytes; the
routes in app.py decide what an upload must prove (its digest) before it is kept.

Like the blob store, the index lives in memory (rebuilt from the folder at start-up, oldest first
by mtime, so a restart keeps the cache) and least recently used entries are deleted when the
total passes ``max_bytes``.  Writes go to a temporary file and are renamed into place, so a reader
never sees half an entry.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections import OrderedDict

NAMESPACES = ("v1", "ac", "cas")
NAME = re.compile(r"[0-9a-f]{64}")


class CacheStore:
    """Bounded, LRU-evicted entries addressed by (namespace, sha256 hex name)."""

    def __init__(self, root: str, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._index: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        for ns in NAMESPACES:
            os.makedirs(os.path.join(root, ns), exist_ok=True)
        self._rebuild()

    def _rebuild(self) -> None:
        """Index what a previous run left; drop half-written temporary files."""
        found = []
        for ns in NAMESPACES:
            for sub in os.scandir(os.path.join(self.root, ns)):
                if not sub.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(sub.path):
                    if not NAME.fullmatch(entry.name):
                        os.unlink(entry.path)
                        continue
                    st = entry.stat(follow_symlinks=False)
                    found.append((st.st_mtime_ns, ns, entry.name, st.st_size))
        for _, ns, name, size in sorted(found):
            self._index[(ns, name)] = size
            self._bytes += size
        self._evict()

    def _path(self, ns: str, name: str) -> str:
        return os.path.join(self.root, ns, name[:2], name)

    def size(self, ns: str, name: str) -> int | None:
        """The entry's size if present (HEAD), counted as a use."""
        with self._lock:
            size = self._index.get((ns, name))
            if size is not None:
                self._index.move_to_end((ns, name))
            return size

    def get(self, ns: str, name: str) -> bytes | None:
        """The entry's bytes, or None; a hit makes it the most recently used."""
        with self._lock:
            present = (ns, name) in self._index
            if present:
                self._index.move_to_end((ns, name))
        data = None
        if present:
            # FileNotFoundError: evicted since the check, a miss.
            with contextlib.suppress(FileNotFoundError), open(self._path(ns, name), "rb") as f:
                data = f.read()
        with self._lock:
            if data is None:
                self.misses += 1
            else:
                self.hits += 1
        return data

    def put(self, ns: str, name: str, data: bytes) -> None:
        """Store an entry (replacing any), then evict beyond the bound."""
        folder = os.path.dirname(self._path(ns, name))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            with self._lock:
                os.replace(tmp, self._path(ns, name))
                self._bytes -= self._index.pop((ns, name), 0)
                self._index[(ns, name)] = len(data)
                self._bytes += len(data)
                self._evict(keep=(ns, name))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _evict(self, keep: tuple[str, str] | None = None) -> None:
        """Delete least recently used entries until the total fits (caller holds the lock)."""
        while self._bytes > self.max_bytes and len(self._index) > (1 if keep else 0):
            item, size = next(iter(self._index.items()))
            if item == keep:
                self._index.move_to_end(item)
                continue
            del self._index[item]
            self._bytes -= size
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(*item))

    def stats(self) -> dict[str, int]:
        """Entries, bytes and hit counts for /v1/status."""
        with self._lock:
            return {
                "count": len(self._index),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
            }
