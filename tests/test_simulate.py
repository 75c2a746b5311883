"""simulate, refit and the parametric bootstrap.

Simulated moments are compared with the covariance the model implies,
built from ``varcorr`` (itself checked against lme4 in test_lmm.py):
Var(y_i) = z_iᵀ Σ z_i + σ², with Σ the random-effects covariance.  Monte-Carlo
tolerances are stated with each test (fixed seeds, several standard errors).
θ names are compared with lme4's (tests/reference/lmer_reference.json).
"""


from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import lmelib
from conftest import fit_lmer, load_reference
from lmelib.simulate import BootstrapResult, bootstrap, refit, simulate, theta_names

LMER_REF = load_reference("lmer_reference.json")


def variance_of(m, grp: str, var1: str, var2=None) -> float:
    """A variance (or, with var2, a covariance) from ``varcorr``, as lme4 names it."""
    vc = m.varcorr
    second = vc["var2"].isna() if var2 is None else vc["var2"] == var2
    row = vc[(vc["grp"] == grp) & (vc["var1"] == var1) & second]
    assert len(row) == 1
    return float(row["vcov"].iloc[0])


# ------------------------------------------------------------- simulate


def test_group_means_variance():
    """Var(ȳ_g) = σ_u² + σ²/n_g and E[within-group variance] = σ² (Dyestuff: 6 batches of 5).

    6 × 4000 group means: the relative standard error of their variance is
    √(2 / 24000) ≈ 0.9%; tolerance 5%.
    """
    m = fit_lmer("dyestuff.csv", "Yield ~ 1 + (1 | Batch)", True)
    sims = simulate(m, nsim=4000, seed=11).to_numpy()
    codes = m.frame.terms[0].codes
    means = np.stack([sims[codes == g].mean(axis=0) for g in range(6)])
    within = np.stack([sims[codes == g].var(axis=0, ddof=1) for g in range(6)])
    beta = m.fixef.iloc[0]
    s2u, s2 = variance_of(m, "Batch", "(Intercept)"), m.sigma**2
    assert np.mean((means - beta) ** 2) == pytest.approx(s2u + s2 / 5, rel=0.05)
    assert within.mean() == pytest.approx(s2, rel=0.03)


def test_random_slope_covariance():
    """Per-subject least-squares coefficients of a random-slope model have covariance
    Σ + σ²(Z_iᵀZ_i)⁻¹, Σ the covariance of (intercept, slope) (Orthodont, ages 8-14).

    Orthodont's intercept and slope are strongly correlated, so this sees the
    difference between σ²λλᵀ and σ²λᵀλ (slope variance 0.051 vs 0.021).
    1500 simulations × 27 children; tolerance 4% (the standard errors are ≤ 1%).
    """
    m = fit_lmer("orthodont.csv", "distance ~ age + Sex + (age | Subject)", True)
    sims = simulate(m, nsim=1500, seed=3).to_numpy()
    resid = sims - (m.frame.X @ m.fixef.to_numpy())[:, None]
    codes, age = m.frame.terms[0].codes, m.frame.data["age"].to_numpy(dtype=float)
    coefs, Zs = [], []
    for g in range(m.frame.terms[0].n_levels):
        Z = np.column_stack([np.ones((codes == g).sum()), age[codes == g]])
        coefs.append(np.linalg.lstsq(Z, resid[codes == g], rcond=None)[0].T)  # nsim × 2
        Zs.append(Z)
    assert all(np.array_equal(Z, Zs[0]) for Z in Zs), "balanced: the same ages for every child"
    s00 = variance_of(m, "Subject", "(Intercept)")
    s11 = variance_of(m, "Subject", "age")
    s01 = variance_of(m, "Subject", "(Intercept)", "age")
    implied = np.array([[s00, s01], [s01, s11]]) + m.sigma**2 * np.linalg.inv(Zs[0].T @ Zs[0])
    empirical = np.cov(np.concatenate(coefs), rowvar=False)
    np.testing.assert_allclose(empirical, implied, rtol=0.04)


@pytest.mark.parametrize("data, formula, groups", [
    ("penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)", ["plate", "sample"]),
    ("pastes.csv", "strength ~ 1 + (1 | batch/cask)", ["batch", "cask:batch"]),
])
def test_several_terms_variance(data, formula, groups):
    """Var(y_i) = Σ_terms σ_t² + σ² for crossed and nested intercepts (3000 simulations, 4%)."""
    m = fit_lmer(data, formula, True)
    sims = simulate(m, nsim=3000, seed=5).to_numpy()
    resid = sims - (m.frame.X @ m.fixef.to_numpy())[:, None]
    implied = sum(variance_of(m, g, "(Intercept)") for g in groups) + m.sigma**2
    assert np.mean(resid**2) == pytest.approx(implied, rel=0.04)


