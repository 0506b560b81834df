"""The result cache: entries, the local level on the workstation, and the lookup/store order.

An entry is what a compile left behind, in the result frame of worker/wire.py (zstd, one file):
exit status, stdout, stderr, the object and the dependency file as the compiler wrote them, plus
the dependency targets and the compiler family so that a hit for another object name rewrites the
.d's first rule (``worker.rewrite.retarget_depfile``).  Only exit status 0 is stored.  An entry
made under a base folder (``cache_key.base_folder``) records it, and whether the object holds it:
a hit from another checkout rewrites the base in the .d, stdout and stderr, and an object that
holds its base (*pinned*) serves only that base.  A pinned entry is also kept under a key of its
own base (``CacheKey.pinned``), so two checkouts that take turns each keep theirs.

The local level is a folder of entries named by key (``DIR/ab/<key>``), bounded by ``max_size``:
least recently used entries go first.  Use is the file's mtime (touched on a hit), so the order
survives a restart of the local server; the index is rebuilt from the folder on first use.
Several local servers may share a folder: an entry another one evicted is simply a miss.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from adapter.command import Compile
from adapter.config import Config
from include_server import shared_cache
from include_server.cache_key import CacheKey
from include_server.dispatch import Dispatcher, WorkerState
from include_server.stats import Stats
from worker import wire
from worker.rewrite import retarget_depfile

_FORMAT = 1


@dataclass
class Hit:
    """A compile served from the cache; shaped like dispatch.Remote for the reply path."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    outputs: dict[str, bytes]
    worker: str  # where it came from: "local cache" or "shared cache on URL"
    times: dict = field(default_factory=dict)


class PinnedElsewhere(Exception):
    """The entry's object names another base folder: it cannot serve this one."""


def encode_entry(key: CacheKey, compile: Compile, result) -> tuple[bytes, bool]:
    """The entry for a successful compile (``result``: a dispatch.Remote), and whether the
    object names its base folder (pinned)."""
    files = [("object", result.outputs[compile.output])]
    if compile.dep_file:
        files.append(("depfile", result.outputs[compile.dep_file]))
    extra = {"format": _FORMAT, "family": key.family}
    pinned = False
    if key.base is not None:
        pinned = key.base.encode("utf-8", "surrogateescape") in files[0][1]
        extra.update(base=key.base, pinned=pinned)
    data = wire.encode_result(result.exit_code, result.stdout, result.stderr, files, extra, level=3)
    return data, pinned


def decode_entry(data: bytes, key: CacheKey, compile: Compile, where: str) -> Hit | None:
    """The outputs for this compile's names, or None for an entry that does not fit it.

    Raises PinnedElsewhere for an entry whose object names another base folder.
    """
    try:
        head, out, err, files = wire.decode_result(data)
    except wire.WireError:
        return None
    if head.get("format") != _FORMAT or "object" not in files:
        return None
    base = head.get("base")
    if base != key.base:
        if base is None or key.base is None:
            return None
        if head.get("pinned", True):
            raise PinnedElsewhere
        out, err, files = _rebased((out, err, files), base, key.base)
    outputs = {compile.output: files["object"]}
    if compile.dep_file:
        dep = files.get("depfile")
        if dep is None:
            return None
        outputs[compile.dep_file] = _retarget(dep, key)
    return Hit(head.get("exit", 0), out, err, outputs, where)


def _rebased(texts: tuple[bytes, bytes, dict[str, bytes]], old: str, new: str):
    """stdout, stderr and the dependency file with folder ``old`` spelled as ``new``.

    The same uniform substitution the key made (``cache_key.compute``), so what a compile in
    the new folder would have printed and written.
    """
    was, now = (p.encode("utf-8", "surrogateescape") for p in (old, new))
    out, err, files = texts
    files = dict(files)
    if "depfile" in files:
        files["depfile"] = files["depfile"].replace(was, now)
    return out.replace(was, now), err.replace(was, now), files


def _retarget(dep: bytes, key: CacheKey) -> bytes:
    """The dependency file for this compile's target; untouched when it already names it."""
    targets = key.targets.render()
    head = b" ".join(targets) + b":"
    if dep.startswith(head) and dep[len(head) : len(head) + 1] in (b" ", b"\n"):
        return dep  # the usual case (same object name): no need to re-wrap the rule
    return retarget_depfile(dep, targets, key.family)


def _read(
    get: Callable[[str], bytes | None], key: CacheKey, compile: Compile, where: str
) -> tuple[Hit | None, str, bytes | None]:
    """(hit, entry name, entry) from one level: the entry under the key, or, when that one is
    pinned to another base folder, the one this base left under its own key."""
    for name in (key.key, key.pinned):
        data = get(name)
        try:
            return (decode_entry(data, key, compile, where) if data else None), name, data
        except PinnedElsewhere:
            continue
    return None, key.key, None


