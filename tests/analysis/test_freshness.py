"""The server lives across builds: edited and newly generated headers must be seen at once.

Each test runs with inotify watching (answers remembered until an event) and without (every
answer re-checked by stat), since users on network file systems turn watching off.
"""

from __future__ import annotations

import os

import pytest

from adapter.command import Compile, classify
from include_server.analysis import Analyzer


@pytest.fixture(params=[True, False], ids=["watch", "stat"])
def make_analyzer(request):
    return lambda: Analyzer(watch=request.param)


def compile_of(argv: list[str], cwd) -> Compile:
    found = classify(argv, str(cwd), dict(os.environ))
    assert isinstance(found, Compile), found
    return found


def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_header_edited_between_analyses(tmp_path, make_analyzer) -> None:
    _write(tmp_path / "main.c", '#include "a.h"\nint main(void) { return 0; }\n')
    _write(tmp_path / "a.h", "/* nothing yet */\n")
    _write(tmp_path / "b.h", "/* b */\n")
    compile = compile_of(["gcc", "-c", "main.c", "-o", "main.o"], tmp_path)
    analyzer = make_analyzer()
    assert str(tmp_path / "b.h") not in analyzer.closure(compile).files
    _write(tmp_path / "a.h", '#include "b.h"\n')
    assert str(tmp_path / "b.h") in analyzer.closure(compile).files


def test_header_generated_between_analyses(tmp_path, make_analyzer) -> None:
    _write(tmp_path / "src" / "main.c", "#include <gen.h>\nint main(void) { return 0; }\n")
    _write(tmp_path / "fallback" / "gen.h", "/* found later in the chain */\n")
    argv = ["gcc", "-Ibuild", "-Ifallback", "-c", "src/main.c", "-o", "main.o"]
    os.makedirs(tmp_path / "build")
    compile = compile_of(argv, tmp_path)
    analyzer = make_analyzer()
    first = analyzer.closure(compile).files
    assert str(tmp_path / "fallback" / "gen.h") in first
    _write(tmp_path / "build" / "gen.h", "/* generated mid-build */\n")
    second = analyzer.closure(compile).files
    assert str(tmp_path / "build" / "gen.h") in second
    assert str(tmp_path / "fallback" / "gen.h") not in second


def test_missing_header_that_appears_is_found(tmp_path, make_analyzer) -> None:
    _write(tmp_path / "main.c", '#include "late.h"\nint main(void) { return 0; }\n')
    compile = compile_of(["gcc", "-c", "main.c", "-o", "main.o"], tmp_path)
    analyzer = make_analyzer()
    assert str(tmp_path / "late.h") not in analyzer.closure(compile).files
    _write(tmp_path / "late.h", "/* now here */\n")
    assert str(tmp_path / "late.h") in analyzer.closure(compile).files


def test_same_length_edit_right_after_an_analysis(tmp_path, make_analyzer) -> None:
    _write(tmp_path / "main.c", '#include "a.h"\nint main(void) { return 0; }\n')
    _write(tmp_path / "a.h", '#include "b.h"\n')
    _write(tmp_path / "b.h", "/* b */\n")
    _write(tmp_path / "c.h", "/* c */\n")
    compile = compile_of(["gcc", "-c", "main.c", "-o", "main.o"], tmp_path)
    analyzer = make_analyzer()
    for _ in range(2):
        assert str(tmp_path / "b.h") in analyzer.closure(compile).files
    (tmp_path / "a.h").write_text('#include "c.h"\n')  # same size, same timestamp tick
    files = analyzer.closure(compile).files
    assert str(tmp_path / "c.h") in files and str(tmp_path / "b.h") not in files


def test_linked_folder_pointed_elsewhere(tmp_path, make_analyzer) -> None:
    _write(tmp_path / "v1" / "cfg.h", '#include "one.h"\n')
    _write(tmp_path / "v1" / "one.h", "/* one */\n")
    _write(tmp_path / "v2" / "cfg.h", '#include "two.h"\n')
    _write(tmp_path / "v2" / "two.h", "/* two */\n")
    _write(tmp_path / "main.c", "#include <cfg.h>\nint main(void) { return 0; }\n")
    (tmp_path / "cur").symlink_to("v1")
    compile = compile_of(["gcc", "-Icur", "-c", "main.c", "-o", "main.o"], tmp_path)
    analyzer = make_analyzer()
    assert str(tmp_path / "cur" / "one.h") in analyzer.closure(compile).files
    (tmp_path / "cur").unlink()
    (tmp_path / "cur").symlink_to("v2")
    files = analyzer.closure(compile).files
    assert str(tmp_path / "cur" / "two.h") in files
    assert str(tmp_path / "cur" / "one.h") not in files


def test_folder_above_the_headers_replaced(tmp_path, make_analyzer) -> None:
    """A rename higher up changes what a path means without any event in the header's folder."""
    _write(tmp_path / "inc" / "sub" / "cfg.h", '#include "one.h"\n')
    _write(tmp_path / "inc" / "sub" / "one.h", "/* one */\n")
    _write(tmp_path / "main.c", "#include <cfg.h>\nint main(void) { return 0; }\n")
    compile = compile_of(["gcc", "-Iinc/sub", "-c", "main.c", "-o", "main.o"], tmp_path)
    analyzer = make_analyzer()
    assert str(tmp_path / "inc" / "sub" / "one.h") in analyzer.closure(compile).files
    (tmp_path / "inc").rename(tmp_path / "old")
    _write(tmp_path / "inc" / "sub" / "cfg.h", '#include "two.h"\n')
    _write(tmp_path / "inc" / "sub" / "two.h", "/* two */\n")
    files = analyzer.closure(compile).files
    assert str(tmp_path / "inc" / "sub" / "two.h") in files
    assert str(tmp_path / "inc" / "sub" / "one.h") not in files


def test_search_folder_created_later_shadows_the_next_one(tmp_path, make_analyzer) -> None:
    _write(tmp_path / "main.c", "#include <gen.h>\nint main(void) { return 0; }\n")
    _write(tmp_path / "fallback" / "gen.h", "/* fallback */\n")
    argv = ["gcc", "-Inot/yet", "-Ifallback", "-c", "main.c", "-o", "main.o"]
    compile = compile_of(argv, tmp_path)
    analyzer = make_analyzer()
    assert str(tmp_path / "fallback" / "gen.h") in analyzer.closure(compile).files
    _write(tmp_path / "not" / "yet" / "gen.h", "/* generated */\n")
    files = analyzer.closure(compile).files
    assert str(tmp_path / "not" / "yet" / "gen.h") in files
    assert str(tmp_path / "fallback" / "gen.h") not in files


def test_unchanged_tree_gives_the_same_answer(tmp_path, make_analyzer) -> None:
    _write(tmp_path / "main.c", '#include "a.h"\nint main(void) { return 0; }\n')
    _write(tmp_path / "a.h", "/* a */\n")
    old = 1_000_000_000
    for name in ("main.c", "a.h"):
        os.utime(tmp_path / name, (old, old))  # settled: no racy re-reads
    compile = compile_of(["gcc", "-c", "main.c", "-o", "main.o"], tmp_path)
    analyzer = make_analyzer()
    first = analyzer.closure(compile)
    assert (
        analyzer.closure(compile).files
        == first.files
        == [
            str(tmp_path / "main.c"),
            str(tmp_path / "a.h"),
        ]
    )
