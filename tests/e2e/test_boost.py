"""The Boost set (mpl, function, variant, spirit, preprocessor iteration) compiled on a worker.

The translation units are the include analysis's own Boost cases (tests/cases/includes/1xx
boost-*), compiled with their test.json command lines: once here for the reference, once through
pumpcc with PUMPCC_FALLBACK=0.  Boost TUs take seconds each, so all go through one local server,
one after the other, whose resident size afterwards is printed (``pytest -s``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import CASES

BOOST_CASES = sorted(p for p in (CASES / "includes").iterdir() if "boost" in p.name)
pytestmark = pytest.mark.skipif(
    not Path("/usr/include/boost/version.hpp").is_file(), reason="libboost-dev is not installed"
)


def case_argv(case: Path) -> list[str]:
    """The case's one compile command (Boost cases have exactly one)."""
    (compile,) = json.loads((case / "test.json").read_text())["compiles"]
    return compile["argv"]


def test_boost_set_compiles_remotely_and_identically(tmp_path, worker, client_for):
    client = client_for(worker, PUMPCC_FALLBACK="0")
    differing = []
    for case in BOOST_CASES:
        folder = tmp_path / case.name
        shutil.copytree(case, folder)
        argv = case_argv(case)
        subprocess.run(argv, cwd=folder, env=client.env, check=True, capture_output=True)
        expected = (folder / "main.o").read_bytes()
        (folder / "main.o").unlink()
        client.pumpcc(*argv, cwd=folder)
        if (folder / "main.o").read_bytes() != expected:
            differing.append(case.name)

    assert differing == []
    stats = client.stats()
    assert stats["remote"] == stats["compiles"] == len(BOOST_CASES), stats["fallbacks"]
    assert stats["include_server"]["gave_up"] == 0
    print(f"\nBoost set: local server RSS {stats['server']['rss_kb'] / 1024:.1f} MB")
