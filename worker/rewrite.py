"""Map client paths into the job root and map the compiler's answers back.

The compiler runs on ROOT + client path.  Going in, every absolute path in the arguments and in the
include-path variables gets the ROOT prefix, and `-ffile-prefix-map=ROOT=` makes GCC and Clang
write client paths into the object (DW_AT_comp_dir, DW_AT_name, STT_FILE, __FILE__).  Coming back,
ROOT is removed from stdout, stderr and dependency files; dependency files are re-wrapped, because
both compilers break their lines by column and ROOT made every name longer.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from adapter.options import Flag, ParseError, parse
from worker.errors import bad_request, refused_option
from worker.request import check_abs

PREFIX_MAPS = ("-ffile-prefix-map=", "-fdebug-prefix-map=", "-fmacro-prefix-map=")
# Spellings the option table does not list because the client never distributes them, but
# which would make a worker load code or read its own files: refused here as a second line.
EXTRA_REFUSED = ("--specs", "-fpass-plugin", "-load", "--plugin", "-Xclang", "-mllvm")
ENV_KEPT = ("LANG", "LC_ALL", "LC_MESSAGES", "LC_CTYPE", "SOURCE_DATE_EPOCH", "TZ")
ENV_PATHS = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH")


def to_root(root: str, path: str) -> str:
    """ROOT + an absolute client path (already validated to be normalised)."""
    return root if path == "/" else root + path


def inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + "/")


def resolve_in_root(root: str, cwd: str, path: str, what: str) -> str:
    """Where a path of the arguments lands in the root; relative ones may use '..' but not leave."""
    if path.startswith("/"):
        # Kept as written ('-I/p/build/../include' is common, and the dependency file must name
        # it as a local compile would); the root holds real folders, so a lexical check bounds it.
        if "\0" in path or not inside(root, os.path.normpath(root + path)):
            raise bad_request(f"{what} {path[:200]!r} leaves the job root")
        return to_root(root, path)
    mapped = os.path.normpath(os.path.join(to_root(root, cwd), path))
    if not inside(root, mapped):
        raise bad_request(f"{what} {path[:200]!r} leaves the job root")
    return mapped


def _with_value(tokens: tuple[str, ...], value: str, new: str) -> list[str]:
    """The argv tokens of one option with its value replaced, keeping its spelling."""
    if len(tokens) == 2:
        return [tokens[0], new]
    token = tokens[0]
    return [token[: len(token) - len(value)] + new]


def _prefix_map(root: str, value: str) -> str:
    """OLD=NEW with an absolute OLD moved into the root, so the user's map still applies."""
    old, sep, new = value.partition("=")
    if sep and old.startswith("/"):
        old = root + old
    return f"{old}{sep}{new}"


@dataclass
class Rewritten:
    """The arguments to run in the root and what they say about the files the compiler writes."""

    argv: list[str]
    written: list[str] = field(default_factory=list)  # mapped -o, -MF, ... values
    depfile: str | None = None  # mapped -MF value
    deps: bool = False  # -MD or -MMD: a dependency file is written even without -MF
    user_deps_only: bool = False  # -MMD: the dependency file leaves system headers out
    preprocessed: bool = False  # -x cpp-output or a .i/.ii input: no header is read
    rooted: list[str] = field(default_factory=list)  # absolute client paths now read in the root


def rewrite_args(args: list[str], root: str, cwd: str) -> Rewritten:
    """Rewrite the client's arguments for the root (our prefix map goes first: GCC tries the
    last-given map first, so the user's own maps keep precedence).

    Refuses (400 refused_option) what a worker must never run and what the client keeps local.
    """
    try:
        parsed = parse(args)
    except ParseError as e:
        raise bad_request(str(e)) from None
    out = Rewritten([f"-ffile-prefix-map={root}="])
    for arg in parsed:
        if arg.name is None:
            out.argv.append(_positional(arg.value or "", root, cwd))
            out.preprocessed = out.preprocessed or (arg.value or "").endswith((".i", ".ii"))
            continue
        name = arg.name
        if arg.flags & Flag.REFUSED:
            raise refused_option(name, "loads code or writes outside the job root")
        if arg.flags & Flag.LOCAL:
            raise refused_option(name, "such compiles are run on the client")
        if name.startswith(EXTRA_REFUSED):
            raise refused_option(name, "loads code or reads the worker's files")
        out.deps = out.deps or name in ("-MD", "-MMD")
        out.user_deps_only = out.user_deps_only or name == "-MMD"
        if name == "-x":
            out.preprocessed = (arg.value or "").endswith("cpp-output")
        if name in PREFIX_MAPS and arg.value is not None:
            out.argv += _with_value(arg.tokens, arg.value, _prefix_map(root, arg.value))
        elif arg.flags & Flag.PATH and arg.value:
            mapped = resolve_in_root(root, cwd, arg.value, name)
            if arg.flags & Flag.OUTPUT:
                out.written.append(mapped)
            if name == "-MF":
                out.depfile = mapped
            if arg.value.startswith("/") and not arg.flags & Flag.OUTPUT:
                out.rooted.append(os.path.normpath(arg.value))
            new = mapped if arg.value.startswith("/") else arg.value
            out.argv += _with_value(arg.tokens, arg.value, new)
        else:
            out.argv += arg.tokens
    return out


def _positional(value: str, root: str, cwd: str) -> str:
    """An input file: absolute ones move into the root; response files and stdin are refused."""
    if value.startswith("@"):
        raise refused_option(value[:200], "response files are expanded by the client")
    if value == "-":
        raise refused_option("-", "a worker has no standard input to compile")
    mapped = resolve_in_root(root, cwd, value, "input")
    return mapped if value.startswith("/") else value


