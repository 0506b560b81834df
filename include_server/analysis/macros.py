"""Expand a computed ``#include`` against every definition each macro has anywhere reachable.

Without evaluating every conditional we cannot know which ``#define`` of a macro is live at the
``#include``, so a macro name maps to the *set* of its possible definitions (the caller sets aside
those no compile makes, see ``conditions``) and the expander forks on each.  The result is every
header name any combination could form: a superset of what the compiler sees.

Expansion follows the standard algorithm (argument pre-expansion, ``#``, ``##``, rescanning) and
stops recursion the way GCC does: a macro is disabled while its replacement is being read, which
the token stream records with an end marker after each replacement; a macro name met while its
macro is disabled is painted and never expands.  Unlike hide sets carried by tokens, the markers
are gone once read, so streams that went through different definitions become equal again.

Three things keep the forks in check: every expansion is memoised by its tokens, so forks that
reconverge cost once; each result carries the choices it rests on (``Choices``), and results whose
choices contradict each other are dropped; and alternatives that differ only in runs of inert
tokens (header names, numbers) are expanded once, as a template (``Expander._forks``).  When the
forks still explode, the caller falls back to every string or ``<...>`` spelled in any reachable
definition (see ``spelled_names``), which is not a proven superset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from include_server.analysis.lexer import Macro

# A token and its state: _PLAIN; _PAINTED (a macro name met while that macro was disabled, never
# expanded); _SEEN (a function-like macro's name without '(' after it, passed over once but
# expandable when rescanned elsewhere); or _END, the marker where macro ``text``'s replacement ends.
Tok = tuple[str, int]
_PLAIN, _PAINTED, _SEEN, _END = 0, 1, 2, 3
# The choices an expansion rests on: (macro name, the definition taken) pairs, and the branch
# taken in each conditional group a definition taken sits in (``Macro.frames``).  Within one
# directive every macro has exactly one live definition, and each of those groups took one branch
# in the whole compile, so two choices for one key exclude each other: an expansion that would
# need both is no expansion at all.
Choices = frozenset[tuple[object, object]]
Alt = tuple[tuple[Tok, ...], Choices]  # one possible expansion and the choices it needs
Runs = list[tuple[Tok, ...]]  # an alternative's runs of inert tokens (see ``Expander._forks``)
_FREE: Choices = frozenset()
_PASTE = ("##", -1)  # marks a pending token paste inside a substitution
_STRUCTURE = frozenset({"(", ")", ","})
_HOLE = "\x00"  # begins a placeholder's spelling (see ``Expander._forks``)
_HOLES = re.compile("\x00[0-9]+")
_PLACEMARKER = ""  # an empty argument next to '##'
MAX_RESULTS = 4096
MAX_STEPS = 100_000
MIN_TEMPLATE = 4  # alternatives worth looking for a template in


class Overflow(Exception):
    """The forks of one expansion grew beyond the limits."""


class _Opaque(Exception):
    """A placeholder's tokens were looked into (pasted, or stringized twice)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.hole = _HOLES.search(text).group()  # type: ignore[union-attr]


def is_ident(text: str) -> bool:
    """Whether a token is an identifier (a macro name can only be one)."""
    return text[:1].isalpha() or text[:1] == "_"


