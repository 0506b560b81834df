"""Read one file's preprocessor directives: includes, macro definitions and probes.

Probes are ``__has_include`` and ``#pragma GCC dependency``: files looked up as an include would
be, shipped when found, but not read as source.

Conditionals are deliberately not evaluated: every branch is taken, so the result is a superset of
what the real preprocessor reads.  Their nesting and conditions are kept for each ``#define``,
though (``Macro.frames``, ``Facts.groups``): a definition under a branch whose condition is known
not to hold can be set aside, and definitions in different branches of a group that runs once
exclude each other, which lets the macro expander drop combinations no compile can produce.

Only directive lines are tokenized (a regular expression finds them), which keeps first-sight
scanning of large headers cheap.  Whitespace between tokens is not kept: header names built by
macros never depend on it in practice, and dropping it keeps the macro expander simple.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

# A directive: a line's start, optional blanks, '#' (or its digraph '%:', or trigraph '??=': GCC
# reads trigraphs in strict ISO modes), optional blanks, the directive name, then the
# rest of the logical line (backslash-newline continuations included, spliced out afterwards).  The
# match starts at the newline before the line (``scan`` prepends one for the first line): a literal
# first character lets the regular expression engine skip ahead, three times faster than '^'.
_DIRECTIVE = re.compile(
    rb"\n[ \t]*(?:#|%:|\?\?=)[ \t]*(include_next|include|import|define|undef"
    rb"|ifndef|ifdef|if|elifndef|elifdef|elif|else|endif|pragma(?=[ \t]+GCC[ \t]+dependency))\b"
    rb"([^\\\n]*(?:\\(?:\r?\n|.)[^\\\n]*)*)"
)
_SPLICE = re.compile(rb"\\\r?\n")
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\f\v\r\n]+|/\*.*?\*/|//[^\n]*)
  | (?P<str>(?:u8|u|U|L)?"(?:[^"\\]|\\.)*"|(?:u8|u|U|L)?'(?:[^'\\]|\\.)*')
  | (?P<id>[^\W\d]\w*)
  | (?P<num>\.?\d(?:[eEpP][+-]|[\w.])*)
  | (?P<punct>\#\#|\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|[-+*/%&|^!=<>]=|&&|\|\||::|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_HAS_INCLUDE = re.compile(r"\b__has_include(_next)?(?:__)?\s*\(")
# '#pragma GCC dependency "file"': the compiler looks the file up as an #include would and stops
# when it is missing, but reads none of it: a probe (shipped, not walked), not an include.
_DEPENDENCY = re.compile(r"\s*GCC\s+dependency\b")
_LITERAL_NAME = re.compile(r'\s*(?:"([^"\n]*)"|<([^>\n]*)>)')
_MACRO_NAME = re.compile(r"\s*([^\W\d]\w*)(\()?")
# '#ifndef G' or '#if !defined(G)': the opening of an include guard if '#define G' follows.
_GUARD = re.compile(r"\s*(?:!\s*defined\s*(?:\(\s*(\w+)\s*\)|(\w+)))\s*(?://.*|/\*.*)?$")
_IFNDEF = re.compile(r"\s*(\w+)")
# What hides a directive from the line-start regular expression or fakes one (a comment before
# '#', a raw string's lines, a spliced directive name): where any of it occurs the file's group
# nesting is not trusted.  Each expression starts with literal text, which the engine skips ahead
# to (a plain search for that text first costs more than it saves).
_TRICKY = (re.compile(rb"\*/[ \t]*#"), re.compile(rb'R"[^"\s()\\]{0,16}\('))
# A spliced directive name, once its '#' is found to start a line (a match starting at the newline
# would make the engine stop at every line).
_SPLICED = re.compile(rb"#[ \t]*\w*\\\r?\n")
_NAMES = {
    name.encode(): name
    for name in [
        "include_next",
        "include",
        "import",
        "define",
        "undef",
        "ifndef",
        "ifdef",
        "if",
        "elifndef",
        "elifdef",
        "elif",
        "else",
        "endif",
        "pragma",
    ]
}
_BARE = frozenset({"else", "endif"})  # what follows them is not read
_CONDITIONALS = frozenset({"if", "ifdef", "ifndef", "elif", "elifdef", "elifndef", "else", "endif"})


# A conditional group around a definition, ``(include guard, group number in the file)``, and the
# number of its branch (0 for '#if', one more for each '#elif' and '#else').  The guard is the one
# whose guarded lines hold the group ("" if none): see ``Macro``.
Frame = tuple[tuple[str, int], int]


@dataclass(frozen=True)
class Macro:
    """One ``#define``: ``params`` is None for an object-like macro.

    The replacement list is kept as written and tokenized on first use: a large header defines
    hundreds of macros of which a translation unit's computed includes consult a handful.

    ``frames`` are the conditional groups around the definition, outermost first (their
    conditions are in ``Facts.groups``).  A group inside an include guard (``#ifndef G`` directly
    followed by ``#define G``) names that guard: while nothing undefines ``G`` the guarded lines
    run at most once per compile, in whichever file carrying that guard comes first, so such a
    group takes one branch and definitions under different branches of it are never both made.
    Groups outside a guard may run many times.
    """

    name: str
    params: tuple[str, ...] | None
    variadic: bool
    text: str
    frames: tuple[Frame, ...] = ()

    @cached_property
    def body(self) -> tuple[str, ...]:
        """The replacement list's tokens."""
        return tuple(tokenize(self.text))


@dataclass(frozen=True)
class Directive:
    """An ``#include``-like directive, or a ``__has_include`` probe.

    ``form`` is '"' or '<' with ``name`` for a literal, or '' with ``tokens`` for a computed one.
    """

    kind: str  # 'include', 'include_next', 'import', 'has_include', 'has_include_next'
    form: str
    name: str
    tokens: tuple[str, ...]
    line: int

    @property
    def is_next(self) -> bool:
        """Whether the search continues after the folder where the current file was found."""
        return self.kind.endswith("_next")


@dataclass
class Facts:
    """Everything the analysis needs from one file."""

    includes: list[Directive] = field(default_factory=list)
    # For each include (in the same order): the frames of every place it appears at.
    places: list[list[tuple[Frame, ...]]] = field(default_factory=list)
    probes: list[Directive] = field(default_factory=list)
    macros: dict[str, list[Macro]] = field(default_factory=dict)
    undefs: set[str] = field(default_factory=set)  # names the file #undefs
    # Per conditional group (by number): each branch's condition, "defined X" for '#ifdef X',
    # "!defined X" for '#ifndef X', None for '#else'.
    groups: list[list[str | None]] = field(default_factory=list)
    uses_next: bool = False  # has an #include_next or __has_include_next: position matters


def tokenize(text: str) -> list[str]:
    """Split directive text into preprocessing tokens, dropping blanks and comments."""
    return [m.group() for m in _TOKEN.finditer(text) if m.lastgroup != "ws"]


def _logical_lines(data: bytes) -> Iterator[tuple[int, int, str, str]]:
    """Yield (offset of the newline before it, its end, directive name, rest of the line)."""
    for m in _DIRECTIVE.finditer(data):
        name, rest = m.groups()
        start, end = m.span()
        if b"\\" in rest:
            rest = _SPLICE.sub(b"", rest)
        if b"/*" in rest and _open_comment(rest):
            # A block comment spanning lines is one blank: the directive goes on after it.
            close = data.find(b"*/", end)
            close = len(data) if close < 0 else close + 2
            nl = data.find(b"\n", close)
            rest += b" " + data[end : len(data) if nl < 0 else nl]
            end = len(data) if nl < 0 else nl
        name = _NAMES[name]
        yield start, end, name, "" if name in _BARE else rest.decode("utf-8", "surrogateescape")


def _spliced(data: bytes) -> bool:
    """Whether a directive's name is spliced over lines ('#def', backslash, newline, 'ine')."""
    for m in _SPLICED.finditer(data):
        start = data.rfind(b"\n", 0, m.start()) + 1
        if not data[start : m.start()].strip(b" \t"):
            return True
    return False


def _open_comment(rest: bytes) -> bool:
    """Whether a block comment starts on this line and does not end on it."""
    start = rest.rfind(b"/*")
    return start >= 0 and rest.find(b"*/", start + 2) < 0 and b"//" not in rest[:start]


class _Groups:
    """The conditional groups open at one point of a file, as ``Macro.frames`` reports them."""

    def __init__(self, data: bytes, chains: list[list[str | None]]) -> None:
        self._open: list[list] = []  # per group: [number, branch, include guard or ""]
        self._chains = chains  # each group's conditions (``Facts.groups``)
        self.candidate = ""  # the G of an '#ifndef G' that the previous directive was
        self._frames: tuple[Frame, ...] | None = ()
        self._after = 0  # where the previous conditional directive ended
        self.trusted = not any(tricky.search(data) for tricky in _TRICKY) and not _spliced(data)

    def see(self, start: int, end: int, name: str, rest: str, data: bytes) -> None:
        """Follow a conditional directive or a ``#define``, found at ``data[start:end]``.

        Any other directive only clears ``candidate`` (it comes between '#ifndef G' and
        '#define G', which then guard nothing).
        """
        candidate, self.candidate = self.candidate, ""
        if name == "define":
            defined = _IFNDEF.match(rest) if candidate else None
            if defined and defined.group(1) == candidate and self._bare(start, data):
                self._open[-1][2] = candidate
                self._frames = None
            return
        if not self._bare(start, data):
            self.trusted = False
        self._after = end
        self._frames = None
        if name.startswith("if"):
            self._open.append([len(self._chains), 0, ""])
            self._chains.append([_condition(name, rest)])
            guard = _GUARD.match(rest) if name == "if" else None
            if guard is not None:
                self.candidate = guard.group(1) or guard.group(2)
            elif name == "ifndef" and (ifndef := _IFNDEF.match(rest)) is not None:
                self.candidate = ifndef.group(1)
        elif not self._open:
            self.trusted = False  # an '#else' or '#endif' without '#if'
        elif name == "endif":
            self._open.pop()
        else:
            self._open[-1][1] += 1
            self._open[-1][2] = ""  # past the guarded branch
            self._chains[self._open[-1][0]].append(_condition(name, rest))

    def _bare(self, start: int, data: bytes) -> bool:
        """Whether no block comment opened since the previous conditional directive is still
        open at ``start`` (else the line may be commented out: no directive at all)."""
        opened = data.rfind(b"/*", self._after, start)
        return opened < 0 or data.find(b"*/", opened, start) >= 0

    @property
    def frames(self) -> tuple[Frame, ...]:
        """The open groups, each with the include guard whose guarded lines hold it.

        An include guard's own group is left out: its condition ('!defined G', G defined by the
        file itself) is never decided, and leaving a group out only keeps more possible.
        """
        if self._frames is None:
            frames: list[Frame] = []
            guard = ""
            for number, branch, opened in self._open:
                if not opened:
                    frames.append(((guard, number), branch))
                guard = guard or opened
            self._frames = tuple(frames)
        return self._frames

    @property
    def sound(self) -> bool:
        """Whether the nesting seen so far can be trusted and every group is closed."""
        return self.trusted and not self._open


def scan(data: bytes) -> Facts:
    """Collect a file's include directives, macro definitions and __has_include probes."""
    facts = Facts()
    seen: dict[tuple[str, str, str, tuple[str, ...]], int] = {}
    unique: set[tuple[str, tuple[Frame, ...]]] = set()
    data = b"\n" + data
    groups = _Groups(data, facts.groups)
    line, counted = 0, 0
    for offset, end, name, rest in _logical_lines(data):
        if name == "define" or name in _CONDITIONALS:
            groups.see(offset, end, name, rest, data)
        else:
            groups.candidate = ""
        if name == "define":
            key = (rest, groups.frames)
            if key not in unique:
                unique.add(key)
                macro = _define(rest, key[1])
                if macro is not None:
                    facts.macros.setdefault(macro.name, []).append(macro)
        elif name == "undef":
            undone = _IFNDEF.match(rest)
            if undone is not None:
                facts.undefs.add(undone.group(1))
            continue
        elif name in _CONDITIONALS and name not in ("if", "elif"):
            continue
        probes = "__has_include" in rest
        if not probes and name in ("define", "if", "elif"):
            continue  # line numbers are counted only where a directive is reported
        line += data.count(b"\n", counted, offset + 1)
        counted = offset + 1
        if probes:
            facts.probes.extend(_probes(rest, line))
        if name == "pragma":
            facts.probes.extend(_dependency(rest, line))
            continue
        if name in ("define", "if", "elif"):
            continue
        directive = _include(name, rest, line)
        if directive is not None:
            key = (directive.kind, directive.form, directive.name, directive.tokens)
            index = seen.get(key)
            if index is None:
                seen[key] = len(facts.includes)
                facts.includes.append(directive)
                facts.places.append([groups.frames])
            elif groups.frames not in facts.places[index]:
                facts.places[index].append(groups.frames)  # Boost repeats includes a lot
    facts.uses_next = any(d.is_next for d in facts.includes + facts.probes)
    if not groups.sound:
        _forget_frames(facts)
    return facts


def _condition(name: str, rest: str) -> str | None:
    """A branch's condition as ``Facts.groups`` keeps it."""
    if name in ("if", "elif"):
        return rest
    if name == "else":
        return None
    ident = _IFNDEF.match(rest)
    negate = "!" if name.endswith("ndef") else ""
    return f"{negate}defined {ident.group(1) if ident else ''}"


def _forget_frames(facts: Facts) -> None:
    """Drop every frame of a file whose group nesting cannot be trusted."""
    facts.groups.clear()
    facts.places = [[()] for _ in facts.includes]
    for name, macros in facts.macros.items():
        facts.macros[name] = list(dict.fromkeys(replace(m, frames=()) for m in macros))


def _include(kind: str, rest: str, line: int) -> Directive | None:
    """Parse what follows ``#include``: a literal header name or tokens to macro-expand."""
    literal = _LITERAL_NAME.match(rest)
    if literal is not None:
        return _literal(kind, literal, line)
    tokens = tuple(tokenize(rest))
    if not tokens:
        return None
    return Directive(kind, "", "", tokens, line)


def _define(rest: str, frames: tuple[Frame, ...]) -> Macro | None:
    """Parse ``NAME body`` or ``NAME(params) body`` (no blank before '(' for function-like)."""
    m = _MACRO_NAME.match(rest)
    if m is None:
        return None
    name = m.group(1)
    if m.group(2) is None:
        return Macro(name, None, False, rest[m.end() :].strip(), frames)
    close = rest.find(")", m.end())
    if close < 0:
        return None
    params: list[str] = []
    variadic = False
    for raw in rest[m.end() : close].split(","):
        param = raw.strip()
        if param.endswith("..."):
            variadic = True
            param = param[:-3].strip() or "__VA_ARGS__"
        if param:
            params.append(param)
    return Macro(name, tuple(params), variadic, rest[close + 1 :].strip(), frames)


def _probes(rest: str, line: int) -> list[Directive]:
    """Find each ``__has_include(...)`` / ``__has_include_next(...)`` in a directive line."""
    found: list[Directive] = []
    for m in _HAS_INCLUDE.finditer(rest):
        kind = "has_include_next" if m.group(1) else "has_include"
        literal = _LITERAL_NAME.match(rest, m.end())
        if literal is not None:
            found.append(_literal(kind, literal, line))
            continue
        tokens = _balanced(tokenize(rest[m.end() :]))
        if tokens:
            found.append(Directive(kind, "", "", tuple(tokens), line))
    return found


def _dependency(rest: str, line: int) -> list[Directive]:
    """The file a ``#pragma GCC dependency`` names, as a literal ``__has_include`` probe."""
    m = _DEPENDENCY.match(rest)
    literal = _LITERAL_NAME.match(rest, m.end()) if m else None
    return [] if literal is None else [_literal("has_include", literal, line)]


def _literal(kind: str, literal: re.Match[str], line: int) -> Directive:
    """The directive for a ``"name"`` or ``<name>`` matched by ``_LITERAL_NAME``."""
    quoted, angled = literal.groups()
    if quoted is not None:
        return Directive(kind, '"', quoted, (), line)
    return Directive(kind, "<", angled, (), line)


def _balanced(tokens: list[str]) -> list[str]:
    """The tokens up to the ')' that closes an already opened parenthesis."""
    depth = 1
    for i, tok in enumerate(tokens):
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
            if depth == 0:
                return tokens[:i]
    return []
