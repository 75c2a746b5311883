"""Random effects after a fit (lmelib/ranef.py): conditional modes, conditional variances, VarCorr.

References: lme4's ``ranef(m, condVar = TRUE)`` and θ in tests/reference/lmer_reference.json.
The fits are moved to lme4's θ (conftest.at_theta), so that the comparison tests the read-outs
and not the optimiser: conditional modes and standard deviations within 1e-6 relative.  The
blocked formula for the conditional covariance is also checked against the dense textbook
σ² Λ (ΛᵀZᵀZΛ + I)⁻¹ Λᵀ at 1e-10.
"""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.linalg

from conftest import at_theta, fit_lmer, load_reference
from lmelib.ranef import (conditional_variances, ranef_frames, split_b, tidy_ranef, unique_names,
                          varcorr_table, zb)

MODELS = {r["name"]: r for r in load_reference("lmer_reference.json")["models"]}
# one scalar term, two crossed, two nested, a 2 × 2 term, and two terms of one factor (||)
CASES = ["dyestuff_ri_reml", "penicillin_crossed_reml", "pastes_nested_ml", "sleepstudy_rs_reml",
         "sleepstudy_rs_uncorr_ml"]
RTOL = 1e-6


def at_r_theta(name):
    ref = MODELS[name]
    return ref, at_theta(fit_lmer(ref["data"], ref["formula"], ref["reml"]), ref["theta"])


def dense_lambda(m) -> np.ndarray:
    """Λθ as a dense q × q matrix: one λ per level of each term."""
    return scipy.linalg.block_diag(*[np.kron(np.eye(t.n_levels), lam)
                                     for t, lam in zip(m.frame.terms, m.lambdas)])


@pytest.mark.parametrize("name", CASES)
def test_conditional_modes_against_lme4(name):
    ref, m = at_r_theta(name)
    b = split_b(m.frame.terms, m.lambdas, m.solution.u)
    frames = ranef_frames(m.frame.terms, b)
    assert set(frames) == set(ref["ranef"])
    for grp, r in ref["ranef"].items():
        got = frames[grp]
        assert list(got.columns) == r["columns"] and got.index.name == grp
        want = np.array(r["values"], dtype=float)
        np.testing.assert_allclose(got.loc[r["levels"]].to_numpy(), want, rtol=RTOL,
                                   atol=RTOL * np.abs(want).max())


@pytest.mark.parametrize("name", CASES)
def test_conditional_sd_against_lme4(name):
    ref, m = at_r_theta(name)
    V = conditional_variances(m.solution, m.frame.terms, m.lambdas, m.sigma)
    tidy = tidy_ranef(m.frame.terms, split_b(m.frame.terms, m.lambdas, m.solution.u), V)
    assert list(tidy.columns) == ["grpvar", "term", "grp", "condval", "condsd"]
    for grp, r in ref["ranef"].items():
        sd = tidy.query("grpvar == @grp").pivot(index="grp", columns="term", values="condsd")
        np.testing.assert_allclose(sd.loc[r["levels"], r["columns"]].to_numpy(),
                                   np.array(r["condsd"], dtype=float), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_conditional_variances_against_dense_formula(name):
    """The blocked computation equals σ² Λ (ΛᵀZᵀZΛ + I)⁻¹ Λᵀ formed densely, level by level."""
    _, m = at_r_theta(name)
    Z, Lam = m.frame.Z.toarray(), dense_lambda(m)
    ZL = Z @ Lam
    dense = m.sigma**2 * Lam @ np.linalg.inv(ZL.T @ ZL + np.eye(Z.shape[1])) @ Lam.T
    V = conditional_variances(m.solution, m.frame.terms, m.lambdas, m.sigma)
    start = 0
    for term, Vt in zip(m.frame.terms, V):
        assert Vt.shape == (term.n_levels, term.ell, term.ell)
        for g in range(term.n_levels):
            idx = start + g * term.ell + np.arange(term.ell)
            np.testing.assert_allclose(Vt[g], dense[np.ix_(idx, idx)], rtol=1e-10,
                                       atol=1e-10 * np.abs(dense).max())
        start += term.q


@pytest.mark.parametrize("name", ["penicillin_crossed_reml", "sleepstudy_rs_reml"])
def test_split_b_and_zb_are_lambda_u(name):
    """b = Λθ u term by term, and zb(b) = Z Λθ u."""
    _, m = at_r_theta(name)
    u = m.solution.u
    b = split_b(m.frame.terms, m.lambdas, u)
    np.testing.assert_allclose(np.concatenate([bt.ravel() for bt in b]), dense_lambda(m) @ u, rtol=1e-12)
    got = zb(b, [(t.codes, t.values) for t in m.frame.terms])
    np.testing.assert_allclose(got, m.frame.Z @ (dense_lambda(m) @ u), rtol=1e-10, atol=1e-10)


def test_zb_adds_nothing_for_unseen_levels():
    b = [np.array([[1.0, 2.0], [3.0, 4.0]])]
    codes, values = np.array([0, -1, 1]), np.array([[1.0, 10.0], [1.0, 10.0], [1.0, -1.0]])
    np.testing.assert_array_equal(zb(b, [(codes, values)]), [21.0, 0.0, -1.0])


def test_varcorr_table_from_lambda():
    """σ² λλᵀ with λ = [[2, 0], [1, 1]], σ = 0.5: variances 1 and 0.5, correlation 0.5/√0.5."""
    term = SimpleNamespace(name="g", columns=("(Intercept)", "x"), ell=2)
    vc = varcorr_table([term], [np.array([[2.0, 0.0], [1.0, 1.0]])], 0.5)
    assert list(vc["grp"]) == ["g", "g", "g", "Residual"]
    assert list(vc["var1"].fillna("NA")) == ["(Intercept)", "x", "(Intercept)", "NA"]
    assert list(vc["var2"].fillna("NA")) == ["NA", "NA", "x", "NA"]
    np.testing.assert_allclose(vc["vcov"], [1.0, 0.5, 0.5, 0.25], rtol=1e-15)
    np.testing.assert_allclose(vc["sdcor"], [1.0, np.sqrt(0.5), 0.5 / np.sqrt(0.5), 0.5], rtol=1e-15)


def test_varcorr_table_zero_variance_has_no_correlation():
    term = SimpleNamespace(name="g", columns=("(Intercept)", "x"), ell=2)
    vc = varcorr_table([term], [np.array([[1.0, 0.0], [0.0, 0.0]])], 1.0, residual=False)
    assert len(vc) == 3 and np.isnan(vc["sdcor"].iloc[2])


def test_unique_names_as_make_unique():
    assert unique_names(["g", "g", "h", "g"]) == ["g", "g.1", "h", "g.2"]


def test_ranef_frames_put_terms_of_one_factor_side_by_side():
    terms = [SimpleNamespace(name="s", levels=["a", "b"], columns=("(Intercept)",)),
             SimpleNamespace(name="s", levels=["a", "b"], columns=("x",))]
    frames = ranef_frames(terms, [np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]])])
    pd.testing.assert_frame_equal(frames["s"], pd.DataFrame({"(Intercept)": [1.0, 2.0], "x": [3.0, 4.0]},
                                                            index=pd.Index(["a", "b"], name="s")))