class Expander:
    """Expands token lists with a ``lookup(name) -> definitions`` view of the translation unit."""

    def __init__(
        self,
        lookup: Callable[[str], Sequence[Macro]],
        undone: Callable[[str], bool] = lambda guard: False,
        budget: int = MAX_STEPS,
    ) -> None:
        """``undone(guard)`` says whether some file of the unit #undefs that include guard;
        ``budget`` is the number of steps after which ``Overflow`` is raised."""
        self._lookup = lookup
        self._budget = budget
        self._undone = undone
        self._defs: dict[str, Sequence[Macro]] = {}
        self._memo: dict[tuple[Tok, ...], list[Alt]] = {}
        self._substituted: dict[
            tuple[Macro, tuple[tuple[Tok, ...], ...], tuple[Tok, ...]], list[Alt]
        ] = {}
        self._joins: dict[tuple[Choices, Choices], Choices | None] = {}
        self._choices: dict[Macro, Choices] = {}
        self._inerts: dict[Tok, bool] = {}
        self._steps = 0

    def definitions(self, text: str) -> Sequence[Macro]:
        """The definitions of an identifier (none for other tokens), asked of the lookup once."""
        found = self._defs.get(text)
        if found is None:
            found = self._defs[text] = self._lookup(text) if is_ident(text) else ()
        return found

    def _joined(self, a: Choices, b: Choices) -> Choices | None:
        """Both sets of choices together, or None when they take two definitions of one name."""
        if not b or a is b:
            return a
        if not a:
            return b
        key = (a, b)
        if key in self._joins:
            return self._joins[key]
        union = a | b
        joined = union if len({name for name, _ in union}) == len(union) else None
        self._joins[key] = joined
        return joined

    def _choice(self, name: str, macro: Macro, defs: Sequence[Macro]) -> Choices:
        """What taking ``macro`` for ``name`` rests on.

        The definition itself if it is not the only one, and the branches it sits under in groups
        that run once (inside an include guard that nothing undefines).
        """
        found = self._choices.get(macro)
        if found is None:
            picks: list[tuple[object, object]] = [(name, macro)] if len(defs) > 1 else []
            picks.extend(f for f in macro.frames if f[0][0] and not self._undone(f[0][0]))
            found = self._choices[macro] = frozenset(picks) if picks else _FREE
        return found

    @property
    def steps(self) -> int:
        """The steps taken so far (see ``budget``)."""
        return self._steps

    def _tick(self, n: int = 1) -> None:
        self._steps += n
        if self._steps > self._budget:
            raise Overflow

    def expand(self, toks: tuple[Tok, ...]) -> list[Alt]:
        """Every full expansion of ``toks`` with the choices it rests on, deduplicated.

        Runs straight on while each macro has one definition; at a fork each alternative's rest is
        expanded through this memo, so forks that reconverge on the same tokens cost once.  The
        memo is keyed by tokens alone: an expansion's choices are joined with the caller's when
        they meet, which drops the combinations no single set of definitions produces.
        """
        found = self._memo.get(toks)
        if found is not None:
            return found
        out: list[Tok] = []
        rest, i = toks, 0
        chosen: Choices | None = _FREE
        result: list[Alt] | None = None
        while i < len(rest) and chosen is not None:
            self._tick()
            tok = rest[i]
            text, state = tok
            defs = self.definitions(text) if state == _PLAIN else ()
            if state == _END:
                i += 1  # that macro's replacement has been read: it is enabled again
                continue
            if state == _SEEN or (defs and (text, _END) in rest[i + 1 :]):
                out.append((text, _PAINTED if state == _PLAIN else _PLAIN))
                i += 1
                continue
            alts = self._invocations(defs, rest, i) if defs else {}
            if not alts:
                out.append(tok)
                i += 1
            elif len(alts) == 1:
                ((rest, more),) = alts.items()
                chosen, i = self._joined(chosen, more), 0
            else:
                result = self._forks(tuple(out), chosen, alts)
                break
        if result is None:
            result = [] if chosen is None else [(tuple(out), chosen)]
        self._memo[toks] = result
        return result

    def _forks(self, prefix: tuple[Tok, ...], chosen: Choices, alts: dict) -> list[Alt]:
        """Expand each alternative's stream and put the tokens already out in front.

        Alternatives that differ only in runs of inert tokens (no macro names, parentheses or
        commas: a header name, a number) are expanded once, as a template with a placeholder for
        each run that differs, and the runs are put back into its expansions.  The expansion
        cannot depend on what a placeholder stands for unless it pastes it (or stringizes it
        twice); then ``_Opaque`` is raised and those alternatives are expanded one by one.
        """
        finals: dict[tuple[Tok, ...], Choices] = {}
        for shape, group in self._shapes(alts).items():
            expansions, fills = self._templated(shape, group)
            for (stream, _), fill in zip(group, fills, strict=True):
                base = self._joined(chosen, alts[stream])
                if base is None:
                    continue
                if expansions is None:
                    found = self.expand(stream)
                else:
                    found = [(_filled(tail, fill), needs) for tail, needs in expansions]
                for tail, needs in found:
                    both = self._joined(base, needs)
                    if both is not None:
                        _widen(finals, prefix + tail, both)
                if len(finals) > MAX_RESULTS:
                    raise Overflow
        return list(finals.items())

    def _shapes(self, alts: dict) -> dict[tuple, list[tuple[tuple[Tok, ...], Runs]]]:
        """The alternatives grouped by shape (their tokens with each inert run as None)."""
        groups: dict[tuple, list[tuple[tuple[Tok, ...], Runs]]] = {}
        if len(alts) < MIN_TEMPLATE:
            return {(): [(stream, []) for stream in alts]}
        inerts = self._inerts  # known for nearly every token: no call per token
        for stream in alts:
            shape: list[Tok | None] = []
            runs: Runs = []
            start = -1
            for k, tok in enumerate(stream):
                inert = inerts.get(tok)
                if inert is None:
                    inert = self._inert(tok)
                if inert:
                    if start < 0:
                        start = k
                    continue
                if start >= 0:
                    runs.append(stream[start:k])
                    shape.append(None)
                    start = -1
                shape.append(tok)
            if start >= 0:
                runs.append(stream[start:])
                shape.append(None)
            groups.setdefault(tuple(shape), []).append((stream, runs))
        return groups

    def _inert(self, tok: Tok) -> bool:
        """Whether expansion only moves the token around (no macro name, no '(' ',' or ')').

        Whether it is pasted or stringized is checked where that happens (``_Opaque``).
        """
        inert = self._inerts.get(tok)
        if inert is None:
            inert = tok[1] == _PLAIN and tok[0] not in _STRUCTURE and not self.definitions(tok[0])
            self._inerts[tok] = inert
        return inert

    def _templated(
        self, shape: tuple, group: list[tuple[tuple[Tok, ...], Runs]]
    ) -> tuple[list[Alt] | None, list[dict[str, tuple[Tok, ...]]]]:
        """Expand a group's template once.

        Returns its expansions (None: expand each alternative itself) and, for each alternative,
        the runs its placeholders stand for.
        """
        first = group[0][1]
        varying = [r for r in range(len(first)) if any(runs[r] != first[r] for _, runs in group)]
        if len(group) < 2 or not varying:
            return None, [{} for _ in group]
        used = [
            int(h[1:])
            for stream, _ in group
            for t, _ in stream
            if _HOLE in t
            for h in _HOLES.findall(t)
        ]
        base = max(used, default=-1) + 1  # placeholders of enclosing templates stay apart
        holes = {r: f"{_HOLE}{base + n}" for n, r in enumerate(varying)}
        fills = [{holes[r]: runs[r] for r in varying} for _, runs in group]
        template: list[Tok] = []
        r = 0
        for tok in shape:
            if tok is not None:
                template.append(tok)
                continue
            template.extend(((holes[r], _PLAIN),) if r in holes else first[r])
            r += 1
        try:
            return self.expand(tuple(template)), fills
        except _Opaque as opaque:
            if opaque.hole not in fills[0]:
                raise  # an enclosing template's placeholder: that template is expanded itself
            return None, fills

    def _invocations(
        self, defs: Sequence[Macro], rest: tuple[Tok, ...], i: int
    ) -> dict[tuple[Tok, ...], Choices]:
        """The token streams that replace ``rest[i:]`` for each definition of ``rest[i]``.

        Each replacement is followed by the marker that ends it; the markers inside a call's
        arguments are dropped (reading past them ended those replacements).
        """
        alts: dict[tuple[Tok, ...], Choices] = {}
        name = rest[i][0]
        end_marker = ((name, _END),)
        seen = False
        for macro in defs:
            mine = self._choice(name, macro, defs)
            if macro.params is None:
                for body, needs in self._substitute(macro, [], ()):
                    joined = self._joined(mine, needs)
                    if joined is not None:
                        _widen(alts, body + end_marker + rest[i + 1 :], joined)
                continue
            call = _arguments(rest, i + 1)
            if call is None:
                seen = True  # a function-like name without '(' is an ordinary token
                continue
            args, end = call
            bound = _bind(macro, args)
            if bound is None:
                continue  # wrong argument count: the compiler would stop with an error
            after = tuple(tok for tok in rest[end:] if tok[1] == _END)
            for body, needs in self._substitute(macro, bound, after):
                joined = self._joined(mine, needs)
                if joined is not None:
                    _widen(alts, body + end_marker + rest[end:], joined)
        if seen and alts:
            # Keep the name as it is as one more possibility (under no particular choice: any
            # function-like definition leaves it alone).
            _widen(alts, ((name, _SEEN),) + rest[i + 1 :], _FREE)
        return alts

    def _substitute(
        self, macro: Macro, args: list[tuple[Tok, ...]], active: tuple[Tok, ...]
    ) -> list[Alt]:
        """Replace parameters in the body (``#``, ``##``, pre-expanded arguments), then paste.

        An argument is expanded once, on its own, with the macros whose replacements are still
        being read (their markers, ``active``) disabled as they are at the call; as in GCC, that
        one expansion stands wherever its parameter does.

        Memoised by the call: the same invocation comes back in many streams (a fork's
        alternatives share most of their tokens), and ``expand``'s memo only catches whole streams.
        """
        key = (macro, tuple(args), active)
        found = self._substituted.get(key)
        if found is not None:
            return found
        params = {p: n for n, p in enumerate(macro.params or ())}
        body = _va_opt(macro, args, params)
        expanded: dict[int, list[Alt]] = {}
        pieces: list[tuple[Tok, ...] | int] = []  # tokens, or the index of an expanded argument
        pasting = False
        for k, text in enumerate(body):
            self._tick()
            if text == "##":
                pieces.append((_PASTE,))
                pasting = True
                continue
            if text == "#" and macro.params is not None and k + 1 < len(body):
                continue  # handled with the parameter that follows
            index = params.get(text)
            if index is None:
                pieces.append(((text, _PLAIN),))
            elif k > 0 and body[k - 1] == "#":
                pieces.append(((_stringize(args[index]), _PLAIN),))
            elif _next_to_paste(body, k):
                pieces.append(args[index] or ((_PLACEMARKER, _PLAIN),))
            else:
                if index not in expanded:
                    expanded[index] = self.expand(args[index] + active)
                pieces.append(index)
        results: dict[tuple[Tok, ...], Choices] = {}
        for picks, chosen in self._combinations(list(expanded.values())):
            pick = dict(zip(expanded, picks, strict=True))
            flat = [tok for p in pieces for tok in (pick[p] if type(p) is int else p)]
            _widen(results, _pasted(flat) if pasting else tuple(flat), chosen)
        found = self._substituted[key] = list(results.items())
        return found

    def _combinations(
        self, options: list[list[Alt]]
    ) -> list[tuple[tuple[tuple[Tok, ...], ...], Choices]]:
        """One expansion of each argument, for every set of them whose choices agree.

        Built an argument at a time so that disagreeing picks are dropped before they multiply.
        """
        partial: list[tuple[tuple[tuple[Tok, ...], ...], Choices]] = [((), _FREE)]
        for alts in options:
            if len(alts) == 1 and not alts[0][1]:
                only = alts[0][0]
                partial = [(picks + (only,), chosen) for picks, chosen in partial]
                continue
            grown = []
            for picks, chosen in partial:
                for toks, needs in alts:
                    joined = self._joined(chosen, needs)
                    if joined is not None:
                        grown.append((picks + (toks,), joined))
            if len(grown) > MAX_RESULTS:
                raise Overflow
            self._tick(len(grown))
            partial = grown
        return partial


