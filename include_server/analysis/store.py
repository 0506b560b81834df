"""File system views that stay fresh across builds: stats per call, folder listings, parsed files.

The server lives for many builds, and headers change or appear while it runs.  Every ``closure()``
call takes a ``Snapshot`` (each path is stat'ed at most once per call) and the long-lived ``Store``
revalidates its caches against that snapshot: a folder listing by the folder's stat (a file that
appears changes the folder's mtime), a parsed file by (mtime_ns, size, inode).  Anything modified
within the last ``RACY_SECONDS`` is not trusted (a change inside the same timestamp tick would go
unseen) and is re-read on every call until it settles.  Whenever cached content really changes, the
store's ``epoch`` moves on, which invalidates every memo built on top of it.
"""

from __future__ import annotations

import os
import stat
import time

from include_server.analysis.lexer import Facts, scan
from include_server.analysis.watch import MISSING, Watch

RACY_SECONDS = 2.0
# Parsed files kept; beyond that the oldest half is dropped.  Measured on Boost: about 30 KB of
# server memory per parsed header, so this bounds the analysis near 600 MB; a Boost-heavy
# project reaches a few thousand headers, curl about 500.
MAX_FILES = 20_000
MAX_LISTINGS = 50_000

Sig = tuple[int, int, int, int]


def _sig(st: os.stat_result) -> Sig:
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


class Snapshot:
    """Stat results for one ``closure()`` call: each path asked once, or remembered by ``watch``.

    ``untrusted`` says that some answer could not be watched (a path through a symbolic link, no
    inotify) and ``unsettled`` that some file changed too recently to trust its stat: a result
    built from this snapshot may then not be reused without asking again.
    """

    def __init__(self, gen: int, watch: Watch) -> None:
        self.gen = gen
        self.watch = watch
        self._stat: dict[str, os.stat_result | None] = {}
        self._lstat: dict[str, os.stat_result | None] = {}
        self.listed: set[str] = set()  # folders consulted in this call, to revalidate later
        self.now_ns = time.time_ns()
        self.untrusted = not watch.active
        self.unsettled = False

    def stat(self, path: str) -> os.stat_result | None:
        """``os.stat`` (following links), None when it fails (missing, loop, permission)."""
        st = self._stat.get(path, MISSING)  # most lookups miss: cheaper than catching KeyError
        if st is not MISSING:
            return st
        st = self.watch.get("s", path)
        if st is MISSING:
            st = self._stat_watched(path)
        self._stat[path] = st
        return st

    def _stat_watched(self, path: str) -> os.stat_result | None:
        """Stat ``path`` through its lstat, taken (or remembered) under the watches.

        An lstat that finds no link is the stat itself; a link's answer depends on its target,
        wherever that is, so it is never remembered."""
        st = self.lstat(path)
        if st is not None and stat.S_ISLNK(st.st_mode):
            self.untrusted = True
            try:
                return os.stat(path)
            except (OSError, ValueError):
                return None
        if not self.watch.put("s", path, st):
            self.untrusted = True
        return st

    def cached(self, path: str) -> os.stat_result | None:
        """The stat result this call already took of ``path``, if any (no system call)."""
        return self._stat.get(path)

    def lstat(self, path: str) -> os.stat_result | None:
        """``os.lstat``: used to find symbolic links along shipped paths."""
        st = self._lstat.get(path, MISSING)
        if st is not MISSING:
            return st
        st = self.watch.get("l", path)
        if st is MISSING:
            covered = self.watch.covers(path)
            try:
                st = os.lstat(path)
            except (OSError, ValueError):
                st = None
            if not (covered and self.watch.put("l", path, st)):
                self.untrusted = True
        self._lstat[path] = st
        return st

    def is_file(self, path: str) -> bool:
        """Whether the compiler could open ``path`` as a header (folders are skipped)."""
        st = self.stat(path)
        return st is not None and not stat.S_ISDIR(st.st_mode)

    def racy(self, st: os.stat_result) -> bool:
        """Whether a change within the same timestamp tick could still go unnoticed."""
        if self.now_ns - st.st_mtime_ns < RACY_SECONDS * 1e9:
            self.unsettled = True
            return True
        return False


