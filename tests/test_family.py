"""Families and links (lmelib/family.py) against closed forms and scipy.stats' distributions.

Links: g(g⁻¹(η)) = η, known quantiles (probit(0.975) = 1.959963984540054), and dμ/dη against
both its closed form and a central difference of g⁻¹ (1e-7 relative).  Variance functions
μ(1 − μ) and μ.  The conditional log-density against scipy.stats' binom and poisson (1e-12),
whose −2 × sum is lme4's ``aic``; unit deviances against McCullagh & Nelder's closed forms.
"""

import numpy as np
import pytest
import scipy.stats

from lmelib.family import LINKS, family

ETA = np.linspace(-4.0, 4.0, 17)
# cloglog: beyond η ≈ 3.6, μ = 1 − exp(−eʸ) is within rounding of 1 and is clipped, as R clips it
ETA_OF = {"cloglog": np.linspace(-4.0, 2.5, 14)}
MU01 = np.array([0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])


@pytest.mark.parametrize("name", ["logit", "probit", "cloglog", "log"])
def test_link_inverts(name):
    link, eta = LINKS[name], ETA_OF.get(name, ETA)
    np.testing.assert_allclose(link.linkfun(link.linkinv(eta)), eta, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name, mu, eta", [
    ("logit", 0.75, np.log(3.0)),
    ("probit", 0.975, 1.959963984540054),
    ("probit", 0.5, 0.0),
    ("cloglog", 1 - np.exp(-1.0), 0.0),
    ("cloglog", 1 - np.exp(-np.e), 1.0),
    ("log", np.e**2, 2.0),
])
def test_link_known_values(name, mu, eta):
    assert LINKS[name].linkfun(np.array([mu]))[0] == pytest.approx(eta, rel=1e-12, abs=1e-12)
    assert LINKS[name].linkinv(np.array([eta]))[0] == pytest.approx(mu, rel=1e-12)


@pytest.mark.parametrize("name, closed", [
    ("logit", lambda e: np.exp(e) / (1 + np.exp(e)) ** 2),
    ("probit", lambda e: np.exp(-e**2 / 2) / np.sqrt(2 * np.pi)),
    ("cloglog", lambda e: np.exp(e - np.exp(e))),
    ("log", np.exp),
])
def test_mu_eta(name, closed):
    link, eta, h = LINKS[name], ETA_OF.get(name, ETA), 1e-5
    numeric = (link.linkinv(eta + h) - link.linkinv(eta - h)) / (2 * h)
    np.testing.assert_allclose(link.mu_eta(eta), closed(eta), rtol=1e-12)
    np.testing.assert_allclose(link.mu_eta(eta), numeric, rtol=1e-7)


@pytest.mark.parametrize("name", ["logit", "probit", "cloglog"])
def test_binomial_mean_stays_inside_the_unit_interval(name):
    """R's binomial links clip μ to [ε, 1 − ε] and floor dμ/dη at ε (ε the machine epsilon)."""
    eps = np.finfo(float).eps
    with np.errstate(over="ignore"):
        mu = LINKS[name].linkinv(np.array([-800.0, 800.0]))
        np.testing.assert_array_equal(LINKS[name].mu_eta(np.array([-800.0, 800.0])), [eps, eps])
    np.testing.assert_array_equal(mu, [eps, 1 - eps])


def test_variance_functions():
    np.testing.assert_allclose(family("binomial").variance(MU01), MU01 * (1 - MU01), rtol=1e-15)
    mu = np.array([0.2, 1.0, 7.5])
    np.testing.assert_array_equal(family("poisson").variance(mu), mu)


def test_binomial_loglik_is_dbinom():
    """y a proportion of wt trials: log dbinom(wt·y, wt, μ)."""
    wt = np.array([1.0, 5.0, 12.0, 12.0, 20.0])
    k = np.array([1.0, 2.0, 0.0, 12.0, 7.0])
    mu = np.array([0.3, 0.5, 0.1, 0.9, 0.35])
    got = family("binomial").loglik(k / wt, mu, wt)
    np.testing.assert_allclose(got, scipy.stats.binom.logpmf(k, wt, mu), rtol=1e-12)


def test_poisson_loglik_is_dpois_times_weight():
    y, mu, wt = np.array([0.0, 1.0, 4.0, 11.0]), np.array([0.5, 1.2, 3.0, 9.0]), np.array([1.0, 1.0, 2.0, 0.5])
    got = family("poisson").loglik(y, mu, wt)
    np.testing.assert_allclose(got, wt * scipy.stats.poisson.logpmf(y, mu), rtol=1e-12)


def test_aic_is_minus_twice_the_log_density():
    """lme4's aic for the Laplace approximation: −2 Σ log p(y | μ), here as R's binomial()$aic."""
    wt, k, mu = np.array([10.0, 10.0, 4.0]), np.array([3.0, 0.0, 4.0]), np.array([0.25, 0.05, 0.8])
    aic = -2 * family("binomial").loglik(k / wt, mu, wt).sum()
    assert aic == pytest.approx(-2 * scipy.stats.binom.logpmf(k, wt, mu).sum(), rel=1e-12)


def test_poisson_unit_deviance():
    """2 [y log(y/μ) − (y − μ)], and 2μ at y = 0."""
    y, mu, wt = np.array([0.0, 1.0, 4.0, 11.0]), np.array([0.5, 1.2, 3.0, 9.0]), np.ones(4)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = 2 * (np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu))
    np.testing.assert_allclose(family("poisson").unit_deviance(y, mu, wt), want, rtol=1e-10)


def test_binomial_unit_deviance():
    """2 wt [y log(y/μ) + (1 − y) log((1 − y)/(1 − μ))], terms with y = 0 or 1 dropped."""
    wt = np.array([1.0, 8.0, 8.0, 5.0])
    y = np.array([1.0, 0.25, 0.0, 0.6])
    mu = np.array([0.7, 0.4, 0.2, 0.5])
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(y / mu), 0.0)
        b = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    np.testing.assert_allclose(family("binomial").unit_deviance(y, mu, wt), 2 * wt * (a + b), rtol=1e-10)


def test_family_names_and_errors():
    assert str(family("binomial", "probit")) == "binomial ( probit )"
    assert family("poisson").link.name == "log"
    with pytest.raises(ValueError, match="family 'gamma' is not supported"):
        family("gamma")
    with pytest.raises(ValueError, match="link 'probit' is not available for the poisson family"):
        family("poisson", "probit")
