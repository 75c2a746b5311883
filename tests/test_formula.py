"""The formula parser: a table of lme4 formulas and the terms they expand to."""

import pytest

from lmelib.formula import parse_formula

CASES = [
    # formula, fixed part, [(expr, factors, name), ...]
    ("y ~ x + (1 | g)", "x", [("1", ("g",), "g")]),
    ("y ~ x + (x | g)", "x", [("x", ("g",), "g")]),
    ("y ~ x + (0 + x | g)", "x", [("0 + x", ("g",), "g")]),
    ("y ~ x + (x || g)", "x", [("1", ("g",), "g"), ("0 + x", ("g",), "g")]),
    ("y ~ 1 + (x + z || g)", "1", [("1", ("g",), "g"), ("0 + x", ("g",), "g"), ("0 + z", ("g",), "g")]),
    ("y ~ (0 + x || g)", "1", [("0 + x", ("g",), "g")]),
    ("y ~ (1 | a/b)", "1", [("1", ("a",), "a"), ("1", ("b", "a"), "b:a")]),
    ("y ~ (1 | a/b/c)", "1",
     [("1", ("a",), "a"), ("1", ("b", "a"), "b:a"), ("1", ("c", "b", "a"), "c:b:a")]),
    ("y ~ (1 | a:b)", "1", [("1", ("a", "b"), "a:b")]),
    ("y ~ x + (1 | a) + (1 | b)", "x", [("1", ("a",), "a"), ("1", ("b",), "b")]),
    ("log(y) ~ log(x) + C(f) + (1 | g)", "log(x) + C(f)", [("1", ("g",), "g")]),
    ("y ~ x - 1 + (1 | g)", "x - 1", [("1", ("g",), "g")]),
    ("y ~ x + (1 | g) - 1", "x - 1", [("1", ("g",), "g")]),
    ("y ~ x * z + I(x ** 2) + (x | g)", "x * z + I(x ** 2)", [("x", ("g",), "g")]),
    ("y ~ x", "x", []),
]


@pytest.mark.parametrize("formula, fixed, terms", CASES)
def test_parse(formula, fixed, terms):
    parsed = parse_formula(formula)
    assert parsed.fixed == fixed
    assert [(t.expr, t.factors, t.name) for t in parsed.random] == terms


def test_response_and_fixed_formula():
    parsed = parse_formula("log(gsp) ~ log(pc) + unemp + (1 | region/state)")
    assert parsed.response == "log(gsp)"
    assert parsed.fixed_formula == "log(gsp) ~ log(pc) + unemp"
    assert [t.name for t in parsed.random] == ["region", "state:region"]


@pytest.mark.parametrize("formula, message", [
    ("y x + (1 | g)", "exactly one '~'"),
    ("~ x", "no response"),
    ("y ~ x + (1 | g", "unbalanced"),
    ("y ~ x - (1 | g)", "cannot subtract"),
    ("y ~ x + (1 | 2g)", "grouping factor"),
])
def test_bad_formulas(formula, message):
    with pytest.raises(ValueError, match=message):
        parse_formula(formula)


# formula, response, cbind parts, offsets: what the parser returns besides the terms
PARTS = [
    ("y ~ x + (1 | g)", "y", None, ()),
    ("cbind(s, f) ~ x + (1 | g)", "cbind(s, f)", ("s", "f"), ()),
    ("cbind(k, n - k) ~ x + (1 | g)", "cbind(k, n - k)", ("k", "n - k"), ()),
    ("cbind(pmax(k, 0), n - pmax(k, 0)) ~ 1 + (1 | g)", "cbind(pmax(k, 0), n - pmax(k, 0))",
     ("pmax(k, 0)", "n - pmax(k, 0)"), ()),
    ("y ~ x + offset(log(n)) + (1 | g)", "y", None, ("log(n)",)),
    ("y ~ offset(a) + x + offset(2 * b) + (1 | g)", "y", None, ("a", "2 * b")),
    ("cbind(s, f) ~ x + offset(o) + (1 | g)", "cbind(s, f)", ("s", "f"), ("o",)),
]


@pytest.mark.parametrize("formula, response, cbind, offsets", PARTS)
def test_response_cbind_and_offsets(formula, response, cbind, offsets):
    parsed = parse_formula(formula)
    assert (parsed.response, parsed.cbind, parsed.offsets) == (response, cbind, offsets)
    assert "offset" not in parsed.fixed and "cbind" not in parsed.fixed


@pytest.mark.parametrize("formula", ["cbind(s) ~ x", "cbind(s, f, g) ~ x", "cbind(s, ) ~ x"])
def test_cbind_takes_two_parts(formula):
    with pytest.raises(ValueError, match=r"cbind\(\) in .* takes two columns or expressions"):
        parse_formula(formula)
