"""Non-finite values (issue 15): an error naming the term and the number of rows, as R.

R stops on NaN or ±inf that a transformation makes or that the response holds
(``NA/NaN/Inf in 'y'``, ``NA/NaN/Inf in foreign function call``; recorded in
tests/reference/interface_reference.json); lmelib did not: ``log(Days)`` with
``Days == 0`` dropped the column as "rank deficient" and fitted an intercept.
Missing values already in the data keep their rule: dropped, counted, reported.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import lmelib
from conftest import load_reference

ERRORS = load_reference("interface_reference.json")["errors"]


def sleep(**changes):
    s = lmelib.datasets.load_sleepstudy()
    for col, (rows, value) in changes.items():
        s[col] = s[col].astype(float)
        s.loc[rows, col] = value
    return s


def cbpp(**columns):
    return lmelib.datasets.load_cbpp().assign(**columns)


def _lmer(formula, data):
    return lmelib.lmer(formula, data)


def _lm(formula, data):
    return lmelib.lm(formula, data)


def _gls(formula, data):
    return lmelib.gls(formula, data, correlation=lmelib.AR1("Days", "Subject"))


def _glmer(formula, data):
    return lmelib.glmer(formula, data, family="poisson" if formula.startswith("incidence") else "binomial")


# (fit, formula, data, the term named, rows): each must raise ValueError naming the term and "k of n rows"
CASES = [
    (_lmer, "Reaction ~ log(Days) + (1 | Subject)", sleep(), "log(Days)", "18 of 180"),
    (_lmer, "Reaction ~ Days + (log(Days) | Subject)", sleep(), "log(Days)", "18 of 180"),
    (_lm, "Reaction ~ exp(100 * Days)", sleep(), "exp(100 * Days)", "36 of 180"),
    (_gls, "Reaction ~ log(Days)", sleep(), "log(Days)", "18 of 180"),
    (_lmer, "Reaction ~ Days + (1 | Subject)", sleep(Reaction=([0], np.inf)), "Reaction", "1 of 180"),
    (_lmer, "Reaction ~ Days + (1 | Subject)", sleep(Reaction=([0, 5], -np.inf)), "Reaction", "2 of 180"),
    (_lm, "Reaction ~ Days", sleep(Reaction=([7], np.inf)), "Reaction", "1 of 180"),
    (_lmer, "log(Reaction - 250) ~ Days + (1 | Subject)", sleep(), "log(Reaction - 250)", "of 180"),
    (_lmer, "Reaction ~ Days + (1 | Subject)", sleep(Days=([3], np.inf)), "Days", "1 of 180"),
    (_glmer, "cbind(incidence, size - incidence) ~ log(incidence) + (1 | herd)", cbpp(), "log(incidence)",
     "of 56"),
    (_glmer, "incidence ~ period + offset(log(size - 5)) + (1 | herd)", cbpp(), "offset(log(size - 5))",
     "of 56"),
    (lambda f, d: lmelib.glmer(f, d, family="poisson", offset="lsize"), "incidence ~ period + (1 | herd)",
     cbpp(lsize=np.r_[-np.inf, np.log(lmelib.datasets.load_cbpp()["size"][1:])]), "lsize", "1 of 56"),
    (lambda f, d: lmelib.glmer(f, d, weights="size"), "incidence / size ~ period + (1 | herd)",
     cbpp(size=lmelib.datasets.load_cbpp()["size"].astype(float).where(lambda s: s != 12, np.inf)),
     "size", "of 56"),
    (lambda f, d: lmelib.lmer(f, d, weights=lmelib.VarPower("x")), "Reaction ~ Days + (1 | Subject)",
     sleep().assign(x=np.where(sleep()["Days"] == 9, np.inf, 1.0)), "x", "18 of 180"),
]


@pytest.mark.parametrize("fit, formula, data, term, rows", CASES,
                         ids=[f"{c[0].__name__.strip('_')}: {c[1]} {i}" for i, c in enumerate(CASES)])
def test_nonfinite_is_an_error_naming_term_and_rows(fit, formula, data, term, rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "divide by zero in log"
        with pytest.raises(ValueError) as err:
            fit(formula, data)
    msg = str(err.value)
    assert f"'{term}' in" in msg and rows in msg and "NA/NaN/Inf" in msg


def test_r_stops_too():
    assert ERRORS["inf_response"]["error"] == "NA/NaN/Inf in 'y'"
    assert "NA/NaN/Inf" in ERRORS["log_zero"]["error"]
    assert ERRORS["log_zero_random"]["error"] is not None


def test_missing_values_in_the_data_are_still_dropped_and_counted():
    s = sleep(Days=([3, 4], np.nan))
    with pytest.warns(UserWarning, match="2 of 180 rows dropped for missing values \\(Days: 2\\)"):
        m = lmelib.lmer("Reaction ~ log(Days + 1) + (1 | Subject)", s)
    assert m.nobs == 178
    assert "2 rows with missing values were dropped (Days: 2)" in str(m.summary())


def test_finite_transformations_fit():
    m = lmelib.lmer("Reaction ~ log(Days + 1) + (1 | Subject)", sleep(), reml=False)
    ref = {f["id"]: f for f in load_reference("interface_reference.json")["formulas"]}["log_transform"]
    assert m.objective == pytest.approx(ref["objective"], rel=1e-8)
    assert list(m.fixef.index) == ref["fixef"]["names"]