@lru_cache(maxsize=None)
def grunfeld_fit(**structure):
    return lmelib.lmer("inv ~ value + capital + (1 | firm)", lmelib.datasets.load("grunfeld"), **structure)


def within_firm(m, sims: np.ndarray) -> list[np.ndarray]:
    """Each firm's simulated rows in year order: one years × nsim array per firm."""
    codes, year = m.frame.terms[0].codes, m.frame.data["year"].to_numpy()
    return [sims[codes == g][np.argsort(year[codes == g])] for g in range(m.frame.terms[0].n_levels)]


def test_ar1_errors():
    """AR(1) errors within firm: differences remove the firm effect, and
    Var(ε_{t+k} − ε_t) = 2σ²(1 − φ^k) (2000 simulations × 10 firms; tolerance 4%)."""
    m = grunfeld_fit(correlation=lmelib.AR1("year", "firm"))
    phi = m.structure["Phi"]
    resid = simulate(m, nsim=2000, seed=12).to_numpy() - (m.frame.X @ m.fixef.to_numpy())[:, None]
    firms = within_firm(m, resid)
    for k in (1, 2):
        diffs = np.concatenate([(f[k:] - f[:-k]).ravel() for f in firms])
        assert np.mean(diffs**2) == pytest.approx(2 * m.sigma**2 * (1 - phi**k), rel=0.04)


def test_varident_errors():
    """varIdent by firm: within-firm variance about the firm mean is σ² ratio_firm²
    (2000 simulations × 19 df per firm; tolerance 5%)."""
    m = grunfeld_fit(weights=lmelib.VarIdent("firm"))
    levels = m.frame.terms[0].levels
    firms = within_firm(m, simulate(m, nsim=2000, seed=13).to_numpy())
    mu = within_firm(m, (m.frame.X @ m.fixef.to_numpy())[:, None])
    for level, f, mean in zip(levels, firms, mu):
        ratio = m.structure.get(f"firm={level}", 1.0)  # the first level is the reference
        resid = f - mean
        within = resid - resid.mean(axis=0)
        assert np.mean(within.var(axis=0, ddof=1)) == pytest.approx(m.sigma**2 * ratio**2, rel=0.05)


def test_refit_keeps_error_structure():
    m = grunfeld_fit(correlation=lmelib.AR1("year", "firm"))
    again = refit(m, m.frame.y)
    assert again.errors is m.errors and again.objective == pytest.approx(m.objective, rel=1e-10)
    assert "Phi" in bootstrap(m, 2, seed=1, progress=False).draws.columns


def test_lm_simulation():
    """lm: y = Xβ̂ + ε with ε ~ N(0, σ̂²), σ̂ on n − p df as R's simulate.lm."""
    m = lmelib.lm("Reaction ~ Days", lmelib.datasets.load("sleepstudy"))
    sims = simulate(m, nsim=3000, seed=9).to_numpy()
    resid = sims - m.fitted().to_numpy()[:, None]
    assert np.abs(resid.mean(axis=1)).max() < 5 * m.sigma / np.sqrt(3000)
    assert np.mean(resid**2) == pytest.approx(m.sigma**2, rel=0.03)


