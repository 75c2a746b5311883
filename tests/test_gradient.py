"""The analytic gradient of the profiled deviance and REML criterion (lmelib/gradient.py).

The reference is numDeriv-style Richardson extrapolation (lmelib.derivatives) of the same
ProfiledDeviance.  Its accuracy is checked in each test rather than assumed: two extrapolations
with initial relative steps 1e-2 and 3e-2 must agree to RICH_AGREE (in practice to ~1e-8 of the
gradient's scale: four levels remove the error terms up to h⁸, leaving the objective's rounding,
~1e-13 |f| / h, amplified by the extrapolation; shorter steps are worse, up to 5e-7 at 1e-3 on
the three-column produc model).  The analytic gradient must then match within
GRAD_RTOL = 1e-6 of max(1, |∇f|∞), well above that noise and far below the size of any error in
the formulas (a wrong term or factor changes components by O(1) relative).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import lmelib
from conftest import fit_lmer
from lmelib.derivatives import richardson_jacobian
from lmelib.deviance import CrossProducts, ProfiledDeviance
from lmelib.design import model_frame
from lmelib.gradient import gradient, objective_and_gradient

GRAD_RTOL = 1e-6
RICH_AGREE = 1e-7

# models of tests/reference (lmer_reference.json), and a three-term model on the same data
MODELS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", [0.9, 0.02, 0.2]),
    ("jsp", "math5 ~ math3 + (math3 | school)", [1.2, -0.1, 0.05]),
    ("jsp", "math5 ~ math3 + (math3 || school)", [0.5, 0.05]),
    ("produc", "log(gsp) ~ log(pc) + unemp + (1 | region/state)", [3.0, 2.0]),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", [1.5, 3.0]),
    ("grunfeld", "inv ~ value + capital + (1 | firm) + (1 | year)", [0.9, 0.1]),
    ("produc", "log(gsp) ~ log(pc) + (1 | state) + (1 | year) + (1 | region)", [3.0, 1.0, 2.0]),
    # a vector-valued term in the dense block, and three columns in the first
    ("produc", "log(gsp) ~ log(pc) + (1 | state) + (unemp | region)", [3.0, 1.0, -0.2, 0.3]),
    ("produc", "log(gsp) ~ log(pc) + (1 + unemp + log(pc) | state) + (1 | region)",
     [2.0, 0.1, -0.3, 0.4, 0.05, 0.2, 1.5]),
]


@pytest.fixture(params=["dense", "sparse"])
def storage(request, monkeypatch):
    """A_R1 stored dense (small models, the default) or sparse (large crossed designs)."""
    if request.param == "sparse":
        monkeypatch.setattr(lmelib.deviance, "DENSE_WORK", 0)
    return request.param


def richardson(f, theta) -> np.ndarray:
    """The gradient by Richardson extrapolation, checked against a second set of steps."""
    g1, g2 = (richardson_jacobian(lambda t: np.array([f(t)]), theta, d=d).ravel() for d in (1e-2, 3e-2))
    assert np.max(np.abs(g1 - g2)) <= RICH_AGREE * max(1.0, np.max(np.abs(g1)))
    return g1


def assert_gradient(f, theta):
    fx, g = objective_and_gradient(f, theta)
    assert fx == f(theta)
    ref = richardson(f, theta)
    assert np.max(np.abs(g - ref)) <= GRAD_RTOL * max(1.0, np.max(np.abs(ref))), (g, ref)
    return g


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("data, formula, theta", MODELS)
def test_matches_richardson(data, formula, theta, reml, storage):
    frame = model_frame(formula, lmelib.datasets.load(data))
    if len(frame.terms) > 1:
        assert isinstance(frame.cross_products.AR1, np.ndarray) == (storage == "dense")
    f = ProfiledDeviance(frame, reml)
    for scale in (0.5, 1.0, 2.0):
        g = assert_gradient(f, scale * np.array(theta))
        assert np.max(np.abs(g)) > 1e-3  # away from the optimum: a gradient worth testing


SINGULAR = [
    # λ of the first term singular; the second term's λ invertible
    ("sleepstudy", "Reaction ~ Days + (Days | Subject) + (1 | Days)", [0.9, 0.3, 0.0, 0.5]),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject) + (1 | Days)", [0.0, 0.3, 0.2, 0.5]),
    # a term of the dense block at, near and just above its bound (gradient.INVERTIBLE = 1e-4)
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", [1.5, 0.0]),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", [1.5, 1e-5]),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", [1.5, 3e-4]),
    ("produc", "log(gsp) ~ log(pc) + (1 | state) + (unemp | region)", [3.0, 1.0, -0.2, 0.0]),
    ("produc", "log(gsp) ~ log(pc) + (1 | state) + (unemp | region)", [3.0, 0.0, 0.5, 0.3]),
]


@pytest.mark.parametrize("data, formula, theta", SINGULAR)
def test_singular_lambda(data, formula, theta, storage):
    """At a singular λ (a variance at its bound) nothing is divided by λ: still exact."""
    frame = model_frame(formula, lmelib.datasets.load(data))
    for reml in (True, False):
        g = assert_gradient(ProfiledDeviance(frame, reml), np.array(theta))
        assert np.max(np.abs(g)) > 1e-3


@pytest.mark.parametrize("kwargs", [{"sqrtw": True}, {"transform": True}, {"sqrtw": True, "transform": True}])
def test_weighted_and_mixing_transform(kwargs):
    """Weighted or transformed rows (a transform that mixes levels leaves no block-diagonal part)."""
    frame = model_frame("diameter ~ 1 + (1 | plate) + (1 | sample)", lmelib.datasets.load("penicillin"))
    rng = np.random.default_rng(7)
    args = {}
    if "sqrtw" in kwargs:
        args["sqrtw"] = np.sqrt(rng.uniform(0.5, 2.0, frame.n))
    if "transform" in kwargs:
        args["transform"] = sp.csr_array(sp.eye(frame.n) - 0.4 * sp.eye(frame.n, k=-1))
    cp = CrossProducts.of(frame, **args)
    assert (cp.m1 == 0) == ("transform" in kwargs)
    for reml in (True, False):
        for theta in ([1.5, 3.0], [0.0, 3.0]):  # the second with a singular λ
            assert_gradient(ProfiledDeviance(frame, reml, cp=cp), np.array(theta))


REFERENCE_FITS = [
    ("jsp", "math5 ~ math3 + (math3 | school)"),
    ("jsp", "math5 ~ math3 + (math3 || school)"),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("produc", "log(gsp) ~ log(pc) + unemp + (1 | region/state)"),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("grunfeld", "inv ~ value + capital + (1 | firm) + (1 | year)"),
    ("orthodont", "distance ~ age + Sex + (age | Subject)"),
]


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("data, formula", REFERENCE_FITS)
def test_stationary_at_the_fitted_optimum(data, formula, reml):
    """At lmelib's optimum the Newton step H⁻¹∇f on the interior elements is below 1e-6 relative
    (H from differences of the analytic gradient); at a bound the gradient does not point inward.

    1e-6, not the polish's 1e-9: on the singular jsp random-slope fit (λ₂₂ = 0) the objective's
    third derivative along θ₁ is ~1e8, so the zero of the polish's five-point differences lies
    ~2e-7 (relative) from the zero of the exact gradient; the other fits are within ~1e-9."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = fit_lmer(data + ".csv", formula, reml)
    f, theta, lower = m.devfun, m.optsum.final, m.optsum.lower
    g = gradient(f, theta)
    free = np.flatnonzero(theta > lower)
    assert np.all(g[theta <= lower] >= -1e-8)
    h = 1e-6 * np.maximum(np.abs(theta), 0.1)
    H = np.column_stack([(gradient(f, theta + e) - gradient(f, theta - e)) / (2 * hi)
                         for hi, e in zip(h, np.diag(h))])
    step = np.linalg.solve(H[np.ix_(free, free)], g[free])
    assert np.max(np.abs(step) / np.maximum(np.abs(theta[free]), 0.1)) < 1e-6
    # the same point moved off the optimum has a gradient far from zero
    assert np.max(np.abs(gradient(f, theta * 1.01)[free])) > 1e3 * np.max(np.abs(g[free])) + 1e-6


