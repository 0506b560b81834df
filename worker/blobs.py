"""Content-addressed store of job inputs, on disk under scratch_dir/blobs.

Blobs are kept decompressed so a job root can hardlink them instead of writing each file again;
the client sends a file once per worker and later jobs only name its digest.  The index lives in
memory (rebuilt from the directory at start-up, so a restart keeps the cache) and is bounded:
least recently used blobs are deleted when the total passes `max_bytes`.  A job whose blob is
evicted between the check and the hardlink sees FileNotFoundError and answers missing_blobs, which
the client already handles, so eviction needs no pinning.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
from collections import OrderedDict

import zstandard

from worker.errors import bad_request

DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class BlobStore:
    """Bounded, verified, LRU-evicted blobs addressed by the sha256 of their content."""

    def __init__(self, root: str, max_bytes: int, max_blob_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_blob_bytes = max_blob_bytes
        self._lock = threading.Lock()
        self._index: OrderedDict[str, int] = OrderedDict()  # digest -> size, oldest first
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        os.makedirs(root, exist_ok=True)
        self._rebuild()

    def _rebuild(self) -> None:
        """Index what a previous run left, oldest first by mtime; drop half-written temp files."""
        found = []
        for sub in os.scandir(self.root):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                if entry.name.startswith(".") or not DIGEST.fullmatch(entry.name):
                    os.unlink(entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
                found.append((st.st_mtime_ns, entry.name, st.st_size))
        for _, digest, size in sorted(found):
            self._index[digest] = size
            self._bytes += size
        self._evict()

    def path(self, digest: str) -> str:
        return os.path.join(self.root, digest[:2], digest)

    def missing(self, digests: set[str]) -> list[str]:
        """The digests not in the store; the present ones count as recently used."""
        absent = []
        with self._lock:
            for digest in digests:
                if digest in self._index:
                    self._index.move_to_end(digest)
                    self.hits += 1
                else:
                    absent.append(digest)
                    self.misses += 1
        return sorted(absent)

    def add(self, digest: str, compressed: bytes) -> None:
        """Decompress, verify against the digest and store one blob (400 if it does not match)."""
        with self._lock:
            if digest in self._index:
                self._index.move_to_end(digest)
                return
        if not DIGEST.fullmatch(digest):
            raise bad_request(f"blob digest {digest[:80]!r} is not a sha256 hex digest")
        if not compressed:
            raise bad_request(f"blob {digest} is empty, not a zstd frame")
        directory = os.path.dirname(self.path(digest))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp")
        try:
            size = self._write_verified(fd, digest, compressed)
            with self._lock:
                os.replace(tmp, self.path(digest))
                if digest not in self._index:
                    self._index[digest] = size
                    self._bytes += size
                self._evict(keep=digest)
        except BaseException:
            os.unlink(tmp)
            raise

    def _write_verified(self, fd: int, digest: str, compressed: bytes) -> int:
        """Stream-decompress into fd, bounded by max_blob_bytes, and check the sha256."""
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                reader = zstandard.ZstdDecompressor().stream_reader(compressed)
                while chunk := reader.read(_CHUNK):
                    size += len(chunk)
                    if size > self.max_blob_bytes:
                        raise bad_request(f"blob {digest} is larger than {self.max_blob_bytes} B")
                    hasher.update(chunk)
                    out.write(chunk)
        except zstandard.ZstdError as e:
            raise bad_request(f"blob {digest} is not valid zstd: {e}") from None
        if hasher.hexdigest() != digest:
            raise bad_request(f"blob {digest} does not match its content's sha256")
        return size

    def _evict(self, keep: str | None = None) -> None:
        """Delete least recently used blobs until the total fits (caller holds the lock)."""
        while self._bytes > self.max_bytes and len(self._index) > (1 if keep else 0):
            digest, size = next(iter(self._index.items()))
            if digest == keep:
                self._index.move_to_end(digest)
                continue
            del self._index[digest]
            self._bytes -= size
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(digest))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"count": len(self._index), "bytes": self._bytes, "max_bytes": self.max_bytes}
