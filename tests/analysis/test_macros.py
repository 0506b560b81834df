"""The computed-include expander against every definition of each macro."""

from __future__ import annotations

from include_server.analysis.lexer import scan, tokenize
from include_server.analysis.macros import Expander, header_names


def _names(text: str, line: str) -> set[tuple[str, str]]:
    macros = scan(text.encode()).macros
    expander = Expander(lambda name: tuple(macros.get(name, ())))
    return header_names(tuple(tokenize(line)), expander)


def test_all_definitions_are_followed() -> None:
    text = '#define H "a.h"\n#undef H\n#define H <b.h>\n'
    assert _names(text, "H") == {('"', "a.h"), ("<", "b.h")}


def test_paste_and_stringize_form_a_name() -> None:
    text = (
        "#define S(x) #x\n#define X(x) S(x)\n#define C(a, b) a ## b\n#define N(n) X(C(n, _i.h))\n"
    )
    assert _names(text, "N(dir/f)") == {('"', "dir/f_i.h")}


def test_boost_style_iteration_depths() -> None:
    text = (
        "#define CAT(a, b) CAT_I(a, b)\n#define CAT_I(a, b) a ## b\n"
        "#define INC(x) INC_I(x)\n#define INC_I(x) INC_ ## x\n#define INC_0 1\n#define INC_1 2\n"
        "#define DEPTH() 0\n#define DEPTH() 1\n#define ITERATE() CAT(IT_, INC(DEPTH()))\n"
        "#define IT_1 <fwd1.hpp>\n#define IT_2 <fwd2.hpp>\n"
    )
    assert _names(text, "ITERATE()") == {("<", "fwd1.hpp"), ("<", "fwd2.hpp")}