def test_the_polish_with_and_without_the_gradient_reach_the_same_optimum(monkeypatch):
    """lmer's two polishes (the gradient one, for large dense blocks, forced here) end at the same
    optimum, the finite-difference one within its own accuracy."""
    import lmelib.lmm
    data = lmelib.datasets.load("penicillin")
    fits = {}
    for use in (True, False):
        monkeypatch.setattr(lmelib.lmm, "_gradient_pays", lambda f, use=use: use)
        fits[use] = lmelib.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data, reml=False)
    grad, fd = fits[True].optsum, fits[False].optsum
    assert grad.polish_gradients > 0 and fd.polish_gradients == 0
    np.testing.assert_allclose(grad.final, fd.final, rtol=1e-8)
    assert fits[True].objective <= fits[False].objective + 1e-9


def test_gradient_pays_on_large_sparse_blocks_only():
    """The rule of lmm._gradient_pays: InstEval-like shapes (many dense rows, few stored entries
    of A_R1) yes; small models and dense crossed blocks no."""
    import types
    import lmelib.lmm

    def shape(r, AR1):
        return types.SimpleNamespace(cp=types.SimpleNamespace(ARR=np.zeros((r, r)), AR1=AR1))
    assert lmelib.lmm._gradient_pays(shape(1153, sp.random_array((1153, 2972), density=0.03, rng=0)))
    assert not lmelib.lmm._gradient_pays(shape(1004, sp.random_array((1004, 10000), density=0.1, rng=0)))
    assert not lmelib.lmm._gradient_pays(shape(3, np.zeros((3, 36))))