def test_simulate_reproducible_and_named():
    m = fit_lmer("dyestuff.csv", "Yield ~ 1 + (1 | Batch)", True)
    a, b, c = simulate(m, 3, seed=1), simulate(m, 3, seed=1), simulate(m, 3, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    assert list(a.columns) == ["sim_1", "sim_2", "sim_3"] and a.shape == (30, 3)
    assert a.attrs["seed"] == 1
    with pytest.raises(ValueError):
        simulate(m, nsim=0)
    with pytest.raises(TypeError):
        simulate("model")


# ----------------------------------------------------------------- refit


def test_refit_same_response_same_fit():
    m = fit_lmer("sleepstudy.csv", "Reaction ~ Days + (Days | Subject)", True)
    again = refit(m, m.frame.y)
    assert again.reml and again.objective == pytest.approx(m.objective, rel=1e-10)
    with pytest.raises(ValueError, match="values"):
        refit(m, m.frame.y[:-1])


@pytest.mark.parametrize("ref", LMER_REF["models"], ids=lambda r: r["name"])
def test_theta_names_match_lme4(ref):
    m = fit_lmer(ref["data"], ref["formula"], ref["reml"])
    assert theta_names(m) == ref["theta_names"]


# ------------------------------------------------------------- bootstrap


def test_bootstrap_responses_are_simulate_columns():
    """Draw k of bootstrap(m, nsim, seed) is refitted to column k of simulate(m, nsim, seed)."""
    m = fit_lmer("dyestuff.csv", "Yield ~ 1 + (1 | Batch)", True)
    boot = bootstrap(m, 4, seed=21, func=lambda f: pd.Series(f.frame.y), progress=False)
    np.testing.assert_array_equal(boot.draws.to_numpy(), simulate(m, 4, seed=21).to_numpy().T)


def test_bootstrap_default_statistics():
    m = fit_lmer("dyestuff.csv", "Yield ~ 1 + (1 | Batch)", True)
    boot = bootstrap(m, 10, seed=4, progress=False)
    assert isinstance(boot, BootstrapResult)
    assert list(boot.draws.columns) == ["(Intercept)", "Batch.(Intercept)", "sigma"]
    assert boot.t0["sigma"] == pytest.approx(m.sigma) and boot.complete and boot.failed == 0
    assert (boot.draws["Batch.(Intercept)"] >= 0).all() and boot.draws.notna().all().all()
    again = bootstrap(m, 10, seed=4, progress=False)
    pd.testing.assert_frame_equal(boot.draws, again.draws)


def test_bootstrap_lm_matches_standard_errors():
    """For lm the bootstrap distribution of β̂ is N(β̂, σ̂²(XᵀX)⁻¹) exactly:
    its sd is the usual standard error (400 draws: relative se of an sd 3.5%; tolerance 15%),
    and the 95% percentile interval is about β̂ ± 1.96 se."""
    m = lmelib.lm("Reaction ~ Days", lmelib.datasets.load("sleepstudy"))
    boot = bootstrap(m, 400, seed=8, progress=False)
    np.testing.assert_allclose(boot.draws[["(Intercept)", "Days"]].std(), m.se, rtol=0.15)
    ci = boot.confint(0.95)
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    for name in ("(Intercept)", "Days"):
        lo, hi = ci.loc[name]
        assert abs(lo - (m.fixef[name] - 1.96 * m.se[name])) < 0.3 * m.se[name]
        assert abs(hi - (m.fixef[name] + 1.96 * m.se[name])) < 0.3 * m.se[name]
    wide = boot.confint(0.99)
    assert (wide.iloc[:, 0] <= ci.iloc[:, 0]).all() and (wide.iloc[:, 1] >= ci.iloc[:, 1]).all()


class Interrupting:
    """A statistic that raises KeyboardInterrupt (as Ctrl-C would) once ``k`` draws are made."""

    def __init__(self, k: int):
        self.calls, self.k = 0, k

    def __call__(self, fit):
        self.calls += 1
        if self.calls > self.k + 1:  # the first call is t0, on the original fit
            raise KeyboardInterrupt
        return {"mean": float(fit.frame.y.mean()), "sigma": fit.sigma}


def test_bootstrap_interrupt_keeps_draws():
    m = fit_lmer("dyestuff.csv", "Yield ~ 1 + (1 | Batch)", True)
    with pytest.warns(UserWarning, match="interrupted after 3 of 10"):
        boot = bootstrap(m, 10, seed=5, func=Interrupting(3), progress=False)
    assert (boot.nsim_done, boot.nsim_requested, len(boot.draws)) == (3, 10, 3)
    assert not boot.complete and boot.seed == 5
    full = bootstrap(m, 3, seed=5, func=Interrupting(100), progress=False)
    pd.testing.assert_frame_equal(boot.draws, full.draws)
    assert boot.confint().shape == (2, 2)


def test_bootstrap_failed_refits_counted():
    m = lmelib.lm("Reaction ~ Days", lmelib.datasets.load("sleepstudy"))
    calls = []

    def flaky(fit):
        calls.append(1)
        if len(calls) in (3, 5):
            raise FloatingPointError("not positive definite")
        return {"slope": fit.fixef["Days"]}

    with pytest.warns(UserWarning, match="2 of 6 bootstrap refits failed"):
        boot = bootstrap(m, 6, seed=1, func=flaky, progress=False)
    assert (boot.failed, len(boot.draws), boot.nsim_done) == (2, 4, 6)


def test_bootstrap_seed_recorded_when_not_given():
    m = lmelib.lm("Reaction ~ Days", lmelib.datasets.load("sleepstudy"))
    boot = bootstrap(m, 3, progress=False)
    again = bootstrap(m, 3, seed=boot.seed, progress=False)
    assert boot.seed is not None
    pd.testing.assert_frame_equal(boot.draws, again.draws)


def test_bootstrap_quiet_without_progress(capsys):
    m = lmelib.lm("Reaction ~ Days", lmelib.datasets.load("sleepstudy"))
    bootstrap(m, 5, seed=1, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