def _filled(toks: tuple[Tok, ...], fill: dict[str, tuple[Tok, ...]]) -> tuple[Tok, ...]:
    """Put the runs back in place of their placeholders (spelled out inside stringized text)."""
    if not fill:
        return toks
    out: list[Tok] = []
    for tok in toks:
        text = tok[0]
        if _HOLE not in text:
            out.append(tok)
        elif text in fill:
            out.extend(fill[text])
        else:
            out.append((_HOLES.sub(lambda m: _spelled(m.group(), fill), text), tok[1]))
    return tuple(out)


def _spelled(hole: str, fill: dict[str, tuple[Tok, ...]]) -> str:
    """What a stringized placeholder stands for (an enclosing template's stays as it is)."""
    run = fill.get(hole)
    return hole if run is None else _stringize(run)[1:-1]


def _widen(found: dict[tuple[Tok, ...], Choices], toks: tuple[Tok, ...], needs: Choices) -> None:
    """Record ``toks`` as reachable under ``needs``.

    Tokens reached in several ways keep only the choices all of those ways share: fewer choices
    exclude fewer continuations, so this only ever adds combinations (sound) while keeping one
    entry per token stream, as many as without choices.
    """
    known = found.get(toks)
    found[toks] = needs if known is None else known & needs


def _pasted(flat: list[Tok]) -> tuple[Tok, ...]:
    """Join the tokens on either side of each pending ``##`` and drop placemarkers (there are
    none without a '##': only an empty argument next to one makes them)."""
    out: list[Tok] = []
    k = 0
    while k < len(flat):
        tok = flat[k]
        if tok == _PASTE and out and k + 1 < len(flat):
            right = flat[k + 1]
            left = out.pop()
            if left[0] == "," and right[0] == _PLACEMARKER:
                pass  # GNU ", ## __VA_ARGS__" with no variadic arguments swallows the comma
            else:
                text = left[0] + right[0]
                if _HOLE in text:
                    raise _Opaque(text)
                out.append((text, _PLAIN))
            k += 2
            continue
        if tok != _PASTE:
            out.append(tok)
        k += 1
    return tuple(tok for tok in out if tok[0] != _PLACEMARKER)


