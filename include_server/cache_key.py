"""The result cache's key: a sha256 over everything that determines a compile's outputs.

A wrong key silently hands a user someone else's object file, so the key errs towards missing.
What goes in, in this order (README "Result cache" explains each choice):

1. A format version, bumped whenever this module changes what it hashes.
2. The compiler: the name it was invoked by (``clang`` and ``clang++`` are one binary that reads
   its own name), its version and target, and the sha256 of its binary (cached by stat, so an
   upgraded compiler is seen at once).
3. The arguments as given, minus the values that only name outputs: ``-o`` and ``-MF`` (where
   the files go, never what is in them) and ``-MT``/``-MQ`` (the dependency file's target, which
   the cache rewrites on a hit, see ``DepTargets``).
4. The working folder, when the output records it: with debug info (any ``-g`` but ``-g0``) the
   object holds DW_AT_comp_dir, and when an argument or a search variable spells the folder out,
   that absolute path reaches the outputs.  Otherwise the compiler's outputs hold paths only as
   spelled in the arguments and include directives, and each file it reads is in the key (5).
5. Every file of the include closure, system headers included, by path and content digest; the
   probed paths that must not exist; the folders and symlinks the lookup relies on.  A path under
   the working folder is keyed relative to it (another checkout with relative paths hits), any
   other path absolutely.
6. The environment variables the compiler reads (locale, SOURCE_DATE_EPOCH, CPATH and company,
   GCC_EXEC_PREFIX, COLUMNS, ...).

Sharing between checkouts (ccache calls it base_dir): CMake spells every source and ``-I``
folder absolutely, so points 3 and 5 would tie an entry to the checkout's path.  When the compile
has a *base folder* (``base_folder``), every occurrence of it in the key material is replaced by
one placeholder, so a checkout at another path with the same contents, layout and arguments has
the same key.  The substitution is uniform, so the outputs of the two compiles differ only by the
same substitution: the dependency file, stdout and stderr are rewritten from the entry's base to
the compile's own on a hit (``include_server.cache``).  The object is compared, not rewritten:
an entry whose object holds its base folder (``__FILE__`` in a string, say) serves only that base.

A compile whose sources use ``__DATE__``, ``__TIME__`` or ``__TIMESTAMP__`` (not redefined with
``-D``) is not cached: its output depends on the clock.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

from adapter.command import Compile
from include_server.analysis import Closure
from include_server.compilers import CompilerInfo
from include_server.files import FileStore

KEY_VERSION = "pumpcc-cache-1"
# Options whose value only names an output; -MT/-MQ name the .d target, rewritten on a hit.
_OUTPUT_NAMES = frozenset({"-o", "-MF", "-MT", "-MQ"})
_TARGET_OPTIONS = frozenset({"-MT", "-MQ"})
# Read by GCC or Clang and able to change an output or the diagnostics.
ENV_READ = (
    "CCC_OVERRIDE_OPTIONS",
    "COLUMNS",
    "COMPILER_PATH",
    "CPATH",
    "CPLUS_INCLUDE_PATH",
    "C_INCLUDE_PATH",
    "DEPENDENCIES_OUTPUT",
    "GCC_COMPARE_DEBUG",
    "GCC_EXEC_PREFIX",
    "LANG",
    "LANGUAGE",
    "OBJCPLUS_INCLUDE_PATH",
    "OBJC_INCLUDE_PATH",
    "SOURCE_DATE_EPOCH",
    "SUNPRO_DEPENDENCIES",
    "TZ",
)
_ENV_PREFIXES = ("LC_",)
_SEARCH_ENV = ("CPATH", "CPLUS_INCLUDE_PATH", "C_INCLUDE_PATH", "OBJC_INCLUDE_PATH")
_TIME_MACROS = frozenset({"__DATE__", "__TIME__", "__TIMESTAMP__"})
# Characters a dependency file or a diagnostic may escape or quote: a base folder holding one
# would not appear verbatim in the outputs, so it could not be substituted there.
_UNSAFE_IN_BASE = frozenset(" \t\n\\#$:%*?[]\"'")
_PLACEHOLDER = "\0"  # no path, argument or variable holds a NUL
_USER_FOLDERS = frozenset({"-I", "-iquote"})
_PREFIX_MAPS = ("-fdebug-prefix-map=", "-ffile-prefix-map=")


@dataclass(frozen=True)
class DepTargets:
    """The dependency file's first-rule targets, as (option, value): -MT verbatim, -MQ quoted.

    Without -MT/-MQ the compiler names the object (quoted), so the default is ``-MQ output``.
    """

    targets: tuple[tuple[str, str], ...]

    def render(self) -> list[bytes]:
        """The target names as the compiler writes them in the dependency file."""
        names: list[bytes] = []
        for option, value in self.targets:
            if option == "-MT":
                names.extend(value.encode("utf-8", "surrogateescape").split())
            else:
                names.append(make_quote(value).encode("utf-8", "surrogateescape"))
        return names


@dataclass(frozen=True)
class CacheKey:
    """A cacheable compile: its key and what a hit must rewrite."""

    key: str  # sha256 hex
    targets: DepTargets
    family: str  # "gcc" or "clang": how its dependency files wrap lines
    base: str | None = None  # the base folder substituted in the key (see base_folder)

    @property
    def pinned(self) -> str:
        """The key of an entry whose object names this base folder (include_server.cache)."""
        return hashlib.sha256(
            f"{self.key}\0{self.base}".encode("utf-8", "surrogateescape")
        ).hexdigest()


def make_quote(name: str) -> str:
    """Quote a target for make as GCC's -MQ does: '$' doubled, spaces and '#' escaped."""
    out = []
    for i, ch in enumerate(name):
        if ch in " \t":
            j = i - 1
            while j >= 0 and name[j] == "\\":  # backslashes before a space are doubled
                out.append("\\")
                j -= 1
            out.append("\\")
        elif ch == "$":
            out.append("$")
        elif ch == "#":
            out.append("\\")
        out.append(ch)
    return "".join(out)


