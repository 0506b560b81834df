"""A real project: every translation unit of cJSON analysed with nothing missing."""

from __future__ import annotations

import os
import subprocess
import tarfile

import pytest

from include_server.analysis import Analyzer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CORPORA = os.path.join(REPO, "..", "shared", "corpora")
CJSON = os.path.join(CORPORA, "cjson_1.7.15.orig.tar.gz")


@pytest.mark.skipif(not os.path.exists(CJSON), reason="corpora not available")
def test_cjson_nothing_missing(checker, tmp_path) -> None:
    with tarfile.open(CJSON) as tar:
        tar.extractall(tmp_path, filter="data")
    src = tmp_path / "cJSON-1.7.15"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(src),
            "-B",
            str(src / "build"),
            "-G",
            "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
        ],
        check=True,
        capture_output=True,
    )
    analyzer = Analyzer()
    outcomes = [checker.check(analyzer, c) for c in checker.load_compiles(str(src / "build"))]
    assert len(outcomes) > 10
    assert [o.source for o in outcomes if o.missing or o.gave_up] == []