def _va_opt(macro: Macro, args: list[tuple[Tok, ...]], params: dict[str, int]) -> tuple[str, ...]:
    """Resolve ``__VA_OPT__(...)``: its content when the variadic argument has tokens."""
    body = macro.body
    if "__VA_OPT__" not in body or not macro.variadic:
        return body
    has_va = bool(args[params[macro.params[-1]]]) if macro.params else False
    out: list[str] = []
    k = 0
    while k < len(body):
        if body[k] == "__VA_OPT__" and k + 1 < len(body) and body[k + 1] == "(":
            depth, j = 1, k + 2
            while j < len(body) and depth:
                depth += {"(": 1, ")": -1}.get(body[j], 0)
                j += 1
            if has_va:
                out.extend(body[k + 2 : j - 1])
            k = j
            continue
        out.append(body[k])
        k += 1
    return tuple(out)


def _next_to_paste(body: tuple[str, ...], k: int) -> bool:
    return (k > 0 and body[k - 1] == "##") or (k + 1 < len(body) and body[k + 1] == "##")


def _stringize(arg: tuple[Tok, ...]) -> str:
    """``#param``: the argument's spelling as a string literal (blanks are not tracked)."""
    parts = []
    for text, _ in arg:
        if text[:1] in "\"'" or text[1:2] in "\"'":
            if _HOLE in text:
                raise _Opaque(text)  # would need the placeholder's runs escaped twice
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(text)
    return '"' + "".join(parts) + '"'


