"""confint() against lme4: Wald, profile and parametric-bootstrap intervals.

References: the ``confint`` entries of tests/reference/inference_reference.json
(lme4's ``confint(m, method = "Wald")`` and ``"profile"``) and, in
ddf_reference.json, boot's percentile interpolation and R's column names.

Tolerances (issue "lmelib inference"): Wald intervals 1e-6 relative, profile
intervals 1e-3.  The Wald intervals are compared at lme4's own θ (the fit moved
there) to 1e-6, which tests the formula for every entry, and for lmelib's own
fit, wherever lme4's fit reached the optimum, to 1e-5: lme4's optimizer leaves
β̂ uncertain in the 6th digit (test_lmm.py compares fixed effects to 1e-5).  Profile intervals of all models
are in test_profile.py; here the ``confint`` entry point is checked on one.
Bootstrap draws depend on the random-number generator, so they are not
compared with R's; their intervals are checked against the draws themselves.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from conftest import as_frame, at_theta, fit_lmer, load_reference
from lmelib.confint import boot_confint, confint, percentile_interval
from lmelib.profile import interval_labels, varpar

REF = load_reference("inference_reference.json")
CONFINT = {e["name"]: e for e in REF["confint"]}
FITS = {m["name"]: m for m in load_reference("lmer_reference.json")["models"]}
EXTRA = load_reference("ddf_reference.json")
WALD_RTOL, OWN_FIT_RTOL, PROFILE_RTOL = 1e-6, 1e-5, 1e-3
DYESTUFF = ("dyestuff.csv", "Yield ~ 1 + (1 | Batch)")


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame, rtol: float):
    assert list(got.index) == list(want.index)
    assert list(got.columns) == list(want.columns)
    assert (got.isna() == want.isna()).all().all()
    ok = want.notna().to_numpy()
    np.testing.assert_allclose(got.to_numpy()[ok], want.to_numpy()[ok], rtol=rtol)


@pytest.mark.parametrize("name", CONFINT)
def test_wald_at_lme4_theta(name):
    ref = CONFINT[name]
    m = at_theta(fit_lmer(ref["data"], ref["formula"], ref["reml"]), FITS[name]["theta"])
    assert_same_table(confint(m, method="Wald"), as_frame(ref["wald"]), WALD_RTOL)


@pytest.mark.parametrize("name", [n for n in CONFINT if FITS[n].get("default_at_optimum") is not False])
def test_wald_own_fit(name):
    ref = CONFINT[name]
    m = fit_lmer(ref["data"], ref["formula"], ref["reml"])
    assert_same_table(confint(m, method="Wald"), as_frame(ref["wald"]), OWN_FIT_RTOL)


@pytest.mark.parametrize("reml", [True, False])
def test_profile_method(reml):
    name = "dyestuff_ri_reml" if reml else "dyestuff_ri_ml"
    got = confint(fit_lmer(*DYESTUFF, reml))
    assert_same_table(got, as_frame(CONFINT[name]["profile"]), PROFILE_RTOL)


def test_parm_selection():
    m = fit_lmer("sleepstudy.csv", "Reaction ~ Days + (Days | Subject)", True)
    wald = confint(m, method="Wald")
    assert list(confint(m, "theta_", method="Wald").index) == [".sig01", ".sig02", ".sig03", ".sigma"]
    assert list(confint(m, "beta_", method="Wald").index) == ["(Intercept)", "Days"]
    pd.testing.assert_frame_equal(confint(m, ["Days", ".sigma"], method="Wald"),
                                  wald.loc[[".sigma", "Days"]])  # the model's order, as lme4
    with pytest.raises(KeyError, match="not a parameter"):
        confint(m, "days", method="Wald")


def test_level_and_method():
    m = fit_lmer(*DYESTUFF, True)
    ci = confint(m, method="Wald", level=0.9)
    z = scipy.stats.norm.ppf(0.95)
    se = np.sqrt(m.vcov.iloc[0, 0])
    np.testing.assert_allclose(ci.loc["(Intercept)"], m.fixef.iloc[0] + np.array([-z, z]) * se, rtol=1e-12)
    with pytest.raises(ValueError, match="method"):
        confint(m, method="wald")
    with pytest.raises(ValueError, match="level"):
        confint(m, level=95)


@pytest.mark.parametrize("case", EXTRA["format_perc"], ids=lambda c: str(c["level"]))
def test_column_names_as_r(case):
    assert interval_labels(case["level"]) == case["names"]


@pytest.mark.parametrize("case", EXTRA["norm_inter"], ids=["199 draws", "57 draws", "20 draws"])
def test_percentiles_as_boot_package(case):
    extreme = (len(case["t"]) + 1) * min(case["alpha"]) < 1  # boot warns and takes the extreme
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = percentile_interval(np.array(case["t"]), case["alpha"])
    assert bool(caught) == extreme
    np.testing.assert_allclose(got, case["quantiles"], rtol=1e-12)


def statistics(fit) -> pd.Series:
    """What lme4 bootstraps for confint: sd/correlation parameters, σ and β."""
    return pd.concat([varpar(fit), fit.fixef])


def test_bootstrap_intervals():
    """Intervals from the draws of lmelib.simulate.bootstrap with the same seed."""
    from lmelib.simulate import bootstrap

    m = fit_lmer(*DYESTUFF, True)
    nsim, seed = 15, 2024
    draws = bootstrap(m, nsim, seed=seed, func=statistics, progress=False).draws
    with pytest.warns(UserWarning, match="extreme order statistics") as caught:  # 15 draws for 95 %
        perc = confint(m, method="boot", nsim=nsim, seed=seed, progress=False)
    assert len(caught) == 1
    assert list(perc.index) == [".sig01", ".sigma", "(Intercept)"]
    assert list(perc.columns) == ["2.5 %", "97.5 %"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the extreme order statistics, as above
        for name in perc.index:
            want = percentile_interval(draws[name].to_numpy(), [0.025, 0.975])
            np.testing.assert_allclose(perc.loc[name], want)
    t0 = statistics(m)
    with pytest.warns(UserWarning, match="extreme order statistics"):
        basic = boot_confint(m, 0.95, nsim, seed, "basic", progress=False)
    np.testing.assert_allclose(basic.to_numpy(), 2 * t0.to_numpy()[:, None] - perc.to_numpy()[:, ::-1])
    norm = boot_confint(m, 0.9, nsim, seed, "norm", progress=False)
    half = draws.std(ddof=1).to_numpy() * scipy.stats.norm.ppf(0.95)
    centre = 2 * t0.to_numpy() - draws.mean().to_numpy()
    np.testing.assert_allclose(norm.to_numpy(), np.c_[centre - half, centre + half])
    other = confint(m, method="boot", level=0.8, nsim=nsim, seed=seed + 1, progress=False)
    assert list(other.columns) == ["10 %", "90 %"]
    assert np.all(other.to_numpy()[:, 0] < other.to_numpy()[:, 1])
