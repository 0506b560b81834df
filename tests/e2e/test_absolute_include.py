"""A header under an absolute -I folder: __FILE__, warnings and debug info name the client path.

On the worker the header lives under the job root; the worker's -ffile-prefix-map=ROOT= (and its
stripping of ROOT from stderr) must make the object and the messages exactly a local compile's.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import CASES

CASE = CASES / "e2e" / "absolute_include"
COMPILERS = [c for c in ("gcc", "clang") if shutil.which(c)]


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("debug", [[], ["-g"]], ids=["nodebug", "g"])
def test_absolute_include_matches_local(tmp_path, worker, client_for, compiler, debug):
    client = client_for(worker, PUMPCC_FALLBACK="0")
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    include = case / "include"
    args = [compiler, *debug, "-Wall", "-O2", f"-I{include}", "-c", "main.c", "-o", "out.o"]
    local = subprocess.run(args, cwd=case, capture_output=True, env=client.env, check=True)
    expected = (case / "out.o").read_bytes()
    (case / "out.o").unlink()

    remote = client.pumpcc(*args, check=False, cwd=case)

    assert remote.returncode == 0, remote.stderr.decode()
    assert b"unused" in local.stderr  # the header does warn
    assert remote.stderr.decode() == local.stderr.decode()
    assert f"in {include}/where.h".encode() in expected  # __FILE__ is the client path
    assert (case / "out.o").read_bytes() == expected
    assert client.stats()["remote"] == 1
