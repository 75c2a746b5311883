"""PIRLS (lmelib/pirls.py): weighted cross-products without scipy.sparse, against the sparse route.

The pattern of [Z X z]ᵀ W [Z X z] is analysed once per fit; every PIRLS step
then only sums weighted products per level or per pair of levels.  These tests
check the values against ``CrossProducts.of`` (which builds sparse matrices),
the one-term shortcut against the blocked Cholesky, and that a whole fit after
the model frame constructs no sparse matrix at all.
"""

import dataclasses

import numpy as np
import pytest
import scipy.sparse._base

import lmelib
import lmelib.pirls
from lmelib.deviance import CrossProducts, ProfiledDeviance, dense
from lmelib.design import model_frame
from lmelib.family import family
from lmelib.glmm import GeneralizedLinearMixedModel
from lmelib.pirls import PIRLS, WeightedProducts


def _data(name):
    d = lmelib.datasets.load(name)
    if name == "contraception":
        d["use01"] = (d["use"] == "Y").astype(int)
    return d


MODELS = {  # formula, data, family: one scalar term, a vector term, crossed and three crossed terms
    "cbpp": ("incidence ~ period + (1 | herd)", "cbpp", "poisson"),
    "contraception_rs": ("use01 ~ age + urban + (urban | district)", "contraception", "binomial"),
    "grouseticks": ("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "grouseticks", "poisson"),
    "grouseticks_olre": ("TICKS ~ YEAR + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", "grouseticks", "poisson"),
    "sleep_crossed_slope": ("Reaction ~ Days + (Days | Subject) + (1 | Days)", "sleepstudy", None),
    "grouseticks_rest_slope": ("TICKS ~ cHEIGHT + (1 | INDEX) + (cHEIGHT | LOCATION) + (1 | BROOD)",
                               "grouseticks", "poisson"),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("with_x", [True, False])
@pytest.mark.parametrize("stream", [False, True])
def test_weighted_products_equal_the_sparse_cross_products(name, with_x, stream, monkeypatch):
    """Both ways of forming the group sums: concatenated (small data) and one job at a time (large)."""
    if stream:
        monkeypatch.setattr(lmelib.pirls, "ROWS_PER_CALL", 10)
    formula, data, _ = MODELS[name]
    frame = model_frame(formula, _data(data), residual=False)
    rng = np.random.default_rng(1)
    w, z = rng.uniform(0.1, 3.0, frame.n), rng.normal(size=frame.n)
    got = WeightedProducts(frame, with_x).of(w, z)
    ref_frame = dataclasses.replace(frame, y=z, X=frame.X if with_x else np.zeros((frame.n, 0)))
    want = CrossProducts.of(ref_frame, sqrtw=np.sqrt(w))
    np.testing.assert_allclose(got.A11, want.A11, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dense(got.AR1), dense(want.AR1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.ARR, want.ARR, rtol=1e-12, atol=1e-10)
    assert (got.rest, got.q_rest, got.m1, got.ell1, got.p) == (want.rest, want.q_rest, want.m1, want.ell1, want.p)


@pytest.mark.parametrize("name", ["cbpp", "contraception_rs"])
def test_one_term_shortcut_equals_the_blocked_cholesky(name):
    formula, data, fam = MODELS[name]
    frame = model_frame(formula, _data(data), residual=False)
    y = frame.y
    pirls = PIRLS(frame, family(fam), y, np.ones(frame.n), np.zeros(frame.n))
    theta = np.array([0.8]) if frame.terms[0].ell == 1 else np.array([0.9, -0.3, 0.5])
    rng = np.random.default_rng(2)
    w, z = rng.uniform(0.1, 3.0, frame.n), rng.normal(size=frame.n)
    wp, solver = pirls._setup(False)
    sol, u = pirls._solve_one_term(theta, wp, w, z)
    ref = ProfiledDeviance(dataclasses.replace(frame, X=np.zeros((frame.n, 0))), False, cp=wp.of(w, z)).solve(theta)
    np.testing.assert_allclose(u, ref.u, rtol=1e-10, atol=1e-12)
    assert sol.ldL2 == pytest.approx(ref.ldL2, rel=1e-12)


@pytest.mark.parametrize("name", ["cbpp", "contraception_rs", "grouseticks"])
def test_mode_is_stationary_and_its_laplace_settled(name):
    """The mode PIRLS returns (without a solve after its last small step) is the mode: a further
    fixed-point run from it moves u by less than 1e-9 and the Laplace deviance by less than 1e-9,
    whether it starts from zero or from a nearby warm start."""
    formula, data, fam = MODELS[name]
    frame = model_frame(formula, _data(data), residual=False)
    pirls = PIRLS(frame, family(fam), frame.y, np.ones(frame.n), np.zeros(frame.n))
    k = sum(t.ell * (t.ell + 1) // 2 for t in frame.terms)
    theta = np.full(k, 0.7) if k == len(frame.terms) else np.array([0.9, -0.3, 0.5])
    beta = pirls.mode(theta, np.zeros(frame.p), with_beta=True).beta
    cold = pirls.mode(theta, beta)
    warm = pirls.mode(theta, beta, u0=cold.u * 1.01)
    again = pirls.mode(theta, beta, u0=cold.u)
    assert again.iterations == 1  # the mode is recognised at once
    for m in (warm, again):
        np.testing.assert_allclose(m.u, cold.u, rtol=0, atol=1e-9)
        assert abs(m.laplace - cold.laplace) < 1e-9


@pytest.fixture
def sparse_constructions(monkeypatch):
    """Counts every scipy.sparse matrix or array made (all of them run _spbase.__init__)."""
    count = {"n": 0}
    original = scipy.sparse._base._spbase.__init__

    def counting(self, *args, **kwargs):
        count["n"] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(scipy.sparse._base._spbase, "__init__", counting)
    return count


@pytest.mark.parametrize("name, nagq", [("cbpp", 1), ("cbpp", 9), ("contraception_rs", 1),
                                        ("grouseticks", 1), ("grouseticks_olre", 1)])
def test_a_glmm_fit_constructs_no_sparse_matrix(name, nagq, sparse_constructions):
    formula, data, fam = MODELS[name]
    frame = model_frame(formula, _data(data), residual=False)  # the model frame may; the fit not
    sparse_constructions["n"] = 0
    m = GeneralizedLinearMixedModel.fit(frame, family(fam), nagq)
    assert m.pirls_iterations > m.optsum.feval  # the loop did run: at least one step per evaluation
    assert sparse_constructions["n"] == 0, f"{sparse_constructions['n']} sparse constructions during the fit"


def test_the_counter_sees_sparse_constructions(sparse_constructions):
    """The fixture is not vacuous: the sparse route of CrossProducts does construct matrices."""
    formula, data, _ = MODELS["grouseticks"]
    frame = model_frame(formula, _data(data), residual=False)
    sparse_constructions["n"] = 0
    CrossProducts.of(frame, sqrtw=np.ones(frame.n))
    assert sparse_constructions["n"] > 0


@pytest.mark.parametrize("nagq", [2, 9, 25])
def test_agq_correction_equals_the_node_by_node_sum(nagq):
    """The vectorised quadrature (all nodes and levels in one array) against a plain loop over nodes."""
    from lmelib.pirls import agq_correction

    d = _data("cbpp")
    frame = model_frame("incidence ~ period + (1 | herd)", d, residual=False)
    pirls = PIRLS(frame, family("poisson"), frame.y, np.ones(frame.n), np.log(d["size"].to_numpy(float)))
    theta, beta = np.array([0.7]), np.array([-2.0, -1.0, -1.1, -1.6])
    mode = pirls.mode(theta, beta)
    term, fam = frame.terms[0], pirls.family
    z, w = np.polynomial.hermite_e.hermegauss(nagq)
    w = w / w.sum()
    Lii = mode.solution.L11[:, 0, 0]
    base = mode.eta - theta[0] * mode.u[term.codes]

    def g(u):
        ll = fam.loglik(pirls.y, fam.link.linkinv(base + theta[0] * u[term.codes]), pirls.prior_w)
        return -2.0 * np.bincount(term.codes, weights=ll, minlength=term.n_levels) + u**2

    acc = sum(wk * np.exp(-0.5 * (g(mode.u + zk / Lii) - g(mode.u)) + 0.5 * zk**2) for zk, wk in zip(z, w))
    assert agq_correction(pirls, theta, mode, nagq) == pytest.approx(-2.0 * np.log(acc).sum(), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("name", ["grouseticks_olre", "grouseticks_rest_slope"])
@pytest.mark.parametrize("with_x", [True, False])
def test_observation_level_term_absorbed_into_the_weights(name, with_x):
    """An observation-level first term: A_RR − L21 L21ᵀ from modified weights gives the same
    factor as the product with L21 (WeightedProducts.of with lam1, CrossProducts.absorbed)."""
    formula, data, _ = MODELS[name]
    frame = model_frame(formula, _data(data), residual=False)
    wp = WeightedProducts(frame, with_x)
    assert wp.absorbs
    solver = ProfiledDeviance(dataclasses.replace(frame, X=wp.X), False, cp=wp._template)
    rng = np.random.default_rng(5)
    w, z = rng.uniform(0.1, 3.0, frame.n), rng.normal(size=frame.n)
    n_theta = len(solver.start)
    for theta in (np.full(n_theta, 0.8), rng.uniform(0.1, 2.0, n_theta)):
        plain = solver.solve(theta, cp=wp.of(w, z))
        absorbed_cp = wp.of(w, z, float(theta[0]))
        assert absorbed_cp.absorbed and not wp.of(w, z).absorbed
        absorbed = solver.solve(theta, cp=absorbed_cp)
        # the two routes round differently where the Schur complement cancels digits
        np.testing.assert_allclose(absorbed.L22, plain.L22, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(absorbed.u, plain.u, rtol=1e-9, atol=1e-12)
        assert absorbed.ldL2 == pytest.approx(plain.ldL2, rel=1e-12)


def test_no_absorption_without_an_observation_level_first_term():
    formula, data, _ = MODELS["grouseticks"]
    assert not WeightedProducts(model_frame(formula, _data(data), residual=False), True).absorbs


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_newton_steps_for_a_non_canonical_link_reach_the_fisher_mode(link):
    """PIRLS with observed-information (Newton) steps ends at the same mode as Fisher scoring, in
    fewer steps, and returns the factor at the expected weights (lme4's Laplace approximation)."""
    formula, data, _ = MODELS["contraception_rs"]
    frame = model_frame(formula, _data(data), residual=False)
    theta, beta = np.array([0.9, -0.3, 0.5]), np.array([-0.5, 0.01, 0.6])
    newton = PIRLS(frame, family("binomial", link), frame.y, np.ones(frame.n), np.zeros(frame.n))
    fisher = PIRLS(frame, family("binomial", link), frame.y, np.ones(frame.n), np.zeros(frame.n))
    assert newton._newton
    fisher._newton = False
    a, b = newton.mode(theta, beta), fisher.mode(theta, beta)
    np.testing.assert_allclose(a.u, b.u, rtol=0, atol=1e-9)
    assert a.laplace == pytest.approx(b.laplace, rel=1e-11)
    np.testing.assert_allclose(a.solution.L11, b.solution.L11, rtol=1e-8)  # the same (expected) weights
    assert a.iterations < b.iterations


def test_canonical_links_keep_fisher_scoring():
    formula, data, fam = MODELS["grouseticks"]
    frame = model_frame(formula, _data(data), residual=False)
    assert not PIRLS(frame, family(fam), frame.y, np.ones(frame.n), np.zeros(frame.n))._newton
    assert not PIRLS(frame, family("binomial"), np.zeros(frame.n), np.ones(frame.n), np.zeros(frame.n))._newton
