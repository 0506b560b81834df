"""The closure walk of one translation unit: follow every include to a fixed point.

A node is a file as the compiler opens it plus the chain position it was found at (only kept for
files that use ``#include_next``, where the position decides what comes next).  Each node's
resolved literal includes are memoised per search context and store epoch, so a header seen by an
earlier translation unit costs a dictionary lookup.  Computed includes are evaluated against every
definition of each macro in the files reached so far; files they add may define more, so the walk
repeats until nothing new appears.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass

from include_server.analysis.conditions import Conditions, Decision
from include_server.analysis.lexer import Directive, Facts, Frame, Macro
from include_server.analysis.macros import Expander, Overflow, header_names, spelled_names
from include_server.analysis.search import Context, find
from include_server.analysis.store import Snapshot, Store

Node = tuple[str, int]
EXPENSIVE = 20_000  # expansion steps past which a computed include waits for a quiet round
Places = tuple[tuple[Frame, ...], ...]  # the frames of every place a directive appears at
MAX_EVAL_VARIANTS = 16  # memoised evaluations kept per computed include
# Where the includes leading to a target are (their file, its facts, the frames of each place),
# None for an include outside every conditional group: it needs no decision.
Include = tuple[Node, Facts, Places]


@dataclass(frozen=True)
class Edges:
    """What one file leads to under one search context."""

    links: tuple[tuple[Node, Include | None], ...]  # each target, the last included first
    computed: tuple[Directive, ...]
    computed_places: tuple[Places, ...]
    probed: tuple[str, ...]  # files found by literal __has_include: shipped, not walked
    absent: tuple[str, ...]  # paths a literal __has_include looked for and did not find
    computed_probes: tuple[Directive, ...]
    rare: bool  # any computed include or probe (most files have none: nothing more to note)


@dataclass
class Evaluation:
    """A computed include's header names, valid while the macros it consulted are unchanged."""

    consulted: dict[str, frozenset[Macro]]
    guards: dict[str, bool]  # include guards relied on: whether a file reached undefines them
    names: frozenset[tuple[str, str]]
    overflowed: bool
    steps: int  # what the expansion cost


class Memo:
    """Per-server memos on top of the store, dropped whenever the store's epoch moves."""

    def __init__(self) -> None:
        self.epoch = -1
        self.edges: dict[tuple[int, Node], tuple[Facts, Edges]] = {}
        self.evaluations: dict[tuple[str, ...], list[Evaluation]] = {}
        self.decisions: dict[int, dict[str, list[Decision]]] = {}  # per context (command line)

    def check(self, epoch: int) -> None:
        """Forget resolutions made against an older view of the file system."""
        if epoch != self.epoch:
            self.edges.clear()
            self.decisions.clear()
            self.epoch = epoch


