"""Every hand-written case under tests/cases/includes: nothing missing, no give-up, expectations."""

from __future__ import annotations

import json
import os

import pytest

from include_server.analysis import Analyzer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = os.path.join(REPO, "tests", "cases", "includes")


@pytest.mark.parametrize("case", sorted(os.listdir(CASES)))
def test_case(case: str, checker, tmp_path) -> None:
    root = str(tmp_path / "root")
    compiles = checker.load_case(os.path.join(CASES, case), root)
    with open(os.path.join(root, "test.json")) as f:
        spec = json.load(f)
    analyzer = Analyzer()
    for compile in compiles:
        outcome = checker.check(analyzer, compile)
        assert not outcome.error, outcome.error
        assert outcome.missing == [], outcome.missing
        assert outcome.gave_up is None
        closure = outcome.closure
        for suffix in spec.get("absent", []):
            assert any(p.endswith(suffix) for p in closure.absent), closure.absent
        for rel in spec.get("files", []):
            assert os.path.join(root, rel) in closure.files, closure.files
        for rel in spec.get("symlinks", []):
            assert os.path.join(root, rel) in [link for link, _ in closure.symlinks]
