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


@pytest.mark.parametrize("compiler", COMPILERS)
def test_missing_header_error_reads_as_local(tmp_path, worker, client_for, compiler):
    """A header missing everywhere: the worker's failure is retried here, which prints the
    compiler's own error; under PUMPCC_FALLBACK=0 the worker's identical error is shown."""
    (tmp_path / "a.c").write_text('#include "nope.h"\nint a;\n')
    args = [compiler, "-c", "a.c", "-o", "a.o"]
    local = subprocess.run(args, cwd=tmp_path, capture_output=True)
    assert local.returncode != 0 and b"nope.h" in local.stderr

    client = client_for(worker)
    retried = client.pumpcc(*args, check=False, cwd=tmp_path)
    assert (retried.returncode, retried.stderr) == (local.returncode, local.stderr)
    stats = client.stats()
    assert (stats["remote"], stats["fallbacks"]) == (0, {"missing_header": 1})

    strict = client_for(worker, PUMPCC_FALLBACK="0")
    shown = strict.pumpcc(*args, check=False, cwd=tmp_path)
    assert (shown.returncode, shown.stderr) == (local.returncode, local.stderr)
    assert strict.stats()["remote"] == 1
