"""Warnings and errors read exactly as a local compile's: same text, same paths, same exit."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import CASES

CASE = CASES / "e2e" / "diagnostics"
COMPILERS = [c for c in ("gcc", "clang") if shutil.which(c)]


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("source", ["warning.c", "error.c"])
@pytest.mark.parametrize("path_style", ["absolute", "relative"])
def test_diagnostics_match_local(tmp_path, worker, client_for, compiler, source, path_style):
    client = client_for(worker, PUMPCC_FALLBACK="0")
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    src = str(case / source) if path_style == "absolute" else source
    inc = str(case / "include") if path_style == "absolute" else "include"
    args = [compiler, "-Wall", "-Wextra", "-O2", f"-I{inc}", "-c", src, "-o", "out.o"]
    local = subprocess.run(args, cwd=case, capture_output=True, env=client.env)
    local_object = (case / "out.o").read_bytes() if local.returncode == 0 else None
    (case / "out.o").unlink(missing_ok=True)

    remote = client.pumpcc(*args, check=False, cwd=case)

    assert local.stderr  # each case does print something
    assert remote.stderr.decode() == local.stderr.decode()
    assert remote.stdout == local.stdout
    assert remote.returncode == local.returncode
    if local_object is not None:
        assert (case / "out.o").read_bytes() == local_object
    stats = client.stats()
    assert stats["remote"] == 1, stats
