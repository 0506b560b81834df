"""The table of GCC and Clang options that pumpcc needs to understand.

One sorted, declarative table (the ccache model): each option says how it takes its value and what
it means for distribution.  Options not in the table are plain flags without a value (``-O2``,
``-Wall``, ``-fPIC``); every option that takes a *separate* value must be listed, or the parser
would mistake its value for an input file.  ``tests/test_options.py`` checks the table's invariants.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Flag(enum.IntFlag):
    """What an option is, as bits, so that one table entry says everything about it."""

    TAKES_ARG = enum.auto()  # the option has a value
    SEPARATE = enum.auto()  # ... which may be the next argument: "-I dir"
    JOINED = enum.auto()  # ... which may be glued on: "-Idir"
    EQ = enum.auto()  # ... which may follow "=": "--sysroot=dir"
    PATH = enum.auto()  # the value is a file system path (relative to the cwd)
    INPUT = enum.auto()  # the path is read by the compiler: it must exist in the job root
    OUTPUT = enum.auto()  # the path is written by the compiler
    SEARCH = enum.auto()  # changes where headers are searched
    PREPROC = enum.auto()  # changes what the preprocessor sees (macros, forced includes)
    LOCAL = enum.auto()  # pumpcc runs such a command locally (the reason names the option)
    REFUSED = enum.auto()  # a worker must never run it: it loads code or writes outside the root
    PREFIX = enum.auto()  # the name is a prefix: "-fdump-" matches "-fdump-tree-all"


F = Flag
_SEP_JOINED = F.TAKES_ARG | F.SEPARATE | F.JOINED
_SEARCH_DIR = _SEP_JOINED | F.PATH | F.SEARCH | F.PREPROC
_EQ_ONLY = F.TAKES_ARG | F.EQ


@dataclass(frozen=True)
class Option:
    """One row of the table."""

    name: str
    flags: Flag


# Sorted by name (checked by the tests).  Keep each row to what the option really does.
TABLE: tuple[Option, ...] = (
    Option("--coverage", F.LOCAL),  # writes .gcno beside the object, records absolute paths
    Option("--gcc-toolchain", _EQ_ONLY | F.SEPARATE | F.PATH | F.REFUSED | F.LOCAL),
    Option("--param", F.TAKES_ARG | F.SEPARATE | F.EQ),
    Option("--save-temps", F.LOCAL),
    Option("--serialize-diagnostics", F.TAKES_ARG | F.SEPARATE | F.PATH | F.OUTPUT | F.LOCAL),
    Option("--sysroot", F.TAKES_ARG | F.SEPARATE | F.EQ | F.PATH | F.SEARCH),
    Option("--target", _EQ_ONLY),
    Option("-A", _SEP_JOINED | F.PREPROC),
    Option("-B", _SEP_JOINED | F.PATH | F.REFUSED | F.LOCAL),
    Option("-D", _SEP_JOINED | F.PREPROC),
    Option("-E", F.LOCAL),
    Option("-F", _SEP_JOINED | F.PATH | F.SEARCH | F.LOCAL),
    Option("-I", _SEARCH_DIR),
    Option("-L", _SEP_JOINED | F.PATH),
    Option("-M", F.LOCAL),
    Option("-MD", F.PREPROC),
    Option("-MF", _SEP_JOINED | F.PATH | F.OUTPUT),
    Option("-MG", F.LOCAL),  # missing headers become dependencies: needs the client's view
    Option("-MJ", _SEP_JOINED | F.PATH | F.OUTPUT | F.LOCAL),
    Option("-MM", F.LOCAL),
    Option("-MMD", F.PREPROC),
    Option("-MP", F.PREPROC),
    Option("-MQ", _SEP_JOINED),
    Option("-MT", _SEP_JOINED),
    Option("-S", F.LOCAL),
    Option("-T", _SEP_JOINED | F.PATH),
    Option("-U", _SEP_JOINED | F.PREPROC),
    Option("-Wa,", F.TAKES_ARG | F.JOINED | F.LOCAL),  # assembler options may name files
    Option("-Wl,", F.TAKES_ARG | F.JOINED),
    Option("-Wp,", F.TAKES_ARG | F.JOINED | F.LOCAL),  # preprocessor options bypass the table
    Option("-Xassembler", F.TAKES_ARG | F.SEPARATE | F.LOCAL),
    Option("-Xclang", F.TAKES_ARG | F.SEPARATE | F.LOCAL),
    Option("-Xlinker", F.TAKES_ARG | F.SEPARATE),
    Option("-Xpreprocessor", F.TAKES_ARG | F.SEPARATE | F.LOCAL),
    Option("-ansi", F.PREPROC),
    Option("-arch", F.TAKES_ARG | F.SEPARATE | F.LOCAL),
    Option("-aux-info", F.TAKES_ARG | F.SEPARATE | F.PATH | F.OUTPUT | F.LOCAL),
    Option("-cxx-isystem", _SEARCH_DIR),
    Option("-dumpbase", F.TAKES_ARG | F.SEPARATE),
    Option("-dumpbase-ext", F.TAKES_ARG | F.SEPARATE),
    Option("-dumpdir", F.TAKES_ARG | F.SEPARATE | F.PATH | F.LOCAL),
    Option("-e", _SEP_JOINED),
    Option("-fcallgraph-info", F.PREFIX | F.LOCAL),  # writes .ci files beside the object
    Option("-fdebug-prefix-map=", F.TAKES_ARG | F.JOINED),
    Option("-fdump-", F.PREFIX | F.REFUSED | F.LOCAL),  # dump files land beside the object
    Option("-ffile-prefix-map=", F.TAKES_ARG | F.JOINED),
    Option("-fmacro-prefix-map=", F.TAKES_ARG | F.JOINED),
    Option("-fmodule-mapper=", F.TAKES_ARG | F.JOINED | F.REFUSED | F.LOCAL),
    Option("-fmodules", F.PREFIX | F.LOCAL),
    Option("-fplugin", F.PREFIX | F.REFUSED | F.LOCAL),  # -fplugin=, -fplugin-arg-
    Option("-fprofile-", F.PREFIX | F.LOCAL),  # profile data files are read or written by path
    Option("-frecord-gcc-switches", F.LOCAL),  # records the worker's rewritten command line
    Option("-fstack-usage", F.LOCAL),  # writes .su beside the object
    Option("-ftest-coverage", F.LOCAL),
    Option("-gcc-toolchain", F.TAKES_ARG | F.SEPARATE | F.PATH | F.REFUSED | F.LOCAL),
    Option("-gsplit-dwarf", F.LOCAL),  # a second output, .dwo, with its own path
    Option("-idirafter", _SEARCH_DIR),
    Option("-iframework", _SEARCH_DIR | F.LOCAL),
    Option("-imacros", _SEP_JOINED | F.PATH | F.INPUT | F.PREPROC),
    Option("-imultiarch", _SEP_JOINED | F.SEARCH),
    Option("-imultilib", _SEP_JOINED | F.SEARCH),
    Option("-include", _SEP_JOINED | F.PATH | F.INPUT | F.PREPROC),
    Option("-include-pch", F.TAKES_ARG | F.SEPARATE | F.PATH | F.INPUT | F.LOCAL),
    Option("-iplugindir=", F.TAKES_ARG | F.JOINED | F.REFUSED | F.LOCAL),
    Option("-iprefix", _SEP_JOINED | F.PATH | F.SEARCH),
    Option("-iquote", _SEARCH_DIR),
    Option("-isysroot", _SEP_JOINED | F.PATH | F.SEARCH),
    Option("-isystem", _SEARCH_DIR),
    Option("-ivfsoverlay", F.TAKES_ARG | F.SEPARATE | F.PATH | F.LOCAL),
    Option("-iwithprefix", _SEP_JOINED | F.SEARCH | F.PREPROC),
    Option("-iwithprefixbefore", _SEP_JOINED | F.SEARCH | F.PREPROC),
    Option("-l", _SEP_JOINED),
    Option("-main-file-name", F.TAKES_ARG | F.SEPARATE | F.LOCAL),
    Option("-o", _SEP_JOINED | F.PATH | F.OUTPUT),
    Option("-save-temps", F.PREFIX | F.LOCAL),
    Option("-specs", F.TAKES_ARG | F.SEPARATE | F.EQ | F.PATH | F.REFUSED | F.LOCAL),
    Option("-target", F.TAKES_ARG | F.SEPARATE),
    Option("-u", _SEP_JOINED),
    Option("-undef", F.PREPROC),
    Option("-working-directory", F.TAKES_ARG | F.SEPARATE | F.EQ | F.LOCAL),
    Option("-wrapper", F.TAKES_ARG | F.SEPARATE | F.REFUSED | F.LOCAL),
    Option("-x", _SEP_JOINED),
    Option("-z", _SEP_JOINED),
)

_BY_NAME: dict[str, Option] = {o.name: o for o in TABLE}
# Longest names first, so "-include-pch" wins over "-include" and "-iwithprefixbefore" over
# "-iwithprefix" when matching a glued value.
_GLUED: tuple[Option, ...] = tuple(
    sorted(
        (o for o in TABLE if o.flags & (F.JOINED | F.EQ | F.PREFIX)),
        key=lambda o: -len(o.name),
    )
)


@dataclass(frozen=True)
class Arg:
    """One parsed argument: an option with its value, or a positional input."""

    name: (
        str | None
    )  # canonical spelling from the table, the token itself if unknown, None if positional
    value: str | None
    tokens: tuple[str, ...]
    flags: Flag


class ParseError(ValueError):
    """The command cannot be parsed (an option lacks its value)."""


# Glued candidates by their first two characters: most tokens ("-O2", "-Wall") have none.
_GLUED_BY_START: dict[str, tuple[Option, ...]] = {}
for _option in _GLUED:
    _GLUED_BY_START[_option.name[:2]] = _GLUED_BY_START.get(_option.name[:2], ()) + (_option,)


def lookup(token: str) -> tuple[Option, str | None] | None:
    """Find the table row for one token and the value glued to it, if any."""
    exact = _BY_NAME.get(token)
    if exact is not None:
        return exact, None
    for option in _GLUED_BY_START.get(token[:2], ()):
        name = option.name
        if not token.startswith(name):
            continue
        rest = token[len(name) :]
        if option.flags & F.PREFIX:
            return option, rest or None
        if option.flags & F.JOINED:
            return option, rest
        if option.flags & F.EQ and rest.startswith("="):
            return option, rest[1:]
    return None


def parse(args: list[str]) -> list[Arg]:
    """Split a compiler's arguments into options with values and positional inputs."""
    parsed: list[Arg] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "-" or not token.startswith("-"):
            parsed.append(Arg(None, token, (token,), Flag(0)))
            continue
        found = lookup(token)
        if found is None:
            parsed.append(Arg(token, None, (token,), Flag(0)))
            continue
        option, value = found
        if option.flags & F.TAKES_ARG and value is None and option.flags & F.SEPARATE:
            if i >= len(args):
                raise ParseError(f"option {token} needs a value")
            value = args[i]
            parsed.append(Arg(option.name, value, (token, value), option.flags))
            i += 1
            continue
        parsed.append(Arg(option.name, value, (token,), option.flags))
    return parsed