class LocalCache:
    """Entries on disk under one folder, bounded and least-recently-used evicted."""

    def __init__(self, root: str, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._index: OrderedDict[str, int] | None = None  # key -> size, oldest first
        self._bytes = 0

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key[:2], key)

    def _ensure_index(self) -> OrderedDict[str, int]:
        """Index what is on disk, oldest use first (caller holds the lock)."""
        if self._index is not None:
            return self._index
        found = []
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        for sub in os.scandir(self.root):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                if entry.name.startswith("."):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)  # a write a crash interrupted
                    continue
                st = entry.stat(follow_symlinks=False)
                found.append((st.st_mtime_ns, entry.name, st.st_size))
        self._index = OrderedDict((name, size) for _, name, size in sorted(found))
        self._bytes = sum(self._index.values())
        return self._index

    def get(self, key: str) -> bytes | None:
        """The entry, marked as just used; None when absent (or evicted by another server)."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
            os.utime(path)
        except OSError:
            with self._lock:
                self._forget(key)
            return None
        with self._lock:
            index = self._ensure_index()
            if key in index:
                index.move_to_end(key)
            else:
                index[key] = len(data)
                self._bytes += len(data)
        return data

    def put(self, key: str, data: bytes) -> None:
        """Store an entry atomically, then evict the least recently used beyond the bound."""
        folder = os.path.dirname(self._path(key))
        with self._lock:
            self._ensure_index()
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with self._lock:
            index = self._ensure_index()
            self._forget(key)
            index[key] = len(data)
            self._bytes += len(data)
            self._evict(keep=key)

    def _forget(self, key: str) -> None:
        if self._index is not None and key in self._index:
            self._bytes -= self._index.pop(key)

    def _evict(self, keep: str) -> None:
        """Delete least recently used entries until the folder fits (caller holds the lock)."""
        index = self._index
        assert index is not None
        while self._bytes > self.max_bytes and len(index) > 1:
            key, size = next(iter(index.items()))
            if key == keep:
                index.move_to_end(key)
                continue
            del index[key]
            self._bytes -= size
            with contextlib.suppress(OSError):
                os.unlink(self._path(key))

    def usage(self) -> dict[str, int]:
        """Entries and bytes held, for the stats."""
        with self._lock:
            index = self._ensure_index()
            return {"entries": len(index), "bytes": self._bytes, "max_bytes": self.max_bytes}


def default_dir(env: dict[str, str]) -> str:
    """``$XDG_CACHE_HOME/pumpcc``, else ``~/.cache/pumpcc`` (the compile's environment)."""
    base = env.get("XDG_CACHE_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "pumpcc")


class ResultCache:
    """Both levels in order: local, then the workers' shared cache; counts each outcome."""

    def __init__(self, stats: Stats, dispatcher: Dispatcher) -> None:
        self._stats = stats
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._locals: dict[tuple[str, int], LocalCache] = {}

    @staticmethod
    def enabled(config: Config, env: dict[str, str]) -> bool:
        """Off with ``PUMPCC_CACHE=0`` or ``cache: {enabled: false}``."""
        return config.cache.enabled and env.get("PUMPCC_CACHE", "1") != "0"

    def local(self, config: Config, env: dict[str, str]) -> LocalCache:
        """The local level for this configuration (one per folder and bound)."""
        folder = config.cache.dir or default_dir(env)
        with self._lock:
            found = self._locals.get((folder, config.cache.max_size))
            if found is None:
                found = LocalCache(folder, config.cache.max_size)
                self._locals[(folder, config.cache.max_size)] = found
        return found

    def lookup(self, key: CacheKey, compile: Compile, config: Config) -> Hit | None:
        """The cached outputs of this compile, local level first; None on a miss at both."""
        hit, _, _ = _read(self.local(config, compile.env).get, key, compile, "local cache")
        if hit is not None:
            self._stats.add(cache_hits=1, cache_local_hits=1)
            return hit
        self._stats.add(cache_local_misses=1)
        worker = self._home(key, config)
        if worker is None:
            return None

        def fetch(name: str) -> bytes | None:
            return shared_cache.fetch(worker, name, config.connect_timeout)

        hit, name, data = _read(fetch, key, compile, f"shared cache on {worker.url}")
        if hit is None:
            self._stats.add(cache_remote_misses=1)
            return None
        self._stats.add(cache_hits=1, cache_remote_hits=1)
        if not config.cache.read_only:
            for local_name in {key.key, name}:
                self._put_local(local_name, data, config, compile.env)
        return hit

    def store(self, key: CacheKey, compile: Compile, result: object, config: Config) -> None:
        """Keep a successful compile at both levels (unless read-only)."""
        if config.cache.read_only or result.exit_code != 0:  # type: ignore[attr-defined]
            return
        try:
            data, pinned = encode_entry(key, compile, result)
        except KeyError:  # the compiler wrote no object or no .d: nothing worth serving
            return
        names = (key.key, key.pinned) if pinned else (key.key,)
        worker = self._home(key, config)
        for name in names:
            self._put_local(name, data, config, compile.env)
            if worker is not None:
                stored = shared_cache.upload(worker, name, data, config.connect_timeout)
                self._stats.add(cache_remote_stores=int(stored))

    def _put_local(self, name: str, data: bytes, config: Config, env: dict[str, str]) -> None:
        try:
            self.local(config, env).put(name, data)
        except OSError as e:
            print(f"pumpcc: result cache: cannot write {e.filename}: {e.strerror}", flush=True)

    def _home(self, key: CacheKey, config: Config) -> WorkerState | None:
        if not config.cache.shared:
            return None
        return shared_cache.home(key.key, self._dispatcher.workers(config))
