"""Plain mode: preprocess here, compile the .i on a worker; outputs identical to a local compile."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import CASES

CASE = CASES / "e2e" / "plain"
COMPILERS = [c for c in ("gcc", "clang") if shutil.which(c)]
CXX = {"gcc": "g++", "clang": "clang++"}


def _outputs(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("out*"))}


def _compile_both(client, case, args: list[str]):
    """Compile locally (the reference), then through pumpcc; return both results."""
    local = subprocess.run(args, cwd=case, capture_output=True, env=client.env, check=True)
    expected = _outputs(case)
    assert set(expected) == {"out.o", "out.d"}
    for path in expected:
        (case / path).unlink()
    return local, expected, client.pumpcc(*args, check=False, cwd=case)


def _args(compiler: str, source: str, case, *extra: str) -> list[str]:
    cc = compiler if source.endswith(".c") else CXX[compiler]
    return [cc, *extra, "-O2", "-DLEVEL=3", f"-I{case / 'include'}", "-MD", "-c", source] + [
        "-o",
        "out.o",
    ]


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("source", ["main.c", "main.cpp"])
def test_plain_mode_matches_local(tmp_path, worker, client_for, compiler, source):
    client = client_for(worker, PUMPCC_FALLBACK="0", PUMPCC_FORCE_PLAIN="1", PUMPCC_VERBOSE="1")
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    # clang quotes a diagnostic's line from the .i (as preprocessed): compare without excerpts.
    quiet = ["-fno-caret-diagnostics"] if compiler == "clang" else []
    local, expected, remote = _compile_both(client, case, _args(compiler, source, case, *quiet))

    assert remote.returncode == 0, remote.stderr.decode()
    assert _outputs(case) == expected
    verbose = remote.stderr.decode().splitlines()
    assert "in plain mode (forced (PUMPCC_FORCE_PLAIN=1))" in verbose[-1]
    assert "\n".join(verbose[:-1]) == local.stderr.decode().rstrip("\n")
    stats = client.stats()
    assert stats["remote"] == 1, stats
    assert stats["include_server"]["plain"] == 1
    assert stats["include_server"]["gave_up_reasons"] == {"forced (PUMPCC_FORCE_PLAIN=1)": 1}


@pytest.mark.parametrize("compiler", COMPILERS)
def test_plain_mode_with_debug_info_runs_locally(tmp_path, worker, client_for, compiler):
    """-g cannot be identical from a .i (columns move with macro expansion): it runs here."""
    client = client_for(worker, PUMPCC_FORCE_PLAIN="1")
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    _, expected, remote = _compile_both(client, case, _args(compiler, "main.cpp", case, "-g"))
    assert remote.returncode == 0
    assert _outputs(case) == expected
    assert client.stats()["fallbacks"] == {"plain_debug_info": 1}


def test_plain_mode_preprocessing_error_runs_locally(tmp_path, worker, client_for):
    """A compile whose preprocessing fails runs here, so its messages are the compiler's own."""
    client = client_for(worker, PUMPCC_FORCE_PLAIN="1")
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    done = client.pumpcc("gcc", f"-I{case / 'include'}", "-c", "main.c", check=False, cwd=case)
    assert done.returncode != 0
    assert b"LEVEL must come from -D" in done.stderr
    assert client.stats()["fallbacks"] == {"plain_preprocess_failed": 1}
