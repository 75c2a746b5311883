"""lm against R's lm: the lecture's baselines (reference in lmer_reference.json)."""

import numpy as np
import pytest

import lmelib
from conftest import load_reference

LM = {r["name"]: r for r in load_reference("lmer_reference.json")["lm"]}


@pytest.fixture(scope="module")
def fits():
    return {name: lmelib.lm(r["formula_py"], lmelib.datasets.load(r["data"][:-4])) for name, r in LM.items()}


@pytest.mark.parametrize("name", LM)
def test_coefficients(fits, name):
    ref, m = LM[name], fits[name]
    np.testing.assert_allclose(m.coef, ref["coef"], rtol=1e-8)
    np.testing.assert_allclose(m.se, ref["se"], rtol=1e-8)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-10)
    assert m.df_resid == ref["df_residual"]


@pytest.mark.parametrize("name", LM)
def test_likelihood(fits, name):
    ref, m = LM[name], fits[name]
    assert m.loglik == pytest.approx(ref["loglik"], rel=1e-10)
    assert m.aic == pytest.approx(ref["aic"], rel=1e-10)
    assert m.bic == pytest.approx(ref["bic"], rel=1e-10)
    assert m.r_squared == pytest.approx(ref["r_squared"], rel=1e-8, abs=1e-12)


def test_summary_reports_coefficients(fits):
    text = str(fits["jsp_math3"].summary())
    assert "math3" in text and "Residual standard error" in text


def test_random_terms_rejected():
    with pytest.raises(ValueError, match="use lmelib.lmer"):
        lmelib.lm("math5 ~ math3 + (1 | school)", lmelib.datasets.load_jsp())
