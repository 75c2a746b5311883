"""R's formula constructs (issue 15): each fitted as lme4 fits it, or rejected with a clear message.

Reference: the "formulas" entries of tests/reference/interface_reference.json,
ML fits of sleepstudy by lme4.  Tolerances: deviance 1e-8 relative, fixed
effects 1e-5 relative to max(|β|, 1), fitted values 1e-6 relative.
Coefficient names are compared with R's as they are (``factor(Days)1``,
``poly(Days, 2)1``, ``I(Days^2)``); tests/test_names.py has more of them.
"""


import numpy as np
import pandas as pd
import pytest

import lmelib
from lmelib.formula import parse_formula, r_arithmetic
from conftest import load_reference

REF = load_reference("interface_reference.json")
FORMULAS = {f["id"]: f for f in REF["formulas"]}


def _data(entry):
    s = lmelib.datasets.load_sleepstudy()
    return s.rename(columns={"Subject": "my subject"}) if "my subject" in entry["formula"] else s


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_r_formula_fits_as_lme4(name):
    ref = FORMULAS[name]
    m = lmelib.lmer(ref["python"], _data(ref), reml=False)
    assert ref["python"] == ref["formula"]  # the R text runs unchanged
    assert m.objective == pytest.approx(ref["objective"], rel=1e-8)
    assert list(m.fixef.index) == ref["fixef"]["names"]
    beta = np.array(ref["fixef"]["values"])
    np.testing.assert_allclose(m.fixef, beta, rtol=0, atol=1e-5 * max(np.abs(beta).max(), 1))
    np.testing.assert_allclose(m.fitted().iloc[:5], ref["fitted_head"], rtol=1e-6)


def test_poly_predicts_new_data_with_the_fitted_basis():
    ref = REF["poly_newdata"]
    m = lmelib.lmer("Reaction ~ poly(Days, 2) + (1 | Subject)", lmelib.datasets.load_sleepstudy(), reml=False)
    p = m.predict(pd.DataFrame({"Days": ref["Days"]}), re=False)
    np.testing.assert_allclose(p, ref["fixed_only"], rtol=1e-7)


def test_offset_is_added_to_fitted_and_predicted_values():
    s = lmelib.datasets.load_sleepstudy()
    m = lmelib.lmer("Reaction ~ Days + offset(2 * Days) + (1 | Subject)", s, reml=False)
    m0 = lmelib.lmer("Reaction ~ Days + (1 | Subject)", s, reml=False)
    np.testing.assert_allclose(m.fitted(), m0.fitted(), rtol=1e-6)
    np.testing.assert_allclose(m.residuals(), m0.residuals(), atol=1e-4)
    np.testing.assert_allclose(m.predict(s.head(4), re=False), m0.predict(s.head(4), re=False), rtol=1e-6)
    lm = lmelib.lm("Reaction ~ Days + offset(2 * Days)", s)
    assert lm.fixef["Days"] == pytest.approx(lmelib.lm("Reaction ~ Days", s).fixef["Days"] - 2, rel=1e-10)


def test_glmer_formula_offset_is_evaluated_on_newdata():
    cbpp = lmelib.datasets.load_cbpp()
    m = lmelib.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp, family="poisson")
    nd = cbpp.head(3)
    np.testing.assert_allclose(m.predict(nd), m.predict().iloc[:3], rtol=1e-8)
    doubled = nd.assign(size=2 * nd["size"])
    np.testing.assert_allclose(m.predict(doubled) - m.predict(nd), np.log(2), rtol=1e-10)


# (R text, what parse_formula or the fit must give)
ARITHMETIC = [
    ("y ~ I(x^2)", "y ~ I(x**2)"),
    ("y ~ log(x^2) + z", "y ~ log(x**2) + z"),
    ("y ~ I((x + 1)^3)", "y ~ I((x + 1)**3)"),
    ("y ~ (a + b)^2", "y ~ (a + b)^2"),  # formula crossing stays
    ("y ~ x + (x^2 | g)", "y ~ x + (x^2 | g)"),  # bare parentheses: not a call
    ("y ~ x + (I(x^2) | g)", "y ~ x + (I(x**2) | g)"),
]


@pytest.mark.parametrize("text, expected", ARITHMETIC)
def test_power_inside_calls_is_arithmetic(text, expected):
    assert r_arithmetic(text) == expected