_identity_lock = threading.Lock()
_identities: dict[tuple[str, int, int, int], tuple[str, str]] = {}


def compiler_identity(path: str) -> tuple[str, str]:
    """(sha256 of the compiler's binary, its family), re-read only when its stat changes.

    The family ('gcc' or 'clang') says how its dependency files wrap lines.
    """
    st = os.stat(path)  # follows links: a switched alternative or an upgrade changes the stamp
    stamp = (path, st.st_mtime_ns, st.st_size, st.st_ino)
    with _identity_lock:
        found = _identities.get(stamp)
    if found is None:
        real = os.path.realpath(path)
        h = hashlib.sha256()
        with open(real, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        found = (h.hexdigest(), "clang" if "clang" in os.path.basename(real) else "gcc")
        with _identity_lock:
            _identities[stamp] = found
    return found


def _keyed_args(compile: Compile) -> tuple[list[str], DepTargets]:
    """The argument tokens that affect the outputs, and the dependency targets set aside."""
    kept: list[str] = []
    targets: list[tuple[str, str]] = []
    for arg in compile.parsed:
        if arg.name in _TARGET_OPTIONS and arg.value is not None:
            targets.append((arg.name, arg.value))
        if arg.name not in _OUTPUT_NAMES:
            kept.extend(arg.tokens)
    if not targets:
        targets.append(("-MQ", compile.output))
    return kept, DepTargets(tuple(targets))


def _redefined_time_macros(compile: Compile) -> bool:
    """Whether -D overrides all three clock macros (Bazel does: -D__DATE__="redacted")."""
    defined = {(arg.value or "").split("=", 1)[0] for arg in compile.parsed if arg.name == "-D"}
    return _TIME_MACROS.issubset(defined)


def _writes_debug_info(compile: Compile) -> bool:
    """Whether any option asks for debug info (any ``-g`` but ``-g0``): it names folders."""
    return any(
        token.startswith("-g") and token != "-g0" for arg in compile.parsed for token in arg.tokens
    )


def _records_cwd(compile: Compile, env: dict[str, str]) -> bool:
    """Whether the working folder can reach the outputs (see the module docstring, point 4)."""
    if _writes_debug_info(compile):
        return True
    if any(compile.cwd in token for arg in compile.parsed for token in arg.tokens):
        return True
    return any(compile.cwd in env[k] for k in _SEARCH_ENV if k in env)


def base_folder(compile: Compile, setting: str) -> str | None:
    """The folder substituted in this compile's key, or None: the cache key's ``base_dir``.

    ``setting`` is the client YAML's ``cache.base_dir``: ``auto`` takes the deepest folder that
    holds the working folder, the source and the ``-I``/``-iquote`` folders (a checkout with its
    build folder inside or beside it, and sources generated in the build folder), or, when that
    is too shallow, the one holding the first two; ``none`` turns sharing between checkouts off;
    anything else is that folder.  Refused (None): a folder with a character that outputs escape;
    under ``auto``, one less than two levels deep (``/`` or ``/home`` would rewrite unrelated
    text); and with debug info, unless a prefix map rewrites the folder away, since
    DW_AT_comp_dir and the line tables name it.
    """
    if setting == "none":
        return None
    cwd = os.path.normpath(compile.cwd)
    if setting == "auto":
        spots = [cwd, os.path.normpath(os.path.join(cwd, compile.source))]
        folders = [
            os.path.normpath(os.path.join(cwd, arg.value))
            for arg in compile.parsed
            if arg.name in _USER_FOLDERS and arg.value
        ]
        base = os.path.commonpath(spots + folders)
        if base.count("/") < 2:
            base = os.path.commonpath(spots)
            if base.count("/") < 2:
                return None
    else:
        base = setting
    if _UNSAFE_IN_BASE.intersection(base) or not _debug_info_free_of(compile, base):
        return None
    return base


def _debug_info_free_of(compile: Compile, base: str) -> bool:
    """Whether the object's debug info, if any, cannot name ``base`` (mapped by a prefix map)."""
    if not _writes_debug_info(compile):
        return True
    for arg in compile.parsed:
        for token in arg.tokens:
            if token.startswith(_PREFIX_MAPS):
                old = token.split("=", 2)[1].rstrip("/")
                if old and (base == old or base.startswith(old + "/")):
                    return True
    return False


def _rep(path: str, cwd: str) -> str:
    """A path for the key: relative to the working folder when under it, else absolute."""
    norm = os.path.normpath(path) if "/." in path or "//" in path else path
    if norm == cwd:
        return "."
    if cwd != "/" and norm.startswith(cwd + "/"):
        return "./" + norm[len(cwd) + 1 :]
    return norm


def compute(
    compile: Compile, closure: Closure, info: CompilerInfo, files: FileStore, base_dir: str = "auto"
) -> CacheKey | str:
    """The key of a compile, or the reason it cannot be cached; ``base_dir``: see base_folder.

    Raises OSError when a closure file vanished: the caller falls back as for any file error.
    """
    cwd = os.path.normpath(compile.cwd)
    digest, family = compiler_identity(compile.compiler)
    args, targets = _keyed_args(compile)
    env = compile.env
    lines = [
        KEY_VERSION,
        f"compiler {os.path.basename(compile.argv0)} {info.version} {info.target}",
        f"binary {digest}",
        f"language {compile.language}",
        *(f"arg {a}" for a in args),
    ]
    if _records_cwd(compile, env):
        lines.append(f"cwd {cwd}")
    lines += [
        f"env {k}={env[k]}" for k in sorted(env) if k in ENV_READ or k.startswith(_ENV_PREFIXES)
    ]
    time_macros = False
    for kind, paths in (("file", closure.files), ("system", closure.system_files)):
        for path in sorted({_rep(p, cwd): p for p in paths}.items()):
            entry = files.entry(path[1], compress=False, st=closure.stats.get(path[1]))
            time_macros = time_macros or entry.time_macros
            lines.append(f"{kind} {path[0]} {entry.digest}")
    if time_macros and not _redefined_time_macros(compile):
        return "time_macros"
    lines += [f"absent {p}" for p in sorted({_rep(p, cwd) for p in closure.absent})]
    lines += [f"dir {p}" for p in sorted({_rep(p, cwd) for p in closure.dirs})]
    lines += [f"link {_rep(a, cwd)} {b}" for a, b in sorted(closure.symlinks)]
    base = base_folder(compile, base_dir)
    text = "\n".join(lines)
    if base is not None:
        text = "based\n" + text.replace(base, _PLACEHOLDER)
    material = text.encode("utf-8", "surrogateescape")
    return CacheKey(hashlib.sha256(material).hexdigest(), targets, family, base)