class Store:
    """Folder listings and parsed files, shared by all translation units and builds."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self._listings: dict[str, tuple[Sig | None, frozenset[str] | None]] = {}
        self._facts: dict[str, tuple[Sig, Facts]] = {}
        self._checked: dict[str, int] = {}  # path -> snapshot that validated it
        self.macro_index: dict[str, set[str]] = {}  # macro name -> files defining it
        self.undef_index: dict[str, set[str]] = {}  # macro name -> files undefining it
        self.epoch = 0
        self._gen = 0

    def listing(self, snap: Snapshot, folder: str) -> frozenset[str] | None:
        """The names in ``folder`` (None if it is not a readable folder), fresh for ``snap``."""
        snap.listed.add(folder)
        cached = self._listings.get(folder)
        if cached is not None and (
            self._checked.get(folder) == snap.gen or self.watch.get("d", folder) is not MISSING
        ):
            return cached[1]
        parent, _, base = folder.rpartition("/")
        if parent in self._listings and base not in ("", ".", ".."):
            # A subfolder its known parent does not list cannot exist: no stat needed.
            above = self.listing(snap, parent)
            if above is None or base not in above:
                if cached is not None and cached[1] is not None:
                    self.epoch += 1
                self._listings[folder] = (None, None)
                self._checked[folder] = snap.gen
                return None
        watched = self.watch.covers(folder, "d")
        st = snap.stat(folder)
        sig = _sig(st) if st is not None and stat.S_ISDIR(st.st_mode) else None
        if cached is not None and cached[0] == sig and (sig is None or not snap.racy(st)):
            self._checked[folder] = snap.gen
            self._remember_listing(snap, folder, watched)
            return cached[1]
        names: frozenset[str] | None = None
        if sig is not None:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:
                names = None
        if cached is not None and cached[1] != names:
            self.epoch += 1
        if len(self._listings) >= MAX_LISTINGS:
            self._trim(self._listings)
        self._listings[folder] = (sig, names)
        self._checked[folder] = snap.gen
        self._remember_listing(snap, folder, watched)
        return names

    def _remember_listing(self, snap: Snapshot, folder: str, watched: bool) -> None:
        """Keep the listing valid across calls while its folder's watch reports nothing."""
        if not (watched and self.watch.put("d", folder, True)):
            snap.untrusted = True

    def facts(self, snap: Snapshot, path: str) -> Facts | None:
        """The parsed directives of ``path``, re-read when its stat changed."""
        key = "\0" + path  # separate from folder entries in _checked
        cached = self._facts.get(path)
        if cached is not None and self._checked.get(key) == snap.gen:
            return cached[1]
        st = snap.stat(path)
        if st is None or stat.S_ISDIR(st.st_mode):
            return None
        sig = _sig(st)
        if cached is not None and cached[0] == sig and not snap.racy(st):
            self._checked[key] = snap.gen
            return cached[1]
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        facts = scan(data)
        if cached is not None and cached[1] != facts:
            self.epoch += 1
        if len(self._facts) >= MAX_FILES:
            self._trim(self._facts)
        self._facts[path] = (sig, facts)
        self._checked[key] = snap.gen
        for name in facts.macros:
            self.macro_index.setdefault(name, set()).add(path)
        for name in facts.undefs:
            self.undef_index.setdefault(name, set()).add(path)
        return facts

    def cached_facts(self, path: str) -> Facts | None:
        """The facts last read for ``path`` (the caller validated them in this call)."""
        cached = self._facts.get(path)
        return cached[1] if cached is not None else None

    def snapshot(self) -> Snapshot:
        """A fresh per-call view: everything is revalidated at most once against it."""
        self._gen += 1
        if len(self._checked) > 2 * (MAX_FILES + MAX_LISTINGS):
            self._checked.clear()
        self.watch.drain()
        return Snapshot(self._gen, self.watch)

    def _trim(self, cache: dict) -> None:
        """Bound memory on a long-lived server: drop the oldest half and start a new epoch."""
        for key in list(cache)[: len(cache) // 2]:
            del cache[key]
        self.epoch += 1