def scrub_env(env: dict[str, str], root: str, path: str, tmpdir: str) -> dict[str, str]:
    """The compiler's environment: the worker's PATH, locale and reproducibility knobs only."""
    clean = {"PATH": path, "TMPDIR": tmpdir}
    for key in ENV_KEPT:
        if key in env:
            clean[key] = env[key]
    for key in ENV_PATHS:
        if key in env:
            parts = env[key].split(":")
            for part in parts:
                if part.startswith("/"):
                    check_abs(part.rstrip("/") or "/", f"env {key} entry")
            clean[key] = ":".join(to_root(root, p) if p.startswith("/") else p for p in parts)
    return clean


def env_rooted(env: dict[str, str]) -> list[str]:
    """The absolute folders of CPATH and friends, which scrub_env moves into the root."""
    return [
        os.path.normpath(part)
        for key in ENV_PATHS
        for part in env.get(key, "").split(":")
        if part.startswith("/")
    ]


def strip_root(data: bytes, root: str) -> bytes:
    """Remove ROOT from compiler output: it only ever prefixes a client path."""
    return data.replace(root.encode(), b"") if data else data


# A name in a make rule: escaped characters ('\\ ', '\\#') kept as written; a backslash before
# a newline continues the line and separates names.
_MAKE_NAME = re.compile(rb"(?:\\[^\n]|\\\Z|[^\s\\])+")


def _tokens(rule: bytes) -> list[bytes]:
    """Split one make rule into names, keeping escapes ('\\ ', '\\#') as written."""
    return _MAKE_NAME.findall(rule)


def depfile_inputs(data: bytes) -> list[str]:
    """The files a dependency file's first rule names as read, unescaped (make's quoting)."""
    rule = _first_rule(data)
    return [
        n.replace(b"\\ ", b" ")
        .replace(b"\\#", b"#")
        .replace(b"$$", b"$")
        .decode("utf-8", "surrogateescape")
        for n in (rule[1] if rule else [])
    ]


def _first_rule(data: bytes) -> tuple[list[bytes], list[bytes], int] | None:
    """A dependency file's first rule: (targets, prerequisites, offset just past it), names as
    written; None when it has no ':' (not a make rule)."""
    end = _first_rule_end(data)
    names = _tokens(data[:end])
    colon = next((i for i, n in enumerate(names) if n.endswith(b":")), None)
    if colon is None:
        return None
    targets = names[: colon + 1]
    targets[-1] = targets[-1][:-1]  # 'a.o:' or a ':' of its own
    return [t for t in targets if t], names[colon + 1 :], end


def _first_rule_end(text: bytes) -> int:
    """Offset just past the first newline that is not a line continuation."""
    i = text.find(b"\n")
    while i > 0 and text[i - 1 : i] == b"\\":
        i = text.find(b"\n", i + 1)
    return len(text) if i < 0 else i + 1


def _unescaped_len(name: bytes) -> int:
    """Length of a name before make quoting, as Clang counts columns."""
    return len(name) - name.count(b"\\ ") - name.count(b"\\#") - name.count(b"$$")


def _gcc_layout(targets: list[bytes], deps: list[bytes]) -> bytes:
    """GCC (libcpp mkdeps): break before a name that would pass column 72."""
    out = bytearray()
    col = 0
    for i, name in enumerate(targets + deps):
        if i == len(targets):
            out += b":"
            col += 1
        if col:
            if col + len(name) > 72:
                out += b" \\\n"
                col = 0
            col += 1
            out += b" "
        col += len(name)
        out += name
    if not deps:
        out += b":"
    return bytes(out + b"\n")


def _clang_layout(targets: list[bytes], deps: list[bytes]) -> bytes:
    """Clang (DependencyFileGenerator): 75 columns, room kept for a trailing ' \\'."""
    out = bytearray()
    col = 0
    for name in targets:
        if col == 0:
            col = len(name)
        elif col + len(name) + 2 > 75:
            col = len(name) + 2
            out += b" \\\n  "
        else:
            col += len(name) + 1
            out += b" "
        out += name
    out += b":"
    col += 1
    for name in deps:
        size = _unescaped_len(name)
        if col + size + 1 + 2 > 75:
            out += b" \\\n "
            col = 2
        out += b" " + name
        col += size + 1
    return bytes(out + b"\n")


def retarget_depfile(data: bytes, targets: list[bytes], family: str) -> bytes:
    """The dependency file with its first rule's targets replaced, wrapped as the compiler would.

    The result cache serves one compile's dependency file to another that names another object.
    """
    rule = _first_rule(data)
    if rule is None or rule[0] == targets:
        return data
    _, deps, end = rule
    layout = _clang_layout if family == "clang" else _gcc_layout
    return layout(targets, deps) + data[end:]


def rewrite_depfile(data: bytes, root: str, family: str) -> bytes:
    """A dependency file with client paths, wrapped as the compiler would have wrapped it."""
    if root.encode() not in data:
        return data
    rule = _first_rule(data)
    if rule is None:  # not a make rule after all: plain replacement is the best we can do
        return strip_root(data, root)
    targets, deps, end = rule
    targets = [strip_root(n, root) for n in targets]
    deps = [strip_root(n, root) for n in deps]
    layout = _clang_layout if family == "clang" else _gcc_layout
    return layout(targets, deps) + strip_root(data[end:], root)