def _arguments(rest: tuple[Tok, ...], start: int) -> tuple[list[tuple[Tok, ...]], int] | None:
    """Split ``( a, b )`` from ``rest[start]`` into arguments; also return the index after ')'.

    End markers before the '(' and among the arguments are passed over and left out.
    """
    while start < len(rest) and rest[start][1] == _END:
        start += 1
    if start >= len(rest) or rest[start][0] != "(":
        return None
    args: list[tuple[Tok, ...]] = []
    current: list[Tok] = []
    depth = 0
    for j in range(start + 1, len(rest)):
        text, state = rest[j]
        if state == _END:
            continue
        if text == "(":
            depth += 1
        elif text == ")":
            if depth == 0:
                args.append(tuple(current))
                return args, j + 1
            depth -= 1
        elif text == "," and depth == 0:
            args.append(tuple(current))
            current = []
            continue
        current.append(rest[j])
    return None


def _bind(macro: Macro, args: list[tuple[Tok, ...]]) -> list[tuple[Tok, ...]] | None:
    """Match arguments to parameters (variadic tail joined with commas); None if they differ."""
    params = macro.params or ()
    if not params:
        return [] if args == [()] else None
    if macro.variadic:
        fixed = len(params) - 1
        if len(args) < fixed:
            return None
        tail: list[Tok] = []
        for n, arg in enumerate(args[fixed:]):
            if n:
                tail.append((",", _PLAIN))
            tail.extend(arg)
        return list(args[:fixed]) + [tuple(tail)]
    if len(args) != len(params):
        return None
    return args


def header_names(tokens: tuple[str, ...], expander: Expander) -> set[tuple[str, str]]:
    """The ``("\\"", name)`` / ``("<", name)`` header names an include's tokens can expand to."""
    names: set[tuple[str, str]] = set()
    for alt, _ in expander.expand(tuple((t, _PLAIN) for t in tokens)):
        texts = [t for t, _ in alt]
        if not texts:
            continue
        first = texts[0]
        if len(first) >= 2 and first[0] == '"' and first[-1] == '"':
            names.add(('"', first[1:-1]))
        elif first == "<" and ">" in texts:
            names.add(("<", "".join(texts[1 : texts.index(">")])))
    return names


def spelled_names(
    tokens: tuple[str, ...], lookup: Callable[[str], Sequence[Macro]]
) -> set[tuple[str, str]]:
    """Fallback: every string and ``<...>`` spelled in any definition reachable from ``tokens``."""
    names: set[tuple[str, str]] = set()
    seen: set[str] = set()
    todo = [t for t in tokens if is_ident(t)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for macro in lookup(name):
            body = macro.body
            for k, text in enumerate(body):
                if is_ident(text):
                    todo.append(text)
                elif len(text) >= 2 and text[0] == '"' and text[-1] == '"':
                    names.add(('"', text[1:-1]))
                elif text == "<" and ">" in body[k:]:
                    names.add(("<", "".join(body[k + 1 : body.index(">", k)])))
    return names