def test_power_of_an_integer_column_is_a_power_not_xor():
    d = pd.DataFrame({"y": [1.0, 3, 2, 7, 5, 8], "k": [1, 2, 3, 4, 5, 6]})
    m = lmelib.lm("y ~ I(k^2)", d)
    ref = lmelib.lm("y ~ I(k**2)", d)
    np.testing.assert_allclose(m.fixef.to_numpy(), ref.fixef.to_numpy())


# (formula, exception, message): R constructs lmelib does not take, and malformed terms
REJECTED = [
    ("Reaction ~ Days + (| Subject)", ValueError, "nothing left of '\\|'.*write \\(1 \\| g\\)"),
    ("Reaction ~ Days + (|| Subject)", ValueError, "nothing left of '\\|'"),
    ("Reaction ~ Days + (Days | )", ValueError, "no grouping factor right of '\\|'"),
    ("Reaction ~ Days - offset(Days) + (1 | Subject)", ValueError, "cannot subtract offset\\(Days\\)"),
    ("Reaction ~ Days + (1 | Subject) - (1 | Subject)", ValueError, "cannot subtract the random-effects term"),
    ("Reaction ~ Days + (1 | log(Subject))", ValueError, "grouping factor 'log\\(Subject\\)'.*must be a column"),
    ("Reaction ~ Days + (1 | Subject", ValueError, "unbalanced parentheses"),
    ("Reaction ~ Days ~ Subject", ValueError, "exactly one '~'"),
    ("Reaction ~ s(Days) + (1 | Subject)", ValueError, "function 's' in the formula .* is not available"),
    ("Reaction ~ ns(Days, 3) + (1 | Subject)", ValueError, "function 'ns' in the formula"),
    ("Reaction ~ as.numeric(Days) + (1 | Subject)", ValueError, "function 'as.numeric' .* dotted function names"),
    ("Reaction ~ . + (1 | Subject)", ValueError, "R's '.' \\(every other column\\) .* not supported"),
    ("Reaction ~ factor(Days, levels = 9:0) + (1 | Subject)", ValueError, "cannot read 'Reaction ~ factor"),
    ("Reaction ~ Days %in% Subject + (1 | Subject)", ValueError, "%in% .* write a:b"),
    ("Reaction ~ Days + (1 | factor(Subject))", ValueError, "grouping factor 'factor\\(Subject\\)'.*must be a column"),
]


@pytest.mark.parametrize("formula, exc, message", REJECTED)
def test_rejected_with_a_clear_message(formula, exc, message):
    with pytest.raises(exc, match=message):
        lmelib.lmer(formula, lmelib.datasets.load_sleepstudy())


def test_r_functions_from_the_context():
    s = lmelib.datasets.load_sleepstudy()
    m = lmelib.lm("Reaction ~ ifelse(Days > 3, 1, 0) + pmin(Days, 5) + poly(Days, 2, raw = TRUE)", s)
    X = np.column_stack([np.ones(len(s)), s["Days"] > 3, np.minimum(s["Days"], 5), s["Days"], s["Days"] ** 2])
    beta, *_ = np.linalg.lstsq(X, s["Reaction"], rcond=None)
    np.testing.assert_allclose(m.fixef.to_numpy(), beta, rtol=1e-8)


def test_r_rejects_an_empty_bar_too():
    assert "unexpected '|'" in REF["errors"]["empty_bar"]["error"]


def test_backtick_names_in_the_random_part():
    parsed = parse_formula("y ~ x + (1 | `my group`) + (`my x` | `a b`:c)")
    assert [t.factors for t in parsed.random] == [("my group",), ("a b", "c")]
    assert parsed.random[0].name == "my group"


def test_backtick_names_fit_and_predict():
    s = lmelib.datasets.load_sleepstudy().rename(columns={"Days": "my days", "Subject": "my subject"})
    s["my group"] = np.where(s["my days"] > 4, "late", "early")
    m = lmelib.lmer("Reaction ~ `my days` + `my group` + (`my days` | `my subject`)", s)
    assert list(m.fixef.index)[:2] == ["(Intercept)", "my days"]
    rows = s.index[s["my subject"].isin([308, 309]) & s["my days"].isin([1, 2])]
    nd = s.loc[rows, ["my days", "my group", "my subject"]].astype({"my subject": str})
    np.testing.assert_allclose(m.predict(nd), m.fitted()[rows], rtol=1e-10)
    with pytest.raises(ValueError, match="factor my group has new level mid"):
        m.predict(nd.assign(**{"my group": "mid"}))
