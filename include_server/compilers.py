"""Compiler identity and the compiler's own include folders and predefined macros.

The analysis must know where ``#include <stdio.h>`` lands without running the preprocessor on the
source, so it asks the compiler once per (compiler, language, options that change the answer) with
an empty input (``-E -v -`` and ``-dM -E -``) and caches the answer for the life of the server.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass

# Environment variables that add search folders: the analysis applies them itself from the
# compile's environment, so they must not leak into the compiler's answer about its defaults.
_SEARCH_ENV = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH")

# Options whose presence changes the default folders or the predefined macros.  Anything else
# (warnings, -I, -D, outputs) is left out so that one query serves a whole build.
_AFFECTING_PREFIXES = ("-m", "-f", "-O", "-std", "-stdlib", "--target", "-target", "--sysroot")
_AFFECTING_EXACT = frozenset(
    {"-ansi", "-undef", "-pthread", "-nostdinc", "-nostdinc++", "-isysroot", "-imultiarch"}
)
_NOT_AFFECTING_F = (
    "-fdiagnostics",
    "-fmessage-length",
    "-fdebug-prefix-map",
    "-ffile-prefix-map",
    "-fmacro-prefix-map",
    "-fcolor-diagnostics",
    "-fno-color-diagnostics",
)


@dataclass(frozen=True)
class Defaults:
    """What the compiler adds by itself for one language and option set."""

    quote_dirs: tuple[str, ...]  # rarely non-empty ("#include "..." search starts here")
    bracket_dirs: tuple[str, ...]  # the default system folders, in search order, normalised
    predefined: str  # the text of ``-dM -E``: one ``#define`` per line


@dataclass(frozen=True)
class CompilerInfo:
    """Who the compiler is; the key under which workers find their own copy of it."""

    path: str
    version: str
    target: str

    def include_dirs(self, language: str, args_affecting: tuple[str, ...]) -> Defaults:
        """Default include folders and predefined macros, asked of the compiler once and cached.

        ``args_affecting`` is what :func:`affecting_args` keeps of the compile's arguments.
        """
        key = (self, language, args_affecting)
        with _lock:
            found = _defaults.get(key)
        if found is None:
            found = _ask_defaults(self.path, language, args_affecting)
            with _lock:
                _defaults[key] = found
        return found


_lock = threading.Lock()
_infos: dict[tuple[str, int, int], CompilerInfo] = {}
_defaults: dict[tuple[CompilerInfo, str, tuple[str, ...]], Defaults] = {}


def affecting_args(tokens: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Keep the argument tokens that change default folders or predefined macros.

    ``tokens`` holds each parsed argument's tokens (an option with a separate value is one tuple).
    """
    kept: list[str] = []
    for group in tokens:
        head = group[0]
        if head in _AFFECTING_EXACT or (
            head.startswith(_AFFECTING_PREFIXES) and not head.startswith(_NOT_AFFECTING_F)
        ):
            kept.extend(group)
    return tuple(kept)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SEARCH_ENV}
    env["LC_ALL"] = "C"
    return env


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=_clean_env(),
        check=False,
        timeout=60,
    )


def _ask_defaults(path: str, language: str, args: tuple[str, ...]) -> Defaults:
    """Run the compiler on an empty input to learn its folders and macros."""
    verbose = _run([path, "-x", language, *args, "-E", "-v", "-", "-o", os.devnull])
    quote, bracket = parse_search_list(verbose.stderr)
    macros = _run([path, "-x", language, *args, "-dM", "-E", "-"])
    return Defaults(quote, bracket, macros.stdout if macros.returncode == 0 else "")


def parse_search_list(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Read the two folder lists out of ``-v`` output (gcc and clang spell them alike)."""
    quote: list[str] = []
    bracket: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith('#include "..." search starts here'):
            current = quote
        elif line.startswith("#include <...> search starts here"):
            current = bracket
        elif line.startswith("End of search list"):
            break
        elif current is not None and line.startswith(" "):
            folder = line.strip().removesuffix(" (framework directory)")
            current.append(os.path.normpath(folder))
    return tuple(quote), tuple(bracket)


def compiler_info(path: str) -> CompilerInfo:
    """Identify a compiler, cached by its stat so that an upgraded compiler is noticed."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    with _lock:
        found = _infos.get(key)
    if found is not None:
        return found
    version = _run([path, "-dumpfullversion"]).stdout.strip()
    if not version:
        version = _run([path, "-dumpversion"]).stdout.strip()
    target = _run([path, "-dumpmachine"]).stdout.strip()
    info = CompilerInfo(path, version, target)
    with _lock:
        _infos[key] = info
    return info
