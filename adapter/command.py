"""Classify a compiler command: a distributable compile, or something to run locally and why.

A command is distributable when it compiles exactly one C, C++, Objective-C or preprocessed
assembly source to an object (``-c``) and uses no option the table marks LOCAL.  Everything else
(linking, ``-E``, ``-M`` without ``-c``, several sources, stdin, precompiled headers) runs locally;
the reason is returned as data and becomes a stats counter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from adapter.options import Arg, Flag, ParseError, parse

# Suffix -> language, as gcc's driver decides it (only what pumpcc distributes).
_LANGUAGE_BY_SUFFIX = {
    ".c": "c",
    ".cc": "c++",
    ".cp": "c++",
    ".cxx": "c++",
    ".cpp": "c++",
    ".CPP": "c++",
    ".c++": "c++",
    ".C": "c++",
    ".m": "objective-c",
    ".mm": "objective-c++",
    ".M": "objective-c++",
    ".S": "assembler-with-cpp",
    ".sx": "assembler-with-cpp",
}
DISTRIBUTABLE_LANGUAGES = frozenset(_LANGUAGE_BY_SUFFIX.values())
_HEADER_SUFFIXES = frozenset({".h", ".hh", ".hpp", ".hxx", ".h++", ".H", ".tcc"})
_HEADER_LANGUAGES = frozenset({"c-header", "c++-header", "objective-c-header"})
_NOT_COMPILES = frozenset({"-E", "-M", "-MM", "-S"})  # steps that stop before an object


@dataclass
class Compile:
    """A compile that can run on a worker (see ARCHITECTURE.md for each field)."""

    argv0: str
    compiler: str
    args: list[str]
    parsed: list[Arg]
    cwd: str
    env: dict[str, str]
    language: str
    source: str
    output: str
    dep_file: str | None
    outputs: list[str] = field(default_factory=list)  # every file the compile writes, as given


@dataclass
class Local:
    """A command to run on this machine, with the stats counter that says why."""

    reason: str
    detail: str = ""


def resolve_compiler(argv0: str, cwd: str, env: dict[str, str]) -> str | None:
    """Find the real compiler binary the way a shell would: by path, or on PATH."""
    if "/" in argv0:
        path = os.path.join(cwd, argv0)
        return path if os.access(path, os.X_OK) else None
    for folder in env.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder or ".", argv0)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.join(cwd, path)
    return None


def expand_response_files(args: list[str], cwd: str, depth: int = 0) -> list[str]:
    """Replace each ``@file`` by the arguments it holds, as gcc does (unreadable ones stay)."""
    if depth > 10 or not any(a.startswith("@") for a in args):
        return args
    expanded: list[str] = []
    for arg in args:
        if not arg.startswith("@") or len(arg) == 1:
            expanded.append(arg)
            continue
        try:
            with open(os.path.join(cwd, arg[1:]), encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError:
            expanded.append(arg)
            continue
        expanded.extend(expand_response_files(split_response_file(text), cwd, depth + 1))
    return expanded


def split_response_file(text: str) -> list[str]:
    """Split a response file like libiberty's buildargv: whitespace, quotes and backslashes."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    chars = iter(text)
    for ch in chars:
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\":
                word.append(next(chars, ""))
            else:
                word.append(ch)
        elif ch in " \t\r\n\v\f":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        elif ch in "'\"":
            quote, in_word = ch, True
        elif ch == "\\":
            word.append(next(chars, ""))
            in_word = True
        else:
            word.append(ch)
            in_word = True
    if in_word:
        words.append("".join(word))
    return words


def _language_of(source: str, forced: str | None) -> str:
    if forced and forced != "none":
        return forced
    suffix = os.path.splitext(source)[1]
    if suffix in _HEADER_SUFFIXES:
        return "c-header"
    return _LANGUAGE_BY_SUFFIX.get(suffix, "")


def _default_output(source: str) -> str:
    return os.path.splitext(os.path.basename(source))[0] + ".o"


def _dep_file(parsed: list[Arg], output: str) -> str | None:
    """Where gcc writes the dependency file for -MD/-MMD: -MF, else the object's name with .d."""
    if not any(a.name in ("-MD", "-MMD") for a in parsed):
        return None
    explicit = [a.value for a in parsed if a.name == "-MF"]
    if explicit:
        return explicit[-1]
    return os.path.splitext(output)[0] + ".d"


def classify(argv: list[str], cwd: str, env: dict[str, str]) -> Compile | Local:
    """Decide whether ``argv`` (compiler first) is a compile pumpcc can send to a worker."""
    if len(argv) < 2:
        return Local("not_compile", "no arguments")
    args = expand_response_files(argv[1:], cwd)
    try:
        parsed = parse(args)
    except ParseError as e:
        return Local("bad_args", str(e))

    sources: list[tuple[str, str | None]] = []
    language: str | None = None
    compile_only = False
    local_only: Arg | None = None
    for arg in parsed:
        if arg.name is None:
            sources.append((arg.value or "", language))
        elif arg.name == "-x":
            language = arg.value
        elif arg.name == "-c":
            compile_only = True
        elif arg.flags & Flag.LOCAL and local_only is None:
            local_only = arg
    # A link with a local-only option (Bazel links with -B<its compiler's folder>) is a link.
    if local_only is not None and (compile_only or local_only.name in _NOT_COMPILES):
        kind = "not_compile" if local_only.name in _NOT_COMPILES else "unsupported_args"
        return Local(kind, " ".join(local_only.tokens))
    if not compile_only:
        return Local("not_compile", "no -c (linking or another step)")
    if not sources:
        return Local("not_compile", "no input file")
    if len(sources) > 1:
        return Local("multiple_sources", " ".join(s for s, _ in sources))
    source, forced = sources[0]
    if source == "-":
        return Local("stdin_source", "source read from standard input")
    lang = _language_of(source, forced)
    if lang in _HEADER_LANGUAGES or lang.endswith("-header"):
        return Local("precompiled_header", source)
    if lang not in DISTRIBUTABLE_LANGUAGES:
        return Local("unsupported_language", f"{source} ({lang or 'unknown suffix'})")

    compiler = resolve_compiler(argv[0], cwd, env)
    if compiler is None:
        return Local("compiler_not_found", argv[0])
    outputs = [a.value for a in parsed if a.name == "-o"]
    output = outputs[-1] if outputs else _default_output(source)
    if output == "-":
        return Local("unsupported_args", "-o - (object to standard output)")
    dep_file = _dep_file(parsed, output)
    return Compile(
        argv0=argv[0],
        compiler=compiler,
        args=args,
        parsed=parsed,
        cwd=cwd,
        env=env,
        language=lang,
        source=source,
        output=output,
        dep_file=dep_file,
        outputs=[output] + ([dep_file] if dep_file else []),
    )
