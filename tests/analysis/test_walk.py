"""The closure walk's effect on the process: the garbage collector is paused only while it runs."""

from __future__ import annotations

import gc

from adapter.command import Compile, classify
from include_server.analysis import Analyzer, walk


def _compile(tmp_path) -> Compile:
    (tmp_path / "a.h").write_text('#define H "b.h"\n#include H\n')
    (tmp_path / "b.h").write_text("")
    (tmp_path / "main.c").write_text('#include "a.h"\n')
    found = classify(["gcc", "-c", "main.c"], str(tmp_path), {})
    assert isinstance(found, Compile)
    return found


def test_collector_is_paused_during_the_walk_and_restored(tmp_path, monkeypatch) -> None:
    seen: list[bool] = []
    original = walk.Walk._drain

    def draining(self: walk.Walk) -> None:
        seen.append(gc.isenabled())
        original(self)

    monkeypatch.setattr(walk.Walk, "_drain", draining)
    closure = Analyzer().closure(_compile(tmp_path))
    assert any(p.endswith("/b.h") for p in closure.files)
    assert seen and not any(seen)
    assert gc.isenabled()


def test_collector_left_off_when_it_was_off(tmp_path) -> None:
    gc.disable()
    try:
        Analyzer().closure(_compile(tmp_path))
        assert not gc.isenabled()
    finally:
        gc.enable()
