"""glmer's input checks: responses outside their family's support, and degenerate fits."""

import numpy as np
import pandas as pd
import pytest

import lmelib


@pytest.fixture(scope="module")
def cbpp():
    return lmelib.datasets.load_cbpp()


def test_binomial_response_outside_unit_interval(cbpp):
    with pytest.raises(ValueError, match=r"binomial response 'incidence' must lie in \[0, 1\].*row \d+ has"):
        lmelib.glmer("incidence ~ period + (1 | herd)", cbpp, family="binomial")


def test_non_integer_successes(cbpp):
    data = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    data.loc[0, "prop"] = 0.123
    with pytest.raises(ValueError, match="whole numbers of successes; row 0 has 0.123"):
        lmelib.glmer("prop ~ period + (1 | herd)", data, family="binomial", weights="size")


def test_poisson_counts(cbpp):
    neg = cbpp.assign(incidence=cbpp["incidence"].astype(float))
    neg.loc[3, "incidence"] = -1
    with pytest.raises(ValueError, match="Poisson response 'incidence' must be non-negative whole counts; row 3 has -1"):
        lmelib.glmer("incidence ~ period + (1 | herd)", neg, family="poisson")
    frac = cbpp.assign(incidence=cbpp["incidence"] + 0.5)
    with pytest.raises(ValueError, match="row 0 has 2.5"):
        lmelib.glmer("incidence ~ period + (1 | herd)", frac, family="poisson")


def test_unknown_family_and_link(cbpp):
    with pytest.raises(ValueError, match="family 'gamma' is not supported"):
        lmelib.glmer("incidence ~ period + (1 | herd)", cbpp, family="gamma")
    with pytest.raises(ValueError, match="link 'log' is not available for the binomial family"):
        lmelib.glmer("incidence ~ period + (1 | herd)", cbpp, family="binomial", link="log")


def test_quadrature_needs_one_scalar_term():
    sleep = lmelib.datasets.load_sleepstudy()
    data = sleep.assign(slow=(sleep["Reaction"] > 300).astype(int))
    with pytest.raises(ValueError, match="single scalar random-effects term"):
        lmelib.glmer("slow ~ Days + (Days | Subject)", data, family="binomial", nagq=5)


def test_two_level_category_response_first_level_is_failure():
    jsp = lmelib.datasets.load_jsp()
    m_cat = lmelib.glmer("gender ~ math3 + (1 | school)", jsp, family="binomial")
    m_num = lmelib.glmer("girl ~ math3 + (1 | school)",
                         jsp.assign(girl=(jsp["gender"] == "girl").astype(int)), family="binomial")
    # categories sorted: boy < girl, so "girl" is the success, as R
    assert m_cat.objective == pytest.approx(m_num.objective, rel=1e-8)
    np.testing.assert_allclose(m_cat.fixef, m_num.fixef, rtol=1e-5)


def test_proportion_with_weights_equals_cbind(cbpp):
    a = lmelib.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    b = lmelib.glmer("prop ~ period + (1 | herd)", cbpp.assign(prop=cbpp["incidence"] / cbpp["size"]),
                     weights="size")
    assert a.objective == pytest.approx(b.objective, rel=1e-10)


def test_separation_warns():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(20), 10)
    x = rng.normal(size=200)
    y = (x > 0).astype(int)  # x separates y completely
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    with pytest.warns(RuntimeWarning, match="numerically 0 or 1"):
        lmelib.glmer("y ~ x + (1 | g)", data, family="binomial")


def test_weights_multiply_the_trials_of_cbind(cbpp):
    """R's binomial family: with cbind(s, f), prior weights are weights × (s + f); weights 2 are
    the same data as counts doubled."""
    a = lmelib.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                     weights=np.full(len(cbpp), 2.0))
    b = lmelib.glmer("cbind(2 * incidence, 2 * (size - incidence)) ~ period + (1 | herd)", cbpp)
    assert a.objective == pytest.approx(b.objective, rel=1e-10)
    np.testing.assert_allclose(a.prior_weights, 2 * cbpp["size"])
