"""Decide the ``#if`` conditions whose value is the same wherever a compile reads them.

The analysis follows every branch (see ``lexer``), but a definition under a branch that no compile
of the translation unit takes only feeds the macro expander combinations that never happen: Boost
defines dozens of macros one way for MSVC, another for Metrowerks or EDG, under conditions such as
``~BOOST_PP_CONFIG_FLAGS() & BOOST_PP_CONFIG_MWCC()``, and expanding every mix of them explodes.

A condition is decided when it has one value under every combination of states that the macros it
reads can be in when it is read.  A macro's states are:

* if no file reached defines or undefines it, the one the command line gives it (the compiler's
  predefined macros and ``-D``), from the first line to the last;
* otherwise undefined, or any of its possible definitions (the walk's lookup, which leaves out the
  definitions set aside).  A function-like macro is not taken as undefined unless ``defined``
  tests it: called while undefined the compile stops ('0 ('), not called it reads 0 either way.

Combinations in which the compile stops with an error are left out, and so are conditions that
read what the compiler computes on the spot (``__LINE__``, ``__has_include``...), that need
unsigned arithmetic, or whose combinations are too many (``MAX_HYPOTHESES``): they stay undecided,
and their branches possible.

Why setting definitions aside is sound: follow the real compile line by line.  As long as every
file it has read is among the files reached and every definition it has made is kept, each macro
a condition reads is in one of the states considered, so the compile takes the branch decided (or
stops with an error): it makes no definition set aside and opens only files the walk reaches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from include_server.analysis.lexer import Facts, Frame, Macro, tokenize
from include_server.analysis.macros import Expander, Overflow, is_ident

# Macros the compiler computes where they are read: never one state for the whole compile.
_DYNAMIC = frozenset(
    {
        "__FILE__",
        "__LINE__",
        "__COUNTER__",
        "__INCLUDE_LEVEL__",
        "__BASE_FILE__",
        "__FILE_NAME__",
        "__TIMESTAMP__",
        "__DATE__",
        "__TIME__",
    }
)
# Names that mean something other than 0 when left in an expression (C++ and alternative tokens).
_NOT_ZERO = frozenset(
    {"defined", "true", "false", "and", "and_eq", "bitand", "bitor", "compl", "not", "not_eq"}
    | {"or", "or_eq", "xor", "xor_eq"}
)
_INTEGER = re.compile(r"(0[xX][0-9a-fA-F']+|0[bB][01']+|[0-9][0-9']*)([lL]*)")
_LOW, _HIGH = -(2**63), 2**63 - 1
_ERROR = object()  # the outcome of a combination of states in which the compile stops
_UNSEEN = object()  # a condition not decided yet this round
MAX_HYPOTHESES = 8  # combinations of macro states tried for one condition
CONDITION_STEPS = 2000  # expansion steps for all combinations: a costly condition stays undecided


MAX_DECISIONS = 4  # decisions remembered per condition (the names it reads in other states)
States = tuple[tuple[Macro, ...], ...]


@dataclass(frozen=True)
class Decision:
    """A condition's value (None: undecided) and what it read: the states each name was in
    (None for a name whose states are not known, see ``_all_states``), and which of the names
    kept their command-line state (no file reached defined or undefined them)."""

    value: bool | None
    states: tuple[tuple[str, States | None], ...]
    constant: frozenset[str]


class Conditions:
    """The conditions of one walk round, decided against the files it has reached."""

    def __init__(
        self,
        cmdline: Facts,
        defined_in_files: Callable[[str], bool],
        undefined_in_files: Callable[[str], bool],
        definitions: Callable[[str], Sequence[Macro]],
        remembered: dict[str, list[Decision]],
    ) -> None:
        """``definitions(name)`` are the name's possible definitions (the walk's lookup).

        ``remembered`` holds decisions of earlier rounds and walks with the same command line,
        newest first, and receives this one's.  One is taken again while it holds (``_still``):
        checking costs a lookup per name read at most, far less than expanding the condition
        under every combination of states.  Walks read most conditions both before and after
        they reach the files that define their names, so each condition keeps a few decisions,
        not just the last.
        """
        self._cmdline = cmdline
        self._defined_in_files = defined_in_files
        self._undefined_in_files = undefined_in_files
        self._definitions = definitions
        self._remembered = remembered
        self._values: dict[str, bool | None] = {}
        self._constants: dict[str, bool] = {}
        self._reads: list[dict[str, States | None]] = []  # per decision under way: what it read
        self._state_cache: dict[str, States] = {}
        # Conditions being decided and names being looked up: met again, they stay undecided.
        self._deciding: set[str] = set()
        self._looking_up: set[str] = set()
        self._left = CONDITION_STEPS  # expansion steps left for the condition being decided

    def possible(self, groups: list[list[str | None]], frames: tuple[Frame, ...]) -> bool:
        """Whether a compile can take every branch of ``frames`` (conditions in ``groups``)."""
        for (_, number), branch in frames:
            chain = groups[number]
            for earlier in range(branch):
                if chain[earlier] is not None and self.value(chain[earlier]) is True:
                    return False  # an earlier branch is taken
            if chain[branch] is not None and self.value(chain[branch]) is False:
                return False
        return True

    def value(self, condition: str) -> bool | None:
        """True or False when the condition is decided, None when it is not."""
        found = self._values.get(condition, _UNSEEN)
        if found is not _UNSEEN:
            return found
        if condition in self._deciding:
            return None
        self._deciding.add(condition)
        try:
            found = self._values[condition] = self._decide(condition)
        finally:
            self._deciding.discard(condition)
        return found

    def _decide(self, condition: str) -> bool | None:
        """A remembered decision that still holds, else a new one (then remembered)."""
        known = self._remembered.get(condition)
        if known is None:
            known = self._remembered[condition] = []
        for decision in known:
            if self._still(decision):
                return decision.value
        self._reads.append({})
        try:
            found = self._evaluate(condition)
        finally:
            reads = self._reads.pop()
        constant = frozenset(name for name in reads if self._constant(name))
        known.insert(0, Decision(found, tuple(reads.items()), constant))
        del known[MAX_DECISIONS:]
        return found

    def _still(self, decision: Decision) -> bool:
        """Whether a remembered decision holds.

        A decided one holds while the names it read are in the states it saw: its value is a
        function of them (a name whose states are not known leaves a condition undecided).  An
        undecided one, always a safe answer, holds while the names are constant or not as they
        were: comparing their states would cost lookups (and expansions where they differ) for a
        condition that mostly stays undecided.
        """
        undecided = decision.value is None
        for name, states in decision.states:
            if undecided:
                if self._constant(name) != (name in decision.constant):
                    return False
            elif self._known_states(name) != states:
                return False
        return True

    def _evaluate(self, condition: str) -> bool | None:
        """The condition's value under every combination of states of the macros it reads, if
        they all agree (combinations in which the compile stops with an error left out)."""
        toks = _tokens(condition)
        tested = _tested(toks)
        name, end = _defined_name(toks, 1 if toks[:1] == ["!"] else 0)
        if name and end == len(toks):  # '#ifdef X' and '#ifndef X' need no expansion
            return self._defined_value(name, negated=toks[0] == "!")
        saved, self._left = self._left, CONDITION_STEPS  # a condition read while deciding another
        try:
            return self._agreed(toks, tested)
        finally:
            self._left = saved

    def _agreed(self, toks: list[str], tested: set[str]) -> bool | None:
        """The one outcome of every combination of states (see ``_evaluate``), or None."""
        outcomes: set[bool] = set()
        pending: list[dict[str, int]] = [{}]
        leaves = 1
        while pending:
            fixed = pending.pop()
            try:
                outcome, open_names = self._under(toks, tested, fixed)
            except _Undecidable:
                return None
            if open_names:
                name = min(open_names)
                count = len(self._states(name, name in tested))
                leaves += count - 1
                if leaves > MAX_HYPOTHESES:
                    return None
                pending.extend({**fixed, name: n} for n in range(count))
            elif outcome is None:
                return None
            elif outcome is not _ERROR:
                outcomes.add(outcome is True)
                if len(outcomes) > 1:
                    return None
        return outcomes.pop() if outcomes else None

    def _under(
        self, toks: list[str], tested: set[str], fixed: dict[str, int]
    ) -> tuple[object, set[str]]:
        """The condition's value with the macros in the states ``fixed`` picks (None if it cannot
        be computed, _ERROR if the compile would stop), and the names read whose state is open.
        ``tested`` are the names under ``defined``."""
        open_names: set[str] = set()
        supposed_undefined: set[str] = set()

        def state(name: str) -> tuple[Macro, ...]:
            states = self._states(name, name in tested)
            if len(states) > 1 and name not in fixed:
                open_names.add(name)
            picked = states[fixed.get(name, 0)]
            if not picked and len(states) > 1:
                supposed_undefined.add(name)
            return picked

        replaced = _defined(toks, state)
        expander = Expander(state, budget=self._left)
        try:
            alts = expander.expand(tuple((t, 0) for t in replaced))
        except Overflow:
            return None, open_names
        finally:
            self._left -= expander.steps
        if open_names:
            return None, open_names
        texts = [text for text, _ in alts[0][0]] if len(alts) == 1 else []
        for k, text in enumerate(texts):
            if is_ident(text):
                if text in _NOT_ZERO:
                    return None, open_names
                if texts[k + 1 : k + 2] == ["("]:
                    # '0 (': GCC stops with an error, unless the name is one of its built-ins
                    return (_ERROR if text in supposed_undefined else None), open_names
                texts[k] = "0"
        number = _Expression(texts).value() if texts else None
        return (None if number is None else number != 0), open_names

    def _constant(self, name: str) -> bool:
        """Whether the name keeps its command-line state: no file reached (un)defines it."""
        found = self._constants.get(name)
        if found is None:
            found = self._constants[name] = (
                name not in self._cmdline.undefs
                and not self._defined_in_files(name)
                and not self._undefined_in_files(name)
            )
        return found

    def _states(self, name: str, tested: bool) -> States:
        """Every state ``name`` can be in where a condition reads it: its command-line one if it
        is constant, else undefined (``()``) or any of its possible definitions.

        A function-like macro that ``defined`` does not test is never undefined where it counts:
        called, the compile would stop ('0 ('); not called, it is 0 either way.
        """
        found = self._known_states(name)
        if self._reads:
            self._reads[-1][name] = found
        if found is None:
            raise _Undecidable
        if not tested and len(found) > 1 and all(s and s[0].params is not None for s in found[1:]):
            return found[1:]
        return found

    def _defined_value(self, name: str, negated: bool) -> bool | None:
        """``defined name`` (or its negation), if every state of the name agrees."""
        if name in _DYNAMIC:
            return not negated
        try:
            seen = {bool(state) for state in self._states(name, True)}
        except _Undecidable:
            return None
        return seen.pop() != negated if len(seen) == 1 else None

    def _known_states(self, name: str) -> States | None:
        """``_all_states``, None where they are not known (not kept: that depends on what is
        being decided)."""
        found = self._state_cache.get(name)
        if found is None:
            try:
                found = self._state_cache[name] = self._all_states(name)
            except _Undecidable:
                return None
        return found

    def _all_states(self, name: str) -> States:
        if name in _DYNAMIC or name.startswith("__has_") or name in self._looking_up:
            raise _Undecidable
        if self._constant(name):
            return (tuple(self._cmdline.macros.get(name, ())),)
        self._looking_up.add(name)
        try:
            defs = self._definitions(name)
        finally:
            self._looking_up.discard(name)
        contents = {(m.params, m.variadic, m.text): m for m in defs}
        return ((), *((m,) for m in contents.values()))


def _tested(toks: list[str]) -> set[str]:
    """The names ``defined`` is applied to."""
    return {_defined_name(toks, k)[0] for k in range(len(toks)) if _defined_name(toks, k)[0]}


def _defined_name(toks: list[str], k: int) -> tuple[str, int]:
    """The name of ``defined X`` / ``defined(X)`` at ``toks[k]`` and where it ends ("" if none)."""
    if toks[k] != "defined":
        return "", k
    if toks[k + 1 : k + 2] == ["("] and toks[k + 3 : k + 4] == [")"] and is_ident(toks[k + 2]):
        return toks[k + 2], k + 4
    if k + 1 < len(toks) and is_ident(toks[k + 1]):
        return toks[k + 1], k + 2
    return "", k


def _defined(toks: list[str], state: Callable[[str], tuple[Macro, ...]]) -> list[str]:
    """Replace ``defined X`` / ``defined(X)`` by 1 or 0 (a malformed one is left as it is)."""
    out: list[str] = []
    k = 0
    while k < len(toks):
        name, end = _defined_name(toks, k)
        if not name:
            out.append(toks[k])
            k += 1
            continue
        out.append("1" if name in _DYNAMIC or state(name) else "0")
        k = end
    return out


@lru_cache(maxsize=4096)
def _tokens(condition: str) -> list[str]:
    return tokenize(condition)


class _Undecidable(Exception):
    """A name read whose states are not known (computed by the compiler, or being decided)."""


class _Bad(Exception):
    """Not an integer constant expression this evaluator takes on."""


class _Expression:
    """A ``#if`` expression over integers, after macro expansion: its value, or None when it
    cannot be known here (unknown parts, or arithmetic outside signed 64 bits)."""

    # Binary operators by precedence, loosest first.
    _BINARY = (("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="))
    _BINARY += (("<<", ">>"), ("+", "-"), ("*", "/", "%"))
    _PRECEDENCE = {op: level for level, ops in enumerate(_BINARY, 1) for op in ops}

    def __init__(self, toks: list[str]) -> None:
        self._toks = toks
        self._k = 0

    def value(self) -> int | None:
        try:
            found = self._conditional()
            if self._k != len(self._toks):
                raise _Bad
        except _Bad:
            return None
        return found

    def _peek(self) -> str:
        return self._toks[self._k] if self._k < len(self._toks) else ""

    def _take(self, expected: str) -> None:
        if self._peek() != expected:
            raise _Bad
        self._k += 1

    def _conditional(self) -> int | None:
        test = self._binary(1)
        if self._peek() != "?":
            return test
        self._k += 1
        yes = self._conditional()
        self._take(":")
        no = self._conditional()
        if test is None:
            return yes if yes == no else None
        return yes if test else no

    def _binary(self, loosest: int) -> int | None:
        """Operands joined by operators of precedence ``loosest`` or tighter."""
        left = self._unary()
        while True:
            op = self._peek()
            level = self._PRECEDENCE.get(op, 0)
            if level < loosest:
                return left
            self._k += 1
            left = _apply(op, left, self._binary(level + 1))

    def _unary(self) -> int | None:
        op = self._peek()
        if op in ("+", "-", "~", "!"):
            self._k += 1
            operand = self._unary()
            if operand is None:
                return None
            return _checked({"+": operand, "-": -operand, "~": ~operand, "!": int(not operand)}[op])
        if op == "(":
            self._k += 1
            inner = self._conditional()
            self._take(")")
            return inner
        self._k += 1
        literal = _INTEGER.fullmatch(op)
        if literal is None:
            raise _Bad  # also unsigned and character literals: left undecided
        digits = literal.group(1).replace("'", "")
        try:
            if digits[:2] in ("0b", "0B"):
                return _checked(int(digits[2:], 2))
            if digits[:2] in ("0x", "0X"):
                return _checked(int(digits[2:], 16))
            return _checked(int(digits, 8) if digits.startswith("0") else int(digits))
        except ValueError:
            raise _Bad from None


def _apply(op: str, left: int | None, right: int | None) -> int | None:
    """One binary operator in signed 64-bit arithmetic; None when the value cannot be known."""
    if op == "&&":
        return 0 if left == 0 or right == 0 else None if None in (left, right) else 1
    if op == "||":
        if (left is not None and left != 0) or (right is not None and right != 0):
            return 1
        return None if None in (left, right) else 0
    if left is None or right is None:
        return None
    if op in ("/", "%"):
        if right == 0:
            return None
        quotient = abs(left) // abs(right) * (1 if (left < 0) == (right < 0) else -1)
        return _checked(quotient if op == "/" else left - quotient * right)
    if op in ("<<", ">>"):
        if not 0 <= right < 64 or (op == "<<" and left < 0):
            return None
        return _checked(left << right if op == "<<" else left >> right)
    results = {
        "|": lambda: left | right,
        "^": lambda: left ^ right,
        "&": lambda: left & right,
        "==": lambda: int(left == right),
        "!=": lambda: int(left != right),
        "<": lambda: int(left < right),
        ">": lambda: int(left > right),
        "<=": lambda: int(left <= right),
        ">=": lambda: int(left >= right),
        "+": lambda: left + right,
        "-": lambda: left - right,
        "*": lambda: left * right,
    }
    return _checked(results[op]())


def _checked(value: int) -> int | None:
    """The value, or None outside the signed 64-bit range (overflow, or unsigned in C)."""
    return value if _LOW <= value <= _HIGH else None
