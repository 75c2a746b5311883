"""Satterthwaite and Kenward-Roger t tests against lmerTest and pbkrtest.

References: the ``satterthwaite`` and ``kenward_roger`` entries of
tests/reference/inference_reference.json (lmerTest's ``summary(m, ddf = ...)``
of REML fits), and in ddf_reference.json: Satterthwaite tables of ML fits,
single contrasts that are not unit vectors, and a 2-df Kenward-Roger test.

Each table is compared twice:

* at lmerTest's own θ (the fit moved there), which tests the methods for every
  entry: df and the adjusted Kenward-Roger standard errors within 1e-3
  relative (issue "lmelib inference"), estimates and the other standard errors
  within 1e-6, p values 1e-1 (a p value of 1e-130 moves by 10 % when t moves
  in its 5th digit);
* for lmelib's own fit wherever lme4's fit reached the optimum (lme4's default
  fit of jsp_math3_rs did not; see lmer_reference.json): df 1e-3 as before,
  but estimates, standard errors and t values within 1e-4, the agreement of
  the fits themselves (test_lmm.py), and p values only as the t distribution
  gives them.
"""


import numpy as np
import pandas as pd
import pytest
import scipy.stats

from conftest import as_frame, at_theta, fit_lmer, load_reference
from lmelib.ddf import coef_table, contest1d, kenward_roger, satterthwaite

REF = load_reference("inference_reference.json")
EXTRA = load_reference("ddf_reference.json")
FITS = {m["name"]: m for m in load_reference("lmer_reference.json")["models"]}
TABLES = {(ddf, e["name"]): e for ddf, key in [("Satterthwaite", "satterthwaite"),
                                                ("Kenward-Roger", "kenward_roger")]
          for e in REF[key]}
DF_RTOL, SE_RTOL = 1e-3, 1e-6
COLUMNS = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]


def assert_table(got: pd.DataFrame, want: pd.DataFrame, se_rtol: float, est_rtol: float = 1e-6):
    assert list(got.columns) == COLUMNS
    assert list(got.index) == list(want.index)  # R's names: "SexMale", "(Intercept)"
    g, w = got.to_numpy(), want.to_numpy()
    np.testing.assert_allclose(g[:, 0], w[:, 0], rtol=est_rtol, err_msg="Estimate")
    np.testing.assert_allclose(g[:, 1], w[:, 1], rtol=se_rtol, err_msg="Std. Error")
    np.testing.assert_allclose(g[:, 2], w[:, 2], rtol=DF_RTOL, err_msg="df")
    np.testing.assert_allclose(g[:, 3], w[:, 3], rtol=max(se_rtol, est_rtol), err_msg="t value")
    np.testing.assert_allclose(g[:, 4], 2 * scipy.stats.t.sf(np.abs(g[:, 3]), g[:, 2]), rtol=1e-12)
    if est_rtol <= 1e-6:
        np.testing.assert_allclose(g[:, 4], w[:, 4], rtol=0.1, err_msg="Pr(>|t|)")


@pytest.mark.parametrize("ddf,name", TABLES)
def test_at_lmertest_theta(ddf, name):
    e = TABLES[ddf, name]
    m = at_theta(fit_lmer(e["data"], e["formula"], True), FITS[name]["theta"])
    # the adjusted KR standard errors are held to the df tolerance, the others to 1e-6
    se_rtol = SE_RTOL if ddf == "Satterthwaite" else DF_RTOL
    assert_table(coef_table(m, ddf), as_frame(e["coefficients"]), se_rtol)


@pytest.mark.parametrize("ddf,name", [k for k in TABLES if FITS[k[1]].get("default_at_optimum") is not False])
def test_own_fit(ddf, name):
    e = TABLES[ddf, name]
    m = fit_lmer(e["data"], e["formula"], True)
    assert_table(coef_table(m, ddf), as_frame(e["coefficients"]), se_rtol=1e-4, est_rtol=1e-4)


@pytest.mark.parametrize("case", EXTRA["satterthwaite_ml"], ids=lambda c: c["name"])
def test_satterthwaite_ml_fit(case):
    m = fit_lmer(case["data"], case["formula"], False)
    assert m.sigma == pytest.approx(case["sigma"], rel=1e-4)
    assert_table(coef_table(m), as_frame(case["coefficients"]), se_rtol=1e-4, est_rtol=1e-4)


@pytest.mark.parametrize("case", EXTRA["contrasts"], ids=lambda c: c["name"])
@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_contrast(case, ddf):
    m = at_theta(fit_lmer(case["data"], case["formula"], True), case["theta"])
    got, want = contest1d(m, case["L"], ddf), case[ddf]
    assert list(got) == COLUMNS
    for col, rtol in zip(COLUMNS, [1e-6, DF_RTOL, DF_RTOL, DF_RTOL, 100 * DF_RTOL]):
        assert got[col] == pytest.approx(want[col], rel=rtol), col


def test_kenward_roger_f_test_df():
    case = EXTRA["kenward_roger_f"]
    m = at_theta(fit_lmer(case["data"], case["formula"], True), case["theta"])
    assert kenward_roger(m).ddf(np.array(case["L"])) == pytest.approx(case["ddf"], rel=DF_RTOL)


def test_kenward_roger_needs_reml():
    m = fit_lmer("sleepstudy.csv", "Reaction ~ Days + (Days | Subject)", False)
    with pytest.raises(ValueError, match="REML"):
        coef_table(m, "Kenward-Roger")
    with pytest.raises(ValueError, match="ddf must be"):
        coef_table(m, "satterthwaite")


def test_kenward_roger_adjusts_upward():
    """Φ_A ≥ Φ: the adjustment adds the uncertainty of the variance parameters."""
    m = fit_lmer("orthodont.csv", "distance ~ age + Sex + (age | Subject)", True)
    kr = kenward_roger(m)
    np.testing.assert_allclose(kr.vcov, m.vcov.to_numpy(), rtol=1e-12)
    assert np.all(np.linalg.eigvalsh(kr.vcov_adj - kr.vcov) > -1e-12)
    assert np.trace(kr.vcov_adj) > np.trace(kr.vcov)


def test_satterthwaite_pieces():
    """A is positive definite; ∂C/∂σ = 2C/σ, since C(θ, σ) = σ² (R_XᵀR_X)⁻¹."""
    m = fit_lmer("sleepstudy.csv", "Reaction ~ Days + (Days | Subject)", True)
    s = satterthwaite(m)
    assert s.vcov_varpar.shape == (4, 4) and s.jacobian.shape == (4, 2, 2)
    assert np.all(np.linalg.eigvalsh(s.vcov_varpar) > 0)
    np.testing.assert_allclose(s.jacobian[-1], 2 * m.vcov.to_numpy() / m.sigma, rtol=1e-8)


def test_error_structures_refused():
    """lmerTest's methods assume residuals with covariance σ²I; nlme error structures are refused."""
    import lmelib

    m = lmelib.lmer("Reaction ~ Days + (1 | Subject)", lmelib.datasets.load("sleepstudy"),
                    correlation=lmelib.AR1(time="Days", group="Subject"))
    for ddf in ("Satterthwaite", "Kenward-Roger"):
        with pytest.raises(NotImplementedError, match="error structure"):
            coef_table(m, ddf)