class Walk:
    """One ``closure()`` call's traversal."""

    def __init__(self, store: Store, memo: Memo, ctx: Context, ctx_id: int, snap: Snapshot):
        self.store, self.memo, self.ctx, self.ctx_id, self.snap = store, memo, ctx, ctx_id, snap
        self.visited: dict[Node, None] = {}
        self.paths: set[str] = set()
        self.probed: dict[str, None] = {}
        self.absent: dict[str, None] = {}
        self.computed: dict[tuple[Node, Directive], tuple[Facts, Places]] = {}
        # Includes under branches no compile takes, as last decided: (file, target) -> places.
        self.deferred: dict[tuple[Node, Node], tuple[Facts, Places]] = {}
        self.computed_probes: dict[tuple[Node, Directive], None] = {}
        self.gave_up: str | None = None
        # Computed includes ("file:line") whose last evaluation fell back to spelled names.
        self.fallbacks: dict[str, bool] = {}
        # Nodes to visit, and includes to decide: (target, None) or (target, (includer, places)).
        self._stack: list[tuple[Node, Include | None]] = []
        self._lookup_cache: dict[str, tuple[Macro, ...]] = {}
        self._conditions = self._decider()

    def run(self, roots: list[Node]) -> None:
        """Walk from the roots until no computed include names a file not yet reached."""
        with _collector_paused():
            self._run(roots)
        # The conditions hold this walk's methods: let go of them, so that the walk is freed once
        # done with, not at the next full collection (a cycle through a large heap).
        del self._conditions

    def _run(self, roots: list[Node]) -> None:
        for node in reversed(roots):  # the first on top
            self._push(node)
        while True:
            self._drain()
            if not self._evaluate_round():
                break
        for node, directive in self.computed_probes:
            for form, name in self._names(node, directive):
                literal = Directive(directive.kind, form, name, (), directive.line)
                hit, misses = self._probe(node, literal)
                self.probed.update(dict.fromkeys(hit))
                self.absent.update(dict.fromkeys(misses))

    def _push(self, node: Node) -> None:
        if node not in self.visited:
            self._stack.append((node, None))

    def _drain(self) -> None:
        """Depth-first over literal includes, in the order a compile reads them.

        An include is decided when the walk gets to it, after the files included before it in
        its file (and everything they include), as a compile would: most conditions test macros
        that an earlier include defines (a configuration header, glibc's <features.h>), and
        decided before that file is reached they would wrongly read as decided false, to be
        taken back only at the end of the round.  A file is marked reached when it comes off
        the stack, so the walk lists files in the order a compile first opens them.
        """
        stack = self._stack
        visited = self.visited
        while stack:
            node, include = stack.pop()
            if node in visited:
                continue
            if include is not None:
                includer, facts, places = include
                if not self._taken(facts, places):
                    self.deferred[(includer, node)] = (facts, places)
                    continue
            visited[node] = None
            links = self._visit(node)
            stack += links

    def _visit(self, node: Node) -> tuple[tuple[Node, Include | None], ...]:
        """Reach one file: note its computed includes and probes; its literal includes are
        returned (``Edges.links``, resolved once per context and node)."""
        facts = self.store.facts(self.snap, node[0])
        if facts is None:
            return ()
        self.paths.add(node[0])
        if not facts.uses_next:
            node = (node[0], -1)
        cached = self.memo.edges.get((self.ctx_id, node))
        if cached is not None and cached[0] is facts:
            edges = cached[1]
        else:  # first sight, or the file changed during this very walk
            edges = self._edges(node, facts)
            self.memo.edges[(self.ctx_id, node)] = (facts, edges)
        if edges.rare:
            self._note_rare(node, facts, edges)
        return edges.links

    def _note_rare(self, node: Node, facts: Facts, edges: Edges) -> None:
        """Note a file's computed includes and probes."""
        for directive, places in zip(edges.computed, edges.computed_places, strict=True):
            self.computed[(node, directive)] = (facts, places)
        for directive in edges.computed_probes:
            self.computed_probes[(node, directive)] = None
        for path in edges.probed:
            self.probed[path] = None
        for path in edges.absent:
            self.absent[path] = None

    def _taken(self, facts: Facts, places: Places) -> bool:
        """Whether a compile can reach one of the places (see ``conditions``)."""
        if len(places) == 1:  # nearly always: no generator needed
            return self._conditions.possible(facts.groups, places[0])
        return any(self._conditions.possible(facts.groups, frames) for frames in places)

    def _edges(self, node: Node, facts: Facts) -> Edges:
        """Resolve a file's literal includes and probes; set its computed ones aside."""
        targets: dict[Node, list[tuple[Frame, ...]]] = {}
        computed: list[Directive] = []
        computed_places: list[Places] = []
        for directive, places in zip(facts.includes, facts.places, strict=True):
            if not directive.form:
                computed.append(directive)
                computed_places.append(tuple(places))
                continue
            for target in self.resolve(node, directive):
                known = targets.setdefault(target, [])
                known.extend(frames for frames in places if frames not in known)
        probed: list[str] = []
        absent: list[str] = []
        computed_probes: list[Directive] = []
        for directive in facts.probes:
            if directive.form:
                hit, misses = self._probe(node, directive)
                probed.extend(hit)
                absent.extend(misses)
            else:
                computed_probes.append(directive)
        return Edges(
            tuple(
                (target, None if () in places else (node, facts, tuple(places)))
                for target, places in reversed(targets.items())
            ),
            tuple(computed),
            tuple(computed_places),
            tuple(dict.fromkeys(probed)),
            tuple(dict.fromkeys(absent)),
            tuple(computed_probes),
            bool(computed or facts.probes),
        )

    def resolve(self, node: Node, directive: Directive) -> list[Node]:
        """Where the compiler finds a header name (a superset where the position is unknown)."""
        name = directive.name
        if not name:
            return []
        if name.startswith("/"):
            return [(name, -1)] if self.snap.is_file(name) else []
        chain = self.ctx.chain
        index = node[1]
        if directive.is_next and index >= 0:
            return self._search(chain, index + 1, name)
        found: list[Node] = []
        if directive.form == '"':
            path, _ = find(self.store, self.snap, (os.path.dirname(node[0]),), name)
            if path:
                found.append((path, -1))
        if not found or directive.is_next:
            start = 0 if directive.form == '"' or directive.is_next else self.ctx.bracket_start
            found.extend(self._search(chain, start, name))
        return found

    def _search(self, chain: tuple[str, ...], start: int, name: str) -> list[Node]:
        path, index = find(self.store, self.snap, chain[start:], name)
        return [(path, start + index)] if path else []

    def _probe(self, node: Node, directive: Directive) -> tuple[list[str], list[str]]:
        """``__has_include``: ship what exists, and list every place looked at before it."""
        name = directive.name
        if name.startswith("/"):
            places = [name]
        else:
            chain = self.ctx.chain
            if directive.is_next and node[1] >= 0:
                folders = chain[node[1] + 1 :]
            elif directive.form == '"':
                folders = (os.path.dirname(node[0]),) + chain
            else:
                folders = chain[self.ctx.bracket_start :]
            places = [folder + "/" + name for folder in folders]
        for n, place in enumerate(places):
            if self.snap.is_file(place):
                return [place], places[:n]
        return [], places

    def _evaluate_round(self) -> bool:
        """Decide again with the files reached: follow the includes now possible, and evaluate
        every computed include against the macros reached; True if it added files."""
        self._lookup_cache = {}
        self._conditions = self._decider()
        for key, (facts, places) in list(self.deferred.items()):
            if self._taken(facts, places):
                del self.deferred[key]
                self._push(key[1])
        computed = [
            key for key, (facts, places) in self.computed.items() if self._taken(facts, places)
        ]
        cheap = [key for key in computed if not self._expensive(key[1])]
        self._include_names(cheap)
        if not self._stack:  # a quiet round: the costly ones too
            self._include_names([key for key in computed if self._expensive(key[1])])
        return bool(self._stack)

    def _expensive(self, directive: Directive) -> bool:
        """Whether the include's last evaluation was costly (it then waits for a quiet round:
        the files that the cheap ones add would make it start over, at full cost, each time)."""
        variants = self.memo.evaluations.get(directive.tokens)
        return bool(variants) and variants[0].steps >= EXPENSIVE

    def _include_names(self, computed: list[tuple[Node, Directive]]) -> None:
        """Evaluate computed includes and reach the files they name."""
        for node, directive in computed:
            for form, name in self._names(node, directive):
                literal = Directive(directive.kind, form, name, (), directive.line)
                for target in self.resolve(node, literal):
                    self._push(target)

    def _decider(self) -> Conditions:
        """Conditions decided against the files reached so far (a new one every round)."""
        remembered = self.memo.decisions.setdefault(self.ctx_id, {})
        return Conditions(self.ctx.cmdline, self.defined, self.undone, self.lookup, remembered)

    def lookup(self, name: str) -> tuple[Macro, ...]:
        """Every definition of ``name`` in the files reached (and on the command line), but for
        those under a branch no compile takes (see ``conditions``)."""
        found = self._lookup_cache.get(name)
        if found is not None:
            return found
        defs: dict[Macro, None] = dict.fromkeys(self.ctx.cmdline.macros.get(name, ()))
        for path in self.store.macro_index.get(name, ()):
            if path in self.paths:
                facts = self.store.cached_facts(path)
                if facts is not None:
                    for macro in facts.macros.get(name, ()):
                        if self._conditions.possible(facts.groups, macro.frames):
                            defs[macro] = None
        found = tuple(defs)
        self._lookup_cache[name] = found
        return found

    def defined(self, name: str) -> bool:
        """Whether a file reached #defines ``name`` (in any branch)."""
        return not self.paths.isdisjoint(self.store.macro_index.get(name, ()))

    def undone(self, name: str) -> bool:
        """Whether a file reached #undefs ``name``."""
        return not self.paths.isdisjoint(self.store.undef_index.get(name, ()))

    def _names(self, node: Node, directive: Directive) -> frozenset[tuple[str, str]]:
        """The header names a computed include or probe can form, memoised by consulted macros."""
        variants = self.memo.evaluations.setdefault(directive.tokens, [])
        for ev in variants:
            if all(frozenset(self.lookup(n)) == defs for n, defs in ev.consulted.items()) and all(
                self.undone(g) == undone for g, undone in ev.guards.items()
            ):
                return self._checked(node, directive, ev)
        consulted: dict[str, frozenset[Macro]] = {}
        guards: dict[str, bool] = {}

        def recording(name: str) -> tuple[Macro, ...]:
            defs = self.lookup(name)
            consulted[name] = frozenset(defs)
            return defs

        def undone(guard: str) -> bool:
            guards[guard] = self.undone(guard)
            return guards[guard]

        expander = Expander(recording, undone)
        try:
            if any(self._outgrown(ev) for ev in variants):
                raise Overflow
            names = frozenset(header_names(directive.tokens, expander))
            overflowed = False
        except Overflow:
            names = frozenset(spelled_names(directive.tokens, recording))
            overflowed = True
        steps = max(expander.steps, EXPENSIVE) if overflowed else expander.steps
        ev = Evaluation(consulted, guards, names, overflowed, steps)
        variants.insert(0, ev)
        del variants[MAX_EVAL_VARIANTS:]
        return self._checked(node, directive, ev)

    def _outgrown(self, ev: Evaluation) -> bool:
        """Whether an expansion that overflowed would only have more to do now: every macro it
        consulted keeps all those definitions (and the expansion would overflow again)."""
        return ev.overflowed and all(
            frozenset(self.lookup(n)) >= defs for n, defs in ev.consulted.items()
        )

    def _checked(self, node: Node, directive: Directive, ev: Evaluation) -> frozenset:
        """Note whether the expansion fell back to spelled names (see ``macros.spelled_names``)."""
        self.fallbacks[f"{node[0]}:{directive.line}"] = ev.overflowed
        return ev.names


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector for one walk.

    A first-sight walk allocates millions of tokens and parsed directives that all stay alive until
    it ends, and creates no reference cycles of its own; the collector's full passes over that
    growing heap cost more CPU than the analysis itself (Boost spirit: 1.1 s of 1.8 s).  When the
    walk is over its objects go straight to the oldest generation (``gc.freeze`` then
    ``gc.unfreeze``) rather than through a young-generation pass over all of them, which the first
    allocation after ``gc.enable`` would trigger (spirit: 50 to 100 ms, on objects that are mostly
    kept as caches); reference cycles among them wait for the next full collection.  The
    collector is left alone if someone else already turned it off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():  # unfreezing would also thaw what someone else froze
            gc.freeze()
            gc.unfreeze()
        gc.enable()
