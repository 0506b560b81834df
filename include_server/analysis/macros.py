"""Expand a computed ``#include`` against every definition each macro has anywhere reachable.

Without evaluating conditionals we cannot know which ``#define`` of a macro is live at the
``#include``, so a macro name maps to the *set* of its definitions and the expander forks on each.
The result is every header name any combination could form: a superset of what the compiler sees.
Expansion follows the standard algorithm (argument pre-expansion, ``#``, ``##``, rescanning, hide
sets to stop recursion); forks are deduplicated at every step and expansions of arguments are
memoised, which keeps Boost.Preprocessor iteration cheap.  When the forks still explode, the caller
falls back to every string or ``<...>`` spelled in any reachable definition (see ``spelled_names``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from include_server.analysis.lexer import Macro

Tok = tuple[str, frozenset[str]]
_NO_HIDE: frozenset[str] = frozenset()
_PASTE = ("##", None)  # marks a pending token paste inside a substitution
_PLACEMARKER = ""  # an empty argument next to '##'
MAX_RESULTS = 4096
MAX_STEPS = 30_000


class Overflow(Exception):
    """The forks of one expansion grew beyond the limits."""


def _is_ident(text: str) -> bool:
    return text[:1].isalpha() or text[:1] == "_"


class Expander:
    """Expands token lists with a ``lookup(name) -> definitions`` view of the translation unit."""

    def __init__(self, lookup: Callable[[str], Sequence[Macro]]) -> None:
        self._lookup = lookup
        self._defs: dict[str, Sequence[Macro]] = {}
        self._unions: dict[tuple[frozenset[str], frozenset[str]], frozenset[str]] = {}
        self._paints: dict[tuple[Tok, frozenset[str]], Tok] = {}
        self._memo: dict[tuple[Tok, ...], list[tuple[Tok, ...]]] = {}
        self._steps = 0

    def definitions(self, text: str) -> Sequence[Macro]:
        """The definitions of an identifier (none for other tokens), asked of the lookup once."""
        found = self._defs.get(text)
        if found is None:
            found = self._defs[text] = self._lookup(text) if _is_ident(text) else ()
        return found

    def _painted(self, text: str, hide: frozenset[str], more: frozenset[str]) -> Tok:
        """``text`` with hide set ``hide | more``, kept only on a macro's name.

        A hide set is only ever read on a token that names a macro, so every other token carries
        the empty set: streams that differ only in the history of plain tokens are then equal, and
        forks through alternative definitions reconverge in the memo.  Equal unions are shared,
        which keeps the garbage collector's work (a large part of the cost) down.
        """
        if not self.definitions(text):
            return (text, _NO_HIDE)
        if hide is more or not hide:
            return (text, more)
        key = (hide, more)
        union = self._unions.get(key)
        if union is None:
            union = self._unions[key] = hide | more
        return (text, union)

    def _tick(self, n: int = 1) -> None:
        self._steps += n
        if self._steps > MAX_STEPS:
            raise Overflow

    def expand(self, toks: tuple[Tok, ...]) -> list[tuple[Tok, ...]]:
        """Every full expansion of ``toks`` (each a token tuple), deduplicated.

        Runs straight on while each macro has one definition; at a fork each alternative's rest is
        expanded through this memo, so forks that reconverge on the same tokens cost once.
        """
        found = self._memo.get(toks)
        if found is not None:
            return found
        out: list[Tok] = []
        rest, i = toks, 0
        result: list[tuple[Tok, ...]] | None = None
        while i < len(rest):
            self._tick()
            text, hide = rest[i]
            defs = self.definitions(text) if text not in hide else ()
            alts = self._invocations(defs, rest, i, hide) if defs else []
            if not alts:
                out.append(rest[i])
                i += 1
            elif len(alts) == 1:
                rest, i = alts[0], 0
            else:
                finals: dict[tuple[Tok, ...], None] = {}
                prefix = tuple(out)
                for alt in alts:
                    for tail in self.expand(alt):
                        finals[prefix + tail] = None
                    if len(finals) > MAX_RESULTS:
                        raise Overflow
                result = list(finals)
                break
        if result is None:
            result = [tuple(out)]
        self._memo[toks] = result
        return result

    def _invocations(
        self, defs: Sequence[Macro], rest: tuple[Tok, ...], i: int, hide: frozenset[str]
    ) -> list[tuple[Tok, ...]]:
        """The token streams that replace ``rest[i:]`` for each definition of ``rest[i]``."""
        alts: dict[tuple[Tok, ...], None] = {}
        name = rest[i][0]
        literal = False
        for macro in defs:
            new_hide = hide | {name}
            if macro.params is None:
                for body in self._substitute(macro, [], new_hide):
                    alts[body + rest[i + 1 :]] = None
                continue
            call = _arguments(rest, i + 1)
            if call is None:
                literal = True  # a function-like name without '(' is an ordinary token
                continue
            args, end = call
            bound = _bind(macro, args)
            if bound is None:
                continue  # wrong argument count: the compiler would stop with an error
            for body in self._substitute(macro, bound, new_hide):
                alts[body + rest[end:]] = None
        if literal and alts:
            # Keep the unexpanded spelling as one more possibility, painted so it stays put.
            alts[((name, hide | {name}),) + rest[i + 1 :]] = None
        return list(alts)

    def _substitute(
        self, macro: Macro, args: list[tuple[Tok, ...]], hide: frozenset[str]
    ) -> list[tuple[Tok, ...]]:
        """Replace parameters in the body (``#``, ``##``, pre-expanded arguments), then paste."""
        params = {p: n for n, p in enumerate(macro.params or ())}
        body = _va_opt(macro, args, params)
        segments: list[list[tuple[Tok, ...]]] = []
        for k, text in enumerate(body):
            self._tick()
            if text == "##":
                segments.append([(_PASTE,)])  # type: ignore[list-item]
                continue
            if text == "#" and macro.params is not None and k + 1 < len(body):
                continue  # handled with the parameter that follows
            index = params.get(text)
            if index is None:
                segments.append([((text, hide),)])
                continue
            arg = args[index]
            if k > 0 and body[k - 1] == "#":
                segments.append([((_stringize(arg), hide),)])
            elif _next_to_paste(body, k):
                segments.append([arg if arg else ((_PLACEMARKER, hide),)])
            else:
                segments.append(self.expand(arg))
        results: list[tuple[Tok, ...]] = []
        sizes = 1
        for seg in segments:
            sizes *= len(seg)
        if sizes > MAX_RESULTS:
            raise Overflow
        for combo in itertools.product(*segments):
            flat = tuple(tok for part in combo for tok in part)
            results.append(self._paste(flat, hide))
        return list(dict.fromkeys(results))

    def _paste(self, flat: tuple[Tok, ...], hide: frozenset[str]) -> tuple[Tok, ...]:
        """Apply pending ``##`` pastes, drop placemarkers, and add the macro to every hide set."""
        pasted = _pasted(flat) if _PASTE in flat else flat
        paints = self._paints
        out: list[Tok] = []
        for tok in pasted:
            if tok[0] == _PLACEMARKER:
                continue
            painted = paints.get((tok, hide))
            if painted is None:  # tokens repeat a lot: one shared object each, a dict hit
                painted = paints[(tok, hide)] = self._painted(tok[0], tok[1], hide)
            out.append(painted)
        return tuple(out)


def _pasted(flat: tuple[Tok, ...]) -> list[Tok]:
    """Join the tokens on either side of each pending ``##`` (placemarkers stay for the caller)."""
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
                out.append((left[0] + right[0], left[1]))
            k += 2
            continue
        if tok != _PASTE:
            out.append(tok)
        k += 1
    return out


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
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(text)
    return '"' + "".join(parts) + '"'


def _arguments(rest: tuple[Tok, ...], start: int) -> tuple[list[tuple[Tok, ...]], int] | None:
    """Split ``( a, b )`` at ``rest[start]`` into arguments; also return the index after ')'."""
    if start >= len(rest) or rest[start][0] != "(":
        return None
    args: list[tuple[Tok, ...]] = []
    current: list[Tok] = []
    depth = 0
    for j in range(start + 1, len(rest)):
        text = rest[j][0]
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
                tail.append((",", _NO_HIDE))
            tail.extend(arg)
        return list(args[:fixed]) + [tuple(tail)]
    if len(args) != len(params):
        return None
    return args


def header_names(tokens: tuple[str, ...], expander: Expander) -> set[tuple[str, str]]:
    """The ``("\\"", name)`` / ``("<", name)`` header names an include's tokens can expand to."""
    names: set[tuple[str, str]] = set()
    for alt in expander.expand(tuple((t, _NO_HIDE) for t in tokens)):
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
    todo = [t for t in tokens if _is_ident(t)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for macro in lookup(name):
            body = macro.body
            for k, text in enumerate(body):
                if _is_ident(text):
                    todo.append(text)
                elif len(text) >= 2 and text[0] == '"' and text[-1] == '"':
                    names.add(('"', text[1:-1]))
                elif text == "<" and ">" in body[k:]:
                    names.add(("<", "".join(body[k + 1 : body.index(">", k)])))
    return names
