"""Read one file's preprocessor directives: includes, macro definitions and __has_include probes.

Conditionals are deliberately not evaluated: every branch is taken, so the result is a superset of
what the real preprocessor reads.  Only directive lines are tokenized (a regular expression finds
them), which keeps first-sight scanning of large headers cheap.  Whitespace between tokens is not
kept: header names built by macros never depend on it in practice, and dropping it keeps the macro
expander simple.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

# A directive: a line's start, optional blanks, '#', optional blanks, the directive name, then the
# rest of the logical line (backslash-newline continuations included, spliced out afterwards).  The
# match starts at the newline before the line (``scan`` prepends one for the first line): a literal
# first character lets the regular expression engine skip ahead, three times faster than '^'.
_DIRECTIVE = re.compile(
    rb"\n[ \t]*#[ \t]*(include_next|include|import|define|if|elif)\b"
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
_LITERAL_NAME = re.compile(r'\s*(?:"([^"\n]*)"|<([^>\n]*)>)')
_MACRO_NAME = re.compile(r"\s*([^\W\d]\w*)(\()?")


@dataclass(frozen=True)
class Macro:
    """One ``#define``: ``params`` is None for an object-like macro.

    The replacement list is kept as written and tokenized on first use: a large header defines
    hundreds of macros of which a translation unit's computed includes consult a handful.
    """

    name: str
    params: tuple[str, ...] | None
    variadic: bool
    text: str

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
    probes: list[Directive] = field(default_factory=list)
    macros: dict[str, list[Macro]] = field(default_factory=dict)
    uses_next: bool = False  # has an #include_next or __has_include_next: position matters


def tokenize(text: str) -> list[str]:
    """Split directive text into preprocessing tokens, dropping blanks and comments."""
    return [m.group() for m in _TOKEN.finditer(text) if m.lastgroup != "ws"]


def _logical_lines(data: bytes) -> Iterator[tuple[int, str, str]]:
    """Yield (offset of the newline before it, directive name, rest of its logical line)."""
    for m in _DIRECTIVE.finditer(data):
        rest = m.group(2)
        if b"\\" in rest:
            rest = _SPLICE.sub(b"", rest)
        if b"/*" in rest and _open_comment(rest):
            # A block comment spanning lines is one blank: the directive goes on after it.
            close = data.find(b"*/", m.end())
            close = len(data) if close < 0 else close + 2
            nl = data.find(b"\n", close)
            rest += b" " + data[m.end() : len(data) if nl < 0 else nl]
        yield m.start(), m.group(1).decode(), rest.decode("utf-8", "surrogateescape")


def _open_comment(rest: bytes) -> bool:
    """Whether a block comment starts on this line and does not end on it."""
    start = rest.rfind(b"/*")
    return start >= 0 and rest.find(b"*/", start + 2) < 0 and b"//" not in rest[:start]


def scan(data: bytes) -> Facts:
    """Collect a file's include directives, macro definitions and __has_include probes."""
    facts = Facts()
    seen: set[tuple[str, str, str, tuple[str, ...]]] = set()
    unique: set[Macro] = set()
    data = b"\n" + data
    line, counted = 0, 0
    for offset, name, rest in _logical_lines(data):
        if name == "define":
            macro = _define(rest)
            if macro is not None and macro not in unique:
                unique.add(macro)
                facts.macros.setdefault(macro.name, []).append(macro)
        probes = "__has_include" in rest
        if not probes and name in ("define", "if", "elif"):
            continue  # line numbers are counted only where a directive is reported
        line += data.count(b"\n", counted, offset + 1)
        counted = offset + 1
        if probes:
            facts.probes.extend(_probes(rest, line))
        if name in ("define", "if", "elif"):
            continue
        directive = _include(name, rest, line)
        if directive is not None:
            key = (directive.kind, directive.form, directive.name, directive.tokens)
            if key not in seen:  # Boost repeats one computed include hundreds of times
                seen.add(key)
                facts.includes.append(directive)
    facts.uses_next = any(d.is_next for d in facts.includes + facts.probes)
    return facts


def _include(kind: str, rest: str, line: int) -> Directive | None:
    """Parse what follows ``#include``: a literal header name or tokens to macro-expand."""
    literal = _LITERAL_NAME.match(rest)
    if literal is not None:
        quoted, angled = literal.groups()
        if quoted is not None:
            return Directive(kind, '"', quoted, (), line)
        return Directive(kind, "<", angled, (), line)
    tokens = tuple(tokenize(rest))
    if not tokens:
        return None
    return Directive(kind, "", "", tokens, line)


def _define(rest: str) -> Macro | None:
    """Parse ``NAME body`` or ``NAME(params) body`` (no blank before '(' for function-like)."""
    m = _MACRO_NAME.match(rest)
    if m is None:
        return None
    name = m.group(1)
    if m.group(2) is None:
        return Macro(name, None, False, rest[m.end() :].strip())
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
    return Macro(name, tuple(params), variadic, rest[close + 1 :].strip())


def _probes(rest: str, line: int) -> list[Directive]:
    """Find each ``__has_include(...)`` / ``__has_include_next(...)`` in a directive line."""
    found: list[Directive] = []
    for m in _HAS_INCLUDE.finditer(rest):
        kind = "has_include_next" if m.group(1) else "has_include"
        literal = _LITERAL_NAME.match(rest, m.end())
        if literal is not None:
            quoted, angled = literal.groups()
            form, name = ('"', quoted) if quoted is not None else ("<", angled)
            found.append(Directive(kind, form, name, (), line))
            continue
        tokens = _balanced(tokenize(rest[m.end() :]))
        if tokens:
            found.append(Directive(kind, "", "", tuple(tokens), line))
    return found


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
