"""The computed-include expander against every definition of each macro."""

from __future__ import annotations

from include_server.analysis import macros as macros_module
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


def test_gcc_disables_a_macro_only_while_its_replacement_is_read() -> None:
    # f's replacement ends before g reads its arguments: f expands again (GCC gives '2*9*g'), as
    # the header name needs.  Hide sets carried by the tokens would have painted it.
    text = "#define f(a) N(a)\n#define g(a) f(a)\n#define N(a) <a.h> g\n#define A f(2)(9)\n"
    assert _names(text, "A") == {("<", "2.h")}  # GCC: '<2.h> <9.h> g'
    text = "#define ID(x) x\n"
    assert _names(text, "ID(ID(<y.h>))") == {("<", "y.h")}  # an argument expands on its own


def test_one_definition_per_macro_within_a_directive() -> None:
    text = "#define X a\n#define X b\n#define H(p, q) <p/q.h>\n"
    assert _names(text, "H(X, X)") == {("<", "a/a.h"), ("<", "b/b.h")}


GUARDED = (
    "#ifndef CFG_H\n#define CFG_H\n"
    "#if ~FLAGS() & MSVC()\n#define DIR plain\n#define EXT h\n"
    "#else\n#define DIR msvc\n#define EXT hpp\n#endif\n"
    "#endif\n#define H(d, e) <d/f.e>\n"
)


def test_branches_of_a_group_run_once_exclude_each_other() -> None:
    # The group is inside an include guard: one branch is taken, once, so DIR and EXT come from
    # the same branch whatever the condition is.
    assert _names(GUARDED, "H(DIR, EXT)") == {("<", "plain/f.h"), ("<", "msvc/f.hpp")}


def test_branches_of_a_group_that_may_run_twice_combine() -> None:
    # Without the guard, the file may be read twice with the condition changed in between: the
    # definitions of two readings mix, so every combination stays.
    unguarded = GUARDED.replace("#ifndef CFG_H\n#define CFG_H\n", "")
    unguarded = unguarded.replace("#endif\n#def", "#def")
    expected = {("<", f"{d}/f.{e}") for d in ("plain", "msvc") for e in ("h", "hpp")}
    assert _names(unguarded, "H(DIR, EXT)") == expected
    # Nor does a guard that some file undefines keep the file from being read twice.
    macros = scan(GUARDED.encode()).macros
    expander = Expander(lambda name: tuple(macros.get(name, ())), undone=lambda guard: True)
    assert header_names(tuple(tokenize("H(DIR, EXT)")), expander) == expected


def _tuples(count: int) -> str:
    text = "".join(f"#define P (2, (n{k}, <dir/f{k}.h>))\n" for k in range(count))
    text += "#define SECOND(t) SECOND_I t\n#define SECOND_I(n, x) x\n#define DATA(a) DATA_I a\n"
    return text + "#define DATA_I(s, t) t\n#define CAT(a, b) a ## b\n"


def test_alternatives_differing_in_inert_runs_share_one_expansion(monkeypatch) -> None:
    # 400 parameter tuples that differ only in a name and a header go through the element
    # extraction once, with placeholders, instead of once each.
    macros = scan(_tuples(400).encode()).macros
    steps = []
    for smallest_group in (macros_module.MIN_TEMPLATE, 10**9):
        monkeypatch.setattr(macros_module, "MIN_TEMPLATE", smallest_group)
        expander = Expander(lambda name: tuple(macros.get(name, ())))
        found = header_names(tuple(tokenize("SECOND(DATA(P))")), expander)
        assert found == {("<", f"dir/f{k}.h") for k in range(400)}
        steps.append(expander.steps)
    assert steps[0] * 2 < steps[1]


def test_a_pasted_placeholder_expands_its_alternatives_one_by_one() -> None:
    text = _tuples(40) + "#define FIRST(t) FIRST_I t\n#define FIRST_I(n, x) CAT(n, _)\n"
    assert _names(text + "#define n7_ <seven.h>\n", "FIRST(DATA(P))") == {("<", "seven.h")}
