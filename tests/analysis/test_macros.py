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


def test_alternatives_that_spell_the_same_tokens_reconverge() -> None:
    # X has two definitions that both end in 'y': 2**13 combinations, one header name.  Only a
    # macro name's hide set can matter, so the plain tokens' histories do not tell them apart.
    text = (
        "#define A y\n#define B y\n#define X A\n#define X B\n"
        "#define N(a, b, c, d, e, f, g, i, j, k, l, m, n) <a/b/c/d/e/f/g/i/j/k/l/m/n.hpp>\n"
    )
    line = "N(X, X, X, X, X, X, X, X, X, X, X, X, X)"
    assert _names(text, line) == {("<", "y/y/y/y/y/y/y/y/y/y/y/y/y.hpp")}


def test_pasted_names_expand_and_recursion_stops() -> None:
    text = (
        '#define CAT(a, b) a ## b\n#define F_1 "f1.h"\n#define H H\n'
        "#define G(x) G(x)\n#define R <r.h> R\n"
    )
    assert _names(text, "CAT(F_, 1)") == {('"', "f1.h")}
    assert _names(text, "H") == set()
    assert _names(text, "G(1)") == set()
    assert _names(text, "R") == {("<", "r.h")}
