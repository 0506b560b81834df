"""Each input file read, digested and zstd-compressed once per content, for every job and worker.

Entries are keyed by path and validated by ``stat`` on every use, so a header edited between two
builds (or generated in the middle of one) is read again at once, while an unchanged one costs one
``stat``.  The compressed bytes are shared by digest and bounded in total; least recently used go.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import zstandard

from include_server.analysis.store import RACY_SECONDS

_LEVEL = 3
_TIME_MACROS = re.compile(rb"__(?:DATE|TIME|TIMESTAMP)__")


@dataclass(frozen=True)
class FileEntry:
    """What a job needs to know about one input file."""

    digest: str  # sha256 of the content, hex
    size: int
    # Mentions __DATE__, __TIME__ or __TIMESTAMP__: its compile's output depends on the clock or
    # on a file's mtime, so the result cache must not serve it (include_server/cache_key.py).
    time_macros: bool = False


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


class FileStore:
    """Digests by path (stat-validated) and compressed contents by digest (size-bounded)."""

    def __init__(self, max_compressed_bytes: int = 512 << 20) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, tuple[tuple[int, int, int, int], FileEntry]] = {}
        self._compressed: OrderedDict[str, bytes] = OrderedDict()
        self._compressed_bytes = 0
        self._max = max_compressed_bytes
        self._local = threading.local()

    def entry(
        self, path: str, compress: bool = True, st: os.stat_result | None = None
    ) -> FileEntry:
        """Digest of the file at ``path`` now; reads it only when its stat changed.

        ``compress`` also prepares the upload while the content is at hand (user files); system
        headers, which workers normally have, only need their digest.  ``st`` is a stat result
        taken moments ago for this compile (by the analysis), saving a second system call.
        """
        if st is None:
            st = os.stat(path)
        key = _stat_key(st)
        cached = self._by_path.get(path)
        # A file written twice within one timestamp tick keeps its stat: trust the remembered
        # digest only once the file has been quiet for a while (as the analysis does).
        settled = time.time_ns() - st.st_mtime_ns > RACY_SECONDS * 1e9
        if cached is not None and cached[0] == key and settled:
            return cached[1]
        with open(path, "rb") as f:
            data = f.read()
        entry = FileEntry(
            hashlib.sha256(data).hexdigest(), len(data), _TIME_MACROS.search(data) is not None
        )
        with self._lock:
            self._by_path[path] = (key, entry)
            if len(self._by_path) > 1_000_000:  # bound a server that lives for months
                self._by_path.clear()
        if compress:
            self.remember(entry.digest, data)
        return entry

    def compressed(self, path: str, entry: FileEntry) -> bytes:
        """The zstd frame of the file's content; compresses on first use of this content."""
        with self._lock:
            data = self._compressed.get(entry.digest)
            if data is not None:
                self._compressed.move_to_end(entry.digest)
                return data
        with open(path, "rb") as f:
            raw = f.read()
        if hashlib.sha256(raw).hexdigest() != entry.digest:
            raise FileChangedError(path)
        return self.remember(entry.digest, raw)

    def remember(self, digest: str, raw: bytes) -> bytes:
        """The zstd frame of ``raw`` (whose sha256 is ``digest``), compressed once and kept."""
        with self._lock:
            data = self._compressed.get(digest)
            if data is not None:
                return data
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(level=_LEVEL)
        data = compressor.compress(raw)
        with self._lock:
            self._compressed[digest] = data
            self._compressed_bytes += len(data)
            while self._compressed_bytes > self._max and len(self._compressed) > 1:
                _, old = self._compressed.popitem(last=False)
                self._compressed_bytes -= len(old)
        return data

    def memory(self) -> dict[str, int]:
        """Sizes for the stats: how many files are known and how much compressed data is held."""
        with self._lock:
            return {
                "files": len(self._by_path),
                "blobs": len(self._compressed),
                "compressed_bytes": self._compressed_bytes,
            }


class FileChangedError(OSError):
    """A file changed between its digest and its upload; the compile falls back locally."""
