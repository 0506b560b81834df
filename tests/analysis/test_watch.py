"""The inotify-backed answers stay bounded and never outlive a change."""

from __future__ import annotations

import os

from adapter.command import classify
from include_server.analysis import Analyzer, watch


def test_answers_are_bounded_and_the_result_stays_right(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(watch, "MAX_ANSWERS", 12)
    headers = [f"h{n}.h" for n in range(20)]
    for name in headers:
        (tmp_path / name).write_text(f"/* {name} */\n")
    (tmp_path / "main.c").write_text("".join(f'#include "{h}"\n' for h in headers))
    compile = classify(["gcc", "-c", "main.c", "-o", "main.o"], str(tmp_path), dict(os.environ))
    analyzer = Analyzer()
    for _ in range(3):
        files = analyzer.closure(compile).files
        assert files == [str(tmp_path / "main.c")] + [str(tmp_path / h) for h in headers]
        assert len(analyzer._store.watch._answers) <= 12
