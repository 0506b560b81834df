"""Read one file's preprocessor directives: includes, macro definitions and __has_include probes.

Conditionals are deliberately not evaluated: every branch is taken, so the result is a superset of
what the real preprocessor reads.  Only directive lines are tokenized (a regular expression finds
them), which keeps first-sight scanning of large headers cheap.  Whitespace between tokens is not
kept: header names built by macros never depend on it in practice, and dropping it keeps the macro
expander simple.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A directive line: optional blanks, '#', optional blanks, the directive name.  Continuation lines
# are joined afterwards.
_DIRECTIVE = re.compile(
    rb"^[ \t]*#[ \t]*(include_next|include|import|define|if|elif)\b([^\n]*)", re.MULTILINE
)
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\f\v\r]+|/\*.*?\*/|//.*)
  | (?P<str>(?:u8|u|U|L)?"(?:[^"\\]|\\.)*"|(?:u8|u|U|L)?'(?:[^'\\]|\\.)*')
  | (?P<id>[^\W\d]\w*)
  | (?P<num>\.?\d(?:[eEpP][+-]|[\w.])*)
  | (?P<punct>\#\#|\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|[-+*/%&|^!=<>]=|&&|\|\||::|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_HAS_INCLUDE = re.compile(r"\b__has_include(_next)?(?:__)?\s*\(")
_LITERAL_NAME = re.compile(r'\s*(?:"([^"\n]*)"|<([^>\n]*)>)')


@dataclass(frozen=True)
class Macro:
    """One ``#define``: ``params`` is None for an object-like macro."""

    name: str
    params: tuple[str, ...] | None
    variadic: bool
    body: tuple[str, ...]


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


def _logical_lines(data: bytes):
    """Yield (line number, directive name, rest of the logical line) for each directive."""
    for m in _DIRECTIVE.finditer(data):
        rest = m.group(2)
        end = m.end()
        # Join continuation lines and unfinished block comments so the directive is whole.
        while rest.endswith(b"\\") or rest.endswith(b"\\\r") or _open_comment(rest):
            nl = data.find(b"\n", end + 1)
            nl = len(data) if nl < 0 else nl
            if rest.endswith(b"\\") or rest.endswith(b"\\\r"):
                rest = rest.rstrip(b"\r")[:-1]
            rest += b" " + data[end + 1 : nl]
            if nl >= len(data):
                break
            end = nl
        line = data.count(b"\n", 0, m.start()) + 1
        yield line, m.group(1).decode(), rest.decode("utf-8", "surrogateescape")


def _open_comment(rest: bytes) -> bool:
    """Whether a block comment starts on this line and does not end on it."""
    start = rest.rfind(b"/*")
    return start >= 0 and rest.find(b"*/", start + 2) < 0 and b"//" not in rest[:start]


def scan(data: bytes) -> Facts:
    """Collect a file's include directives, macro definitions and __has_include probes."""
    facts = Facts()
    seen: set[tuple[str, str, str, tuple[str, ...]]] = set()
    for line, name, rest in _logical_lines(data):
        if name in ("include", "include_next", "import"):
            directive = _include(name, rest, line)
            if directive is not None:
                key = (directive.kind, directive.form, directive.name, directive.tokens)
                if key not in seen:  # Boost repeats one computed include hundreds of times
                    seen.add(key)
                    facts.includes.append(directive)
        elif name == "define":
            macro = _define(rest)
            if macro is not None:
                defs = facts.macros.setdefault(macro.name, [])
                if macro not in defs:
                    defs.append(macro)
        if "__has_include" in rest:
            facts.probes.extend(_probes(rest, line))
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
    m = re.match(r"\s*([^\W\d]\w*)(\()?", rest)
    if m is None:
        return None
    name = m.group(1)
    if m.group(2) is None:
        return Macro(name, None, False, tuple(tokenize(rest[m.end() :])))
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
    return Macro(name, tuple(params), variadic, tuple(tokenize(rest[close + 1 :])))


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
