"""Deciding '#if' conditions that have one value wherever a compile reads them."""

from __future__ import annotations

from dataclasses import replace

from include_server.analysis.conditions import Conditions, Decision
from include_server.analysis.lexer import scan

CMDLINE = "#define __GNUC__ 12\n#define __cplusplus 201703L\n#define LEVEL 2\n"
CONFIG = (  # a file reached: Boost.Preprocessor's style of configuration
    "#ifndef CFG_H\n#define CFG_H\n"
    "#define STRICT() 0x1\n#define MSVC() 0x4\n#define MWCC() 0x8\n"
    "#if defined(_MSC_VER)\n#define FLAGS() (MSVC())\n"
    "#elif defined(__MWERKS__)\n#define FLAGS() (MWCC())\n"
    "#else\n#define FLAGS() (STRICT())\n#endif\n"
    "#define ZERO 0\n#if defined(_MSC_VER)\n#undef ZERO\n#define ZERO 1\n#endif\n"
    "#define ONE 1\n#define TWO 1\n#ifdef __MWERKS__\n#undef TWO\n#define TWO 2\n#endif\n"
    "#ifdef FEATURE\n#define VARIES 1\n#else\n#define VARIES 0\n#endif\n"
    "#endif\n#define FEATURE 1\n"  # this file may be read before FEATURE is defined, or after
)


def _conditions(
    files: str = CONFIG, remembered: dict[str, list[Decision]] | None = None
) -> Conditions:
    cmdline = scan(CMDLINE.encode())
    facts = scan(files.encode())
    decide: Conditions

    def lookup(name: str) -> tuple:
        defs = list(cmdline.macros.get(name, ()))
        for macro in facts.macros.get(name, ()):
            if decide.possible(facts.groups, macro.frames):
                defs.append(macro)
        return tuple(defs)

    decide = Conditions(
        cmdline,
        lambda name: name in facts.macros,
        lambda name: name in facts.undefs,
        lookup,
        {} if remembered is None else remembered,
    )
    return decide


def test_command_line_macros_no_file_touches_are_constant() -> None:
    decide = _conditions()
    assert decide.value("defined(__GNUC__) && __GNUC__ >= 4") is True
    assert decide.value("defined _MSC_VER || __cplusplus < 201103L") is False
    assert decide.value("LEVEL * 3 == 6 ? 1 : 0") is True
    assert decide.value("-7 / 2 == -3 && -7 % 2 == -1") is True  # C truncates toward zero
    assert decide.value("__INTEL_COMPILER >= 1700") is False  # never defined: 0


def test_function_like_macro_with_one_possible_body_decides() -> None:
    # FLAGS() has three definitions, two under branches decided false: one body is left, and
    # calling FLAGS() while it is undefined would stop the compile.
    decide = _conditions()
    assert decide.value("~FLAGS() & MWCC()") is True
    assert decide.value("FLAGS() & MSVC()") is False


def test_a_macro_that_is_undefined_or_zero_reads_zero_either_way() -> None:
    # ZERO is 0 wherever it is defined (its redefinition to 1 is set aside), and 0 before.
    assert _conditions().value("ZERO") is False
    # ONE reads 0 before its definition and 1 after: the condition can differ.
    assert _conditions().value("ONE") is None


def test_conditions_on_what_files_define_stay_undecided() -> None:
    decide = _conditions()
    assert decide.value("VARIES") is None  # FEATURE: defined when the file is read, or not yet
    assert decide.value("defined(CFG_H)") is None  # defined by the guard: false, then true
    assert decide.value("__LINE__ > 10") is None  # computed where it is read
    assert decide.value("__has_include(<x.h>)") is None
    assert decide.value("TWO == 1 || TWO == 0") is True  # its other body is set aside


def test_decisions_are_taken_again_while_their_names_are_in_the_same_states() -> None:
    remembered: dict[str, list[Decision]] = {}
    assert _conditions(remembered=remembered).value("VARIES") is None
    assert [d.value for d in remembered["VARIES"]] == [None]
    # In a unit where no file defines VARIES it keeps its command-line state (undefined): the
    # remembered answer does not hold, the condition is decided again, and both are kept.
    assert _conditions("", remembered).value("VARIES") is False
    assert [d.value for d in remembered["VARIES"]] == [False, None]
    remembered["VARIES"][1] = replace(remembered["VARIES"][1], value=True)  # mark it
    assert _conditions(remembered=remembered).value("VARIES") is True  # taken again as it is
    assert _conditions("", remembered).value("VARIES") is False
    assert len(remembered["VARIES"]) == 2


def test_group_nesting_is_not_trusted_where_a_directive_name_is_spliced() -> None:
    text = "#ifndef G\n#define G\n#if X\n#define A 1\n  #el\\\nse\n#define B 2\n#endif\n#endif\n"
    assert scan(text.encode()).groups == []
    # A backslash-newline after '#' elsewhere in a line ('##' in a macro body) is no directive.
    text = text.replace("  #el\\\nse", "#define CAT(a) a##\\\n x\n#else")
    assert scan(text.encode()).groups == [["!defined G"], [" X", None]]


def test_group_nesting_is_not_trusted_where_a_comment_may_hide_a_directive() -> None:
    text = "#ifndef G\n#define G\n#if X\n#define A 1\n/* old:\n#else\n*/\n#define B 2\n"
    text += "#endif\n#endif\n"
    facts = scan(text.encode())
    assert facts.groups == [] and all(not m.frames for ms in facts.macros.values() for m in ms)
    facts = scan(text.replace("/* old:\n#else\n*/\n", "").encode())
    assert facts.groups == [["!defined G"], [" X"]]
    assert facts.macros["B"][0].frames == ((("G", 1), 0),)  # the guard's own group left out
