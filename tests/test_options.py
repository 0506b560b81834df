"""The option table's own invariants, and parsing of real command lines."""

from __future__ import annotations

from adapter.options import TABLE, Flag, parse


def test_table_is_sorted_and_unique():
    names = [o.name for o in TABLE]
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_flag_combinations_make_sense():
    for option in TABLE:
        f = option.flags
        if f & (Flag.SEPARATE | Flag.JOINED | Flag.EQ):
            assert f & Flag.TAKES_ARG, option.name
        if f & Flag.TAKES_ARG and not f & Flag.PREFIX:
            assert f & (Flag.SEPARATE | Flag.JOINED | Flag.EQ), option.name
        if f & (Flag.INPUT | Flag.OUTPUT):
            assert f & Flag.PATH, option.name
        if f & Flag.REFUSED:
            assert f & Flag.LOCAL, f"{option.name}: refused on workers, so the client keeps it"


def test_parse_cmake_compile_line():
    args = [
        "-DFOO=1",
        "-I/src/include",
        "-isystem",
        "/opt/inc",
        "-O2",
        "-MD",
        "-MT",
        "obj.o",
        "-MF",
        "obj.o.d",
        "-o",
        "obj.o",
        "-c",
        "/src/a.c",
    ]
    parsed = parse(args)
    assert [(a.name, a.value) for a in parsed] == [
        ("-D", "FOO=1"),
        ("-I", "/src/include"),
        ("-isystem", "/opt/inc"),
        ("-O2", None),
        ("-MD", None),
        ("-MT", "obj.o"),
        ("-MF", "obj.o.d"),
        ("-o", "obj.o"),
        ("-c", None),
        (None, "/src/a.c"),
    ]
    assert [t for a in parsed for t in a.tokens] == args


def test_longest_glued_name_wins():
    (a,) = parse(["-iwithprefixbefore/x"])
    assert (a.name, a.value) == ("-iwithprefixbefore", "/x")
    (b,) = parse(["--sysroot=/sr"])
    assert (b.name, b.value) == ("--sysroot", "/sr")
    (c,) = parse(["-ansi"])
    assert c.name == "-ansi" and c.value is None


def test_prefix_options_are_local():
    for arg in ("-fplugin=x.so", "-fdump-tree-all", "-fprofile-use=p", "-save-temps=obj"):
        (a,) = parse([arg])
        assert a.flags & Flag.LOCAL, arg
