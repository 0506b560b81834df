"""Static include analysis: which files a worker needs for one compile, without preprocessing.

``Analyzer.closure(compile)`` answers with a superset of the files the real preprocessor opens
(every branch of every conditional is followed but those whose condition is decided for the whole
compile, computed includes are expanded against every possible definition), split into user files
to ship and system files the worker verifies.  One ``Analyzer`` lives as long as the server; its
caches are revalidated by stat on every call, so headers edited or generated between (or during)
builds are seen at once.

Modules: ``lexer`` (directives of one file), ``conditions`` (the ``#if`` conditions a compile
cannot read two ways), ``macros`` (computed includes), ``search`` (the compiler's search order),
``store`` (fresh stat/listing/parse caches), ``walk`` (the fixed-point traversal), ``paths``
(normalisation and symbolic links for the worker's tree).
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass, field

from adapter.command import Compile
from include_server.analysis.paths import Links, safe_norm
from include_server.analysis.search import Context, build_context, context_key, find
from include_server.analysis.store import Snapshot, Store
from include_server.analysis.walk import Memo, Node, Walk
from include_server.analysis.watch import Watch

MAX_CONTEXTS = 1000
MAX_CLOSURES = 20_000


@dataclass
class Closure:
    """What one compile needs on the worker (see ARCHITECTURE.md)."""

    files: list[str]
    system_files: list[str]
    dirs: list[str]
    symlinks: list[tuple[str, str]]
    absent: list[str]
    gave_up: str | None
    system_absent: list[str] = field(default_factory=list)  # absent paths in system folders
    # The stat results the analysis took of these files, so the file store need not stat again.
    stats: dict[str, os.stat_result] = field(default_factory=dict)
    # Computed includes answered by the spelled-names fallback ("file:line"): not a proven superset.
    fallbacks: list[str] = field(default_factory=list)


class Analyzer:
    """Holds every cache; one per long-lived server; ``closure()`` may be called from threads."""

    def __init__(self, watch: bool = True) -> None:
        self._lock = threading.Lock()
        self._store = Store(Watch(enabled=watch))
        # (context, source) -> (the watch's change count and store epoch it holds for, result)
        self._closures: dict[tuple[int, str], tuple[tuple[int, int], Closure]] = {}
        self._memo = Memo()
        self._contexts: dict[tuple, tuple[int, Context]] = {}
        self._consulted: dict[int, set[str]] = {}  # folders each context's resolutions listed
        self._next_id = 0

    def closure(self, compile: Compile) -> Closure:
        """The files, folders and links the worker needs to run ``compile``."""
        with self._lock:
            snap = self._store.snapshot()
            ctx_id, ctx = self._context(compile, snap)
            source = os.path.join(compile.cwd, compile.source)
            # Nothing the last answer rests on changed (inotify saw no event, no file settling):
            # it is still the answer, without a single system call.
            stamp = (self._store.watch.changes, self._store.epoch)
            remembered = self._closures.get((ctx_id, source))
            if remembered is not None and remembered[0] == stamp:
                return remembered[1]
            consulted = self._consulted.setdefault(ctx_id, set())
            for folder in consulted:  # a header appearing anywhere we looked moves the epoch
                self._store.listing(snap, folder)
            self._memo.check(self._store.epoch)
            walk = Walk(self._store, self._memo, ctx, ctx_id, snap)
            gave_up = None if snap.is_file(source) else f"cannot read the source: {source}"
            walk.run(self._forced(walk, compile, ctx) + [(source, -1)])
            consulted |= snap.listed
            result = self._result(walk, compile, ctx, snap, gave_up or walk.gave_up)
            settled = not (snap.untrusted or snap.unsettled or result.gave_up)
            if settled and stamp == (self._store.watch.changes, self._store.epoch):
                if len(self._closures) >= MAX_CLOSURES:
                    self._closures.clear()
                self._closures[(ctx_id, source)] = (stamp, result)
            return result

    def _context(self, compile: Compile, snap: Snapshot) -> tuple[int, Context]:
        """The search context of a compile, built once per distinct set of options."""
        key = context_key(compile)
        found = self._contexts.get(key)
        if found is not None and not found[1].current(snap):
            found = None  # a new id: the memos of the old chain do not apply to the new one
        if found is None:
            if len(self._contexts) >= MAX_CONTEXTS:
                self._contexts.clear()
                self._consulted.clear()
                self._closures.clear()
                self._memo.edges.clear()
            self._next_id += 1
            found = (self._next_id, build_context(compile, snap))
            self._contexts[key] = found
        return found

    def _forced(self, walk: Walk, compile: Compile, ctx: Context) -> list[Node]:
        """-include / -imacros: the cwd first, then the quote chain (not the includer folder)."""
        nodes: list[Node] = []
        # GCC reads <stdc-predef.h> before anything else (clang does not: a harmless extra).
        bracket = ctx.chain[ctx.bracket_start :]
        predef, index = find(self._store, walk.snap, bracket, "stdc-predef.h")
        if predef:
            nodes.append((predef, ctx.bracket_start + index))
        for value in ctx.forced:
            path = os.path.join(compile.cwd, value)
            if walk.snap.is_file(path):
                nodes.append((path, -1))
                continue
            found, index = find(self._store, walk.snap, ctx.chain, value)
            if found:
                nodes.append((found, index))
        return nodes

    def _result(
        self, walk: Walk, compile: Compile, ctx: Context, snap: Snapshot, gave_up: str | None
    ) -> Closure:
        """Split the reached files into shipped and system ones; add folders and links."""
        system_prefixes = tuple(d.rstrip("/") + "/" for d in ctx.system)
        bases: dict[str, None] = {}
        links = Links(snap)
        files: dict[str, None] = {}
        system: dict[str, None] = {}
        for path in list(dict.fromkeys(p for p, _ in walk.visited)) + list(walk.probed):
            if path not in walk.paths and path not in walk.probed:
                continue  # reached a name that is not a readable file: nothing to ship
            if path.startswith(system_prefixes):
                system[path] = None
                continue
            norm = safe_norm(snap, path, bases)
            files[norm] = None
            links.add(norm)
        dirs: dict[str, None] = {}
        for folder in (compile.cwd, *ctx.chain):
            st = snap.stat(folder)
            if st is not None and stat.S_ISDIR(st.st_mode):
                norm = safe_norm(snap, folder, bases)
                dirs[norm] = None
                if not norm.startswith(system_prefixes):
                    links.add(norm, is_dir=True)
        dirs.update(bases)
        dirs.update(links.real_dirs)
        return Closure(
            files=list(files),
            system_files=list(system),
            dirs=list(dirs),
            symlinks=list(links.links),
            absent=list(walk.absent),
            gave_up=gave_up,
            system_absent=[p for p in walk.absent if p.startswith(system_prefixes)],
            stats={p: st for p in (*files, *system) if (st := snap.cached(p)) is not None},
            fallbacks=[where for where, fell in walk.fallbacks.items() if fell],
        )
