"""Digests of the worker's own system headers, cached by path and stat.

The client does not ship headers under the compiler's default include folders; it sends their
digests, and the worker compiles against its own copies only when they are the same bytes.
Hashing /usr/include for every job would cost more than the compile, hence the cache.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading


class SystemFiles:
    """sha256 of local files, recomputed only when their stat changes."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int, int], str]] = {}

    def allowed(self, path: str) -> bool:
        """Only files under the system prefixes may be read for a client: not /etc/shadow."""
        return path.startswith(self.prefixes)

    def digest(self, path: str) -> str | None:
        """The digest of our file at `path`, or None if we have no regular file there."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            cached = self._cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        hasher = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    hasher.update(chunk)
        except OSError:
            return None
        digest = hasher.hexdigest()
        with self._lock:
            self._cache[path] = (key, digest)
        return digest
