"""The closure walk's effect on the process: the garbage collector is paused only while it runs."""

from __future__ import annotations

import gc
import os

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


def test_walk_leaves_no_object_frozen_and_what_others_froze_frozen(tmp_path) -> None:
    compile = _compile(tmp_path)
    Analyzer().closure(compile)
    assert gc.get_freeze_count() == 0
    gc.freeze()  # as a pre-fork server might
    try:
        frozen = gc.get_freeze_count()
        Analyzer().closure(compile)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_includes_under_branches_no_compile_takes_are_not_followed(tmp_path) -> None:
    (tmp_path / "config.h").write_text("#define FEATURE 1\n")
    (tmp_path / "a.h").write_text(
        '#ifdef _MSC_VER\n#include "msvc.h"\n#endif\n'  # no compile with GCC defines _MSC_VER
        '#ifdef FEATURE\n#include "maybe.h"\n#endif\n'  # read before or after config.h: both
        '#if defined(__GNUC__) && !defined(_MSC_VER)\n#define H "gcc.h"\n'
        '#else\n#define H "other.h"\n#endif\n#include H\n'
    )
    for name in ("msvc.h", "maybe.h", "gcc.h", "other.h"):
        (tmp_path / name).write_text("")
    (tmp_path / "main.c").write_text('#include "a.h"\n#include "config.h"\n')
    found = classify(["gcc", "-c", "main.c"], str(tmp_path), {})
    assert isinstance(found, Compile)
    shipped = {os.path.basename(p) for p in Analyzer().closure(found).files}
    assert {"maybe.h", "gcc.h"} <= shipped
    assert not {"msvc.h", "other.h"} & shipped
