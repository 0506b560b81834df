"""The allowlisted compilers: where they are and what they are, asked once at start-up.

A job names its compiler with the version and target the client saw; the worker only runs a
compiler whose identity matches, so an object never silently comes from another GCC.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger("pumpcc.worker")


@dataclass(frozen=True)
class Compiler:
    """One allowlisted compiler as this worker runs it."""

    name: str
    path: str  # as found on PATH (the name argv[0] gets, so `cc` stays `cc`)
    real_path: str  # symlinks resolved: the sandbox must be able to see it
    version: str
    target: str
    family: str  # "gcc" or "clang": their dependency files wrap lines differently

    def as_json(self) -> dict[str, str]:
        return {"path": self.path, "version": self.version, "target": self.target}


def _ask(path: str, flag: str) -> str | None:
    """One line of answer from `compiler flag`, or None when the compiler refuses it."""
    try:
        run = subprocess.run(
            [path, flag], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = run.stdout.strip()
    return out.splitlines()[0] if run.returncode == 0 and out else None


def identify(name: str, search_path: str | None) -> Compiler | None:
    """Resolve `name` on the PATH and ask its version, target and family; None if absent."""
    path = shutil.which(name, path=search_path)
    if path is None:
        return None
    version = _ask(path, "-dumpfullversion") or _ask(path, "-dumpversion")
    target = _ask(path, "-dumpmachine")
    if version is None or target is None:
        log.warning("compiler %s (%s) does not answer -dumpversion/-dumpmachine", name, path)
        return None
    banner = _ask(path, "--version") or ""
    family = "clang" if "clang" in banner.lower() else "gcc"
    return Compiler(name, path, os.path.realpath(path), version, target, family)


def discover(names: tuple[str, ...], search_path: str | None) -> dict[str, Compiler]:
    """Identify every allowlisted name that exists here; missing ones are logged and skipped."""
    found = {}
    for name in names:
        compiler = identify(name, search_path)
        if compiler is None:
            log.warning("compiler %s: not usable on this worker's PATH; jobs for it get 404", name)
            continue
        found[name] = compiler
    return found
