"""Classification of compiler commands: distributable or local, and why."""

from __future__ import annotations

import os

import pytest

from adapter.command import Compile, Local, classify, split_response_file

ENV = {"PATH": os.environ["PATH"]}


def decide(*argv: str, cwd: str = "/tmp"):
    return classify(list(argv), cwd, ENV)


def test_cmake_compile_is_distributable():
    c = decide("gcc", "-O2", "-MD", "-MT", "a.o", "-MF", "a.o.d", "-o", "a.o", "-c", "/s/a.c")
    assert isinstance(c, Compile)
    assert (c.language, c.source, c.output, c.dep_file) == ("c", "/s/a.c", "a.o", "a.o.d")
    assert c.outputs == ["a.o", "a.o.d"]
    assert c.compiler.endswith("/gcc")


@pytest.mark.parametrize(
    ("argv", "output", "dep"),
    [
        (["gcc", "-c", "x/a.c"], "a.o", None),
        (["gcc", "-c", "x/a.c", "-MD"], "a.o", "a.d"),
        (["gcc", "-c", "a.c", "-MMD", "-o", "sub/b.obj"], "sub/b.obj", "sub/b.d"),
    ],
)
def test_default_output_names_follow_gcc(argv, output, dep):
    c = decide(*argv)
    assert (c.output, c.dep_file) == (output, dep)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["gcc", "a.o", "-o", "prog"], "not_compile"),
        (["gcc", "-E", "a.c"], "not_compile"),
        (["gcc", "-M", "a.c"], "not_compile"),
        (["gcc", "-c", "a.c", "b.c"], "multiple_sources"),
        (["gcc", "-c", "-x", "c", "-"], "stdin_source"),
        (["gcc", "-c", "a.h"], "precompiled_header"),
        (["gcc", "-c", "a.f90"], "unsupported_language"),
        (["gcc", "-c", "a.c", "-fprofile-use"], "unsupported_args"),
        (["gcc", "-c", "a.c", "-fplugin=evil.so"], "unsupported_args"),
        (["gcc", "-c", "a.c", "-o"], "bad_args"),
        (["no-such-compiler-xyz", "-c", "a.c"], "compiler_not_found"),
    ],
)
def test_local_reasons(argv, reason):
    d = decide(*argv)
    assert isinstance(d, Local)
    assert d.reason == reason


def test_x_language_applies_to_following_files():
    c = decide("gcc", "-x", "c++", "-c", "a.c")
    assert c.language == "c++"


def test_response_file_is_expanded(tmp_path):
    (tmp_path / "args.rsp").write_text("-DA=\"x y\" -c 'a b.c'\n-o out.o")
    c = classify(["gcc", "@args.rsp"], str(tmp_path), ENV)
    assert c.args == ["-DA=x y", "-c", "a b.c", "-o", "out.o"]
    assert c.source == "a b.c"


def test_response_file_splitting():
    assert split_response_file(r"a\ b 'c d' \"e") == ["a b", "c d", '"e']
