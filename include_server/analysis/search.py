"""The compiler's header search order for one compile, and header lookup along it.

GCC's order: the includer's folder (quote form only), ``-iquote``, then the bracket chain: ``-I``
(and ``-iwithprefixbefore``), ``CPATH``, ``-isystem``, ``C_INCLUDE_PATH``/``CPLUS_INCLUDE_PATH``,
the compiler's defaults, ``-idirafter`` (and ``-iwithprefix``).  A ``-I`` folder that is also a
system folder is dropped in favour of the system position, and later duplicates are dropped, as GCC
does (this matters for ``#include_next`` in libstdc++'s wrappers).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from adapter.command import Compile
from include_server.analysis.lexer import Facts, scan
from include_server.analysis.store import Snapshot, Store
from include_server.compilers import affecting_args, compiler_info

_ENV_SYSTEM = {
    "c": "C_INCLUDE_PATH",
    "assembler-with-cpp": "C_INCLUDE_PATH",
    "c++": "CPLUS_INCLUDE_PATH",
    "objective-c": "OBJC_INCLUDE_PATH",
    "objective-c++": "OBJC_INCLUDE_PATH",
}
_CONTEXT_OPTIONS = frozenset(
    {
        "-I",
        "-iquote",
        "-isystem",
        "-idirafter",
        "-iprefix",
        "-iwithprefix",
        "-iwithprefixbefore",
        "--sysroot",
        "-isysroot",
        "-include",
        "-imacros",
        "-D",
        "-U",
        "-cxx-isystem",
    }
)


@dataclass(frozen=True)
class Context:
    """Everything about a compile that decides where its headers come from."""

    chain: tuple[str, ...]  # -iquote folders then the bracket chain, absolute
    bracket_start: int
    system: tuple[str, ...]  # the compiler's default folders (and the sysroot): system files
    forced: tuple[str, ...]  # -imacros / -include files as given, in order
    cmdline: Facts  # predefined and -D macros, as if a file defined them
    # Every folder the options name, with what it was when the chain was laid out: a folder
    # created (or replaced) later changes the chain, as it would for the next real compile.
    folders: tuple[tuple[str, tuple[int, int] | None], ...] = ()

    def current(self, snap: Snapshot) -> bool:
        """Whether the chain still holds: no named folder appeared, vanished or was replaced."""
        return all(_identity(snap, folder) == ident for folder, ident in self.folders)


def context_key(compile: Compile) -> tuple:
    """What a ``Context`` depends on, computed cheaply for each compile."""
    env = compile.env
    return (
        compile.compiler,
        compile.language,
        compile.cwd,
        tuple(a.tokens for a in compile.parsed if a.name in _CONTEXT_OPTIONS or _affects(a.tokens)),
        tuple(env.get(k, "") for k in ("CPATH", _ENV_SYSTEM.get(compile.language, ""))),
    )


def _affects(tokens: tuple[str, ...]) -> bool:
    return bool(affecting_args([tokens]))


def build_context(compile: Compile, snap: Snapshot) -> Context:
    """Ask the compiler for its defaults (cached) and lay out the search chain."""
    info = compiler_info(compile.compiler)
    defaults = info.include_dirs(
        compile.language, affecting_args([a.tokens for a in compile.parsed if a.name])
    )
    cwd = compile.cwd
    quote: list[str] = []
    before: list[str] = []  # -I
    isystem: list[str] = []
    after: list[str] = []  # -idirafter
    forced: list[str] = []
    sysroot = prefix = ""
    macros: list[str] = []
    for arg in compile.parsed:
        name, value = arg.name, arg.value or ""
        if name in ("--sysroot", "-isysroot"):
            sysroot = value if name == "-isysroot" or not sysroot else sysroot
        elif name == "-iprefix":
            prefix = value
    for arg in compile.parsed:
        name, value = arg.name, arg.value or ""
        if name == "-iquote":
            quote.append(_dir(value, cwd, sysroot))
        elif name == "-I" and value != "-":
            before.append(_dir(value, cwd, sysroot))
        elif name in ("-isystem", "-cxx-isystem"):
            isystem.append(_dir(value, cwd, sysroot))
        elif name == "-idirafter":
            after.append(_dir(value, cwd, sysroot))
        elif name == "-iwithprefix":
            after.append(_dir(prefix + value, cwd, sysroot))
        elif name == "-iwithprefixbefore":
            before.append(_dir(prefix + value, cwd, sysroot))
        elif name in ("-include", "-imacros"):
            forced.append(value)
        elif name == "-D":
            definition = value.replace("=", " ", 1) if "=" in value else value + " 1"
            macros.append("#define " + definition + "\n")
    env_system = compile.env.get(_ENV_SYSTEM.get(compile.language, ""), "")
    before += _env_dirs(compile.env.get("CPATH", ""), cwd)
    isystem += _env_dirs(env_system, cwd)
    system_part = isystem + list(defaults.bracket_dirs) + after
    bracket = _dedupe(snap, before, system_part)
    quote_named = quote + list(defaults.quote_dirs)
    quote = _dedupe(snap, quote_named, [])
    system = tuple(defaults.bracket_dirs) + ((os.path.normpath(sysroot),) if sysroot else ())
    text = defaults.predefined + "".join(macros)
    named = dict.fromkeys([*quote_named, *before, *system_part])
    return Context(
        tuple(quote + bracket),
        len(quote),
        system,
        tuple(forced),
        scan(text.encode("utf-8", "surrogateescape")),
        tuple((folder, _identity(snap, folder)) for folder in named),
    )


def _dir(value: str, cwd: str, sysroot: str) -> str:
    """A search folder as the compiler uses it: '=' and '$SYSROOT' mean the sysroot."""
    if value.startswith("="):
        value = sysroot + value[1:]
    elif value.startswith("$SYSROOT"):
        value = sysroot + value[len("$SYSROOT") :]
    path = os.path.join(cwd, value)
    return path.rstrip("/") or "/"


def _env_dirs(value: str, cwd: str) -> list[str]:
    """CPATH-style lists: an empty element means the current folder."""
    if not value:
        return []
    return [os.path.join(cwd, part).rstrip("/") if part else cwd for part in value.split(":")]


def _dedupe(snap: Snapshot, plain: list[str], system: list[str]) -> list[str]:
    """GCC's duplicate removal: by identity, system positions win over -I, first occurrence wins."""
    system_ids = {_identity(snap, d) for d in system} - {None}
    kept: list[str] = []
    seen: set = set()
    for folder in plain:
        ident = _identity(snap, folder)
        if ident is None or ident in system_ids or ident in seen:
            continue
        seen.add(ident)
        kept.append(folder)
    for folder in system:
        ident = _identity(snap, folder)
        if ident is None or ident in seen:
            continue
        seen.add(ident)
        kept.append(folder)
    return kept


def _identity(snap: Snapshot, folder: str) -> tuple[int, int] | None:
    st = snap.stat(folder)
    if st is None or not stat.S_ISDIR(st.st_mode):
        return None
    return (st.st_dev, st.st_ino)


def find(store: Store, snap: Snapshot, folders: tuple[str, ...], name: str) -> tuple[str, int]:
    """First ``folder/name`` that exists as a file: (path, index in ``folders``), or ('', -1)."""
    head, _, tail = name.rpartition("/")
    for index, folder in enumerate(folders):
        where = folder + "/" + head if head else folder
        names = store.listing(snap, where)
        if names is not None and tail in names:
            path = where + "/" + tail
            if snap.is_file(path):
                return path, index
    return "", -1
