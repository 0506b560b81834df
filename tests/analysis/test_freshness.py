"""The server lives across builds: edited and newly generated headers must be seen at once."""

from __future__ import annotations

import os

from adapter.command import Compile, classify
from include_server.analysis import Analyzer


def compile_of(argv: list[str], cwd) -> Compile:
    found = classify(argv, str(cwd), dict(os.environ))
    assert isinstance(found, Compile), found
    return found


def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_header_edited_between_analyses(tmp_path) -> None:
    _write(tmp_path / "main.c", '#include "a.h"\nint main(void) { return 0; }\n')
    _write(tmp_path / "a.h", "/* nothing yet */\n")
    _write(tmp_path / "b.h", "/* b */\n")
    compile = compile_of(["gcc", "-c", "main.c", "-o", "main.o"], tmp_path)
    analyzer = Analyzer()
    assert str(tmp_path / "b.h") not in analyzer.closure(compile).files
    _write(tmp_path / "a.h", '#include "b.h"\n')
    assert str(tmp_path / "b.h") in analyzer.closure(compile).files


def test_header_generated_between_analyses(tmp_path) -> None:
    _write(tmp_path / "src" / "main.c", "#include <gen.h>\nint main(void) { return 0; }\n")
    _write(tmp_path / "fallback" / "gen.h", "/* found later in the chain */\n")
    argv = ["gcc", "-Ibuild", "-Ifallback", "-c", "src/main.c", "-o", "main.o"]
    os.makedirs(tmp_path / "build")
    compile = compile_of(argv, tmp_path)
    analyzer = Analyzer()
    first = analyzer.closure(compile).files
    assert str(tmp_path / "fallback" / "gen.h") in first
    _write(tmp_path / "build" / "gen.h", "/* generated mid-build */\n")
    second = analyzer.closure(compile).files
    assert str(tmp_path / "build" / "gen.h") in second
    assert str(tmp_path / "fallback" / "gen.h") not in second


def test_missing_header_that_appears_is_found(tmp_path) -> None:
    _write(tmp_path / "main.c", '#include "late.h"\nint main(void) { return 0; }\n')
    compile = compile_of(["gcc", "-c", "main.c", "-o", "main.o"], tmp_path)
    analyzer = Analyzer()
    assert str(tmp_path / "late.h") not in analyzer.closure(compile).files
    _write(tmp_path / "late.h", "/* now here */\n")
    assert str(tmp_path / "late.h") in analyzer.closure(compile).files
