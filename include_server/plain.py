"""Plain mode: preprocess here, compile the preprocessed file on a worker.

When the include analysis cannot vouch for a compile (it gave up, or ``PUMPCC_FORCE_PLAIN=1`` asks
for it), the workstation runs the real preprocessor, which writes the dependency file exactly as the
full compile would, and the worker compiles the single ``.i`` file.  That costs the preprocessing
CPU here but still moves the compile itself away, and needs no header on the worker at all.

Objects and dependency files are byte-identical to a local compile's; compiles with debug info run
locally (see ``preprocess``).  One difference remains in diagnostics of the compile step (warnings
from the code, not from the preprocessor): their text, location and the exit status are the local
compile's, but the quoted source line under them is missing for a line of a header with gcc (the
worker has only the ``.i`` and the source file), and shows the line as preprocessed with clang.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace

from adapter.command import Compile
from adapter.options import Flag, parse
from include_server.analysis import Closure

# The language a preprocessed file is compiled as (gcc and clang spell them alike).
_PREPROCESSED = {"c": "cpp-output", "c++": "c++-cpp-output"}
# Options that act only on preprocessing or on the dependency file; the compile of the ``.i`` must
# not see them (-D/-I would be ignored, -M* would write a second, wrong dependency file).
_DROP_FROM_COMPILE = frozenset({"-MF", "-MQ", "-MT", "-x", "-c", "-o"})
_KEEP = frozenset({"-ansi"})  # marked PREPROC in the table, but it also sets the language dialect
_TARGET_OPTIONS = frozenset({"-MT", "-MQ"})


@dataclass
class Preprocessed:
    """A compile turned into its plain-mode form: the ``.i`` job and the folder to remove."""

    compile: Compile
    closure: Closure
    tmpdir: str
    stderr: bytes  # what the preprocessor printed (#warning and friends), shown before the rest


@dataclass
class NotPlain:
    """Plain mode cannot take this compile; it runs locally under ``reason``."""

    reason: str
    detail: str


def forced(env: dict[str, str]) -> bool:
    """``PUMPCC_FORCE_PLAIN=1``: a debugging aid that sends every compile through plain mode."""
    return env.get("PUMPCC_FORCE_PLAIN") == "1"


def preprocess(compile: Compile, umask: int) -> Preprocessed | NotPlain:
    """Run the real preprocessor here and describe the compile of its output for a worker.

    ``umask`` is the launcher's, so the dependency file gets the mode a local compile gives it.
    """
    lang = _PREPROCESSED.get(compile.language)
    if lang is None:
        return NotPlain("plain_unsupported", f"no preprocessed form for {compile.language}")
    if _debug_info(compile):
        # Macro expansion moves tokens along their lines in the .i, so the column numbers in the
        # debug line table would differ from a local compile's: not byte-identical, so local.
        return NotPlain("plain_debug_info", "-g: debug info columns change after preprocessing")
    tmpdir = tempfile.mkdtemp(prefix="pumpcc-plain-")
    ifile = os.path.join(tmpdir, os.path.splitext(os.path.basename(compile.source))[0] + ".i")
    try:
        proc = subprocess.run(
            [compile.compiler, *_preprocess_args(compile), "-E", "-o", ifile],
            cwd=compile.cwd,
            env=compile.env,
            capture_output=True,
            check=False,
            umask=umask,
        )
    except OSError as e:
        shutil.rmtree(tmpdir, ignore_errors=True)
        return NotPlain("plain_preprocess_failed", str(e))
    if proc.returncode != 0:
        # The full compile fails the same way; let it run here so its messages are the real ones.
        shutil.rmtree(tmpdir, ignore_errors=True)
        return NotPlain("plain_preprocess_failed", f"exit status {proc.returncode}")
    args = _compile_args(compile, lang, ifile)
    job = replace(
        compile,
        args=args,
        parsed=parse(args),
        language=lang,
        source=ifile,
        dep_file=None,
        outputs=[compile.output],
    )
    # The source goes along only so that diagnostics quote its lines as a local compile does.
    source = os.path.normpath(os.path.join(compile.cwd, compile.source))
    closure = Closure(
        files=[ifile, source],
        system_files=[],
        dirs=sorted({compile.cwd, tmpdir, os.path.dirname(source)}),
        symlinks=[],
        absent=[],
        gave_up=None,
    )
    return Preprocessed(job, closure, tmpdir, proc.stderr)


def _debug_info(compile: Compile) -> bool:
    """Whether the compile writes debug info: a -g option that a later -g0 does not cancel."""
    levels = [t for a in compile.parsed for t in a.tokens[:1] if t.startswith("-g")]
    return bool(levels) and levels[-1] != "-g0"


def _preprocess_args(compile: Compile) -> list[str]:
    """The compile's arguments minus -c/-o, naming the dependency file and its target the way the
    full compile would (with ``-E -o x.i`` the driver would otherwise derive both from ``x.i``)."""
    args: list[str] = []
    has_target = False
    for arg in compile.parsed:
        if arg.name in ("-c", "-o"):
            continue
        has_target = has_target or arg.name in _TARGET_OPTIONS
        if arg.name == "-MF":
            continue  # given again below, as the compile resolved it
        args.extend(arg.tokens)
    if compile.dep_file:
        args += ["-MF", compile.dep_file]
        if not has_target:
            args += ["-MQ", compile.output]
    if "clang" in os.path.basename(compile.compiler):
        # clang -E prints '#pragma message' too, and the compile of the .i prints it again.
        args.append("-Wno-#pragma-messages")
    return args


def _compile_args(compile: Compile, lang: str, ifile: str) -> list[str]:
    """The compile's code-generation arguments, reading ``ifile`` as preprocessed ``lang``."""
    args: list[str] = ["-x", lang]
    for arg in compile.parsed:
        if arg.name is None:
            continue  # the source: replaced by the .i below
        if arg.name in _DROP_FROM_COMPILE or arg.tokens[0].startswith("-Wp,"):
            continue
        if arg.flags & (Flag.PREPROC | Flag.SEARCH) and arg.name not in _KEEP:
            continue
        args.extend(arg.tokens)
    return args + ["-c", ifile, "-o", compile.output]
