"""The profiled deviance against a dense, textbook computation of the same likelihood.

For y = Xβ + Zb + ε with b ~ N(0, σ²ΛΛᵀ), ε ~ N(0, σ²I) the marginal covariance
is σ²Vθ with Vθ = I + ZΛΛᵀZᵀ.  Profiling out β (GLS) and σ² gives

    ML:   d(θ)  = log|Vθ| + n (1 + log(2π r²/n)),
    REML: dR(θ) = log|Vθ| + log|XᵀVθ⁻¹X| + (n−p)(1 + log(2π r²/(n−p))),

with r² = (y − Xβ̂)ᵀVθ⁻¹(y − Xβ̂).  The blocked Cholesky must give the same
numbers at any θ, for weighted rows, and for a row transform that mixes the
levels of the first term (which switches off the block-diagonal shortcut).
"""

import numpy as np
import pytest
import scipy.sparse as sp

import lmelib
import lmelib.schur
from lmelib.covariance import lambda_of
from lmelib.deviance import CrossProducts, ProfiledDeviance
from lmelib.design import model_frame


def dense_deviance(frame, theta, reml, sqrtw=None, transform=None):
    X, y, Z = frame.X, frame.y, frame.Z.toarray()
    if sqrtw is not None:
        X, y, Z = X * sqrtw[:, None], y * sqrtw, Z * sqrtw[:, None]
    if transform is not None:
        T = transform.toarray()
        X, y, Z = T @ X, T @ y, T @ Z
    blocks, start = [], 0
    for term in frame.terms:
        blocks.append((term, start))
        start += term.ell * (term.ell + 1) // 2
    Lam = sp.block_diag([sp.kron(sp.eye(t.n_levels), lambda_of(theta[s:s + t.ell * (t.ell + 1) // 2], t.ell))
                         for t, s in blocks]).toarray()
    n, p = X.shape
    V = np.eye(n) + Z @ Lam @ Lam.T @ Z.T
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    r2 = r @ Vi @ r
    ld = np.linalg.slogdet(V)[1]
    if reml:
        return ld + np.linalg.slogdet(X.T @ Vi @ X)[1] + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p)))
    return ld + n * (1 + np.log(2 * np.pi * r2 / n))


MODELS = [
    ("dyestuff", "Yield ~ 1 + (1 | Batch)", [0.7]),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", [0.9, 0.02, 0.2]),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", [1.5, 3.0]),
    ("pastes", "strength ~ 1 + (1 | batch/cask)", [2.5, 1.2]),
    ("grunfeld", "inv ~ value + capital + (1 | firm) + (1 | year)", [0.9, 0.1]),
    # a vector-valued second term, and three columns in the first (general block Cholesky)
    ("produc", "log(gsp) ~ log(pc) + (1 | state) + (unemp | region)", [3.0, 1.0, -0.2, 0.3]),
    ("produc", "log(gsp) ~ log(pc) + (1 + unemp + log(pc) | state) + (1 | region)",
     [2.0, 0.1, -0.3, 0.4, 0.05, 0.2, 1.5]),
]


@pytest.fixture(params=["dense", "sparse", "sparse, L21 L21ᵀ by class"])
def storage(request, monkeypatch):
    """A_R1 and L21 stored dense (small models, the default) or sparse (large crossed designs);
    with scalar terms, L21 L21ᵀ from products by level (the default) or by class (schur.py)."""
    if request.param != "dense":
        monkeypatch.setattr(lmelib.deviance, "DENSE_WORK", 0)
    if request.param.endswith("by class"):
        monkeypatch.setattr(lmelib.schur, "MAX_PAIRS", 0)
        monkeypatch.setattr(lmelib.schur, "MAX_DENSE", 0)
    return request.param.split(",")[0]


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("data, formula, theta", MODELS)
def test_matches_dense_likelihood(data, formula, theta, reml, storage):
    frame = model_frame(formula, lmelib.datasets.load(data))
    if len(frame.terms) > 1:
        assert isinstance(CrossProducts.of(frame).AR1, np.ndarray) == (storage == "dense")
    f = ProfiledDeviance(frame, reml)
    for scale in (0.5, 1.0, 2.0):
        th = scale * np.array(theta)
        assert f(th) == pytest.approx(dense_deviance(frame, th, reml), rel=1e-10)


@pytest.mark.parametrize("data, formula, theta", MODELS)
def test_weighted_and_mixing_transform(data, formula, theta, storage):
    frame = model_frame(formula, lmelib.datasets.load(data))
    rng = np.random.default_rng(7)
    sqrtw = np.sqrt(rng.uniform(0.5, 2.0, frame.n))
    # a lower-bidiagonal transform that mixes consecutive rows (and so levels)
    T = sp.csr_array(sp.eye(frame.n) - 0.4 * sp.eye(frame.n, k=-1))
    th = np.array(theta)
    for kwargs in ({"sqrtw": sqrtw}, {"transform": T}, {"sqrtw": sqrtw, "transform": T}):
        cp = CrossProducts.of(frame, **kwargs)
        f = ProfiledDeviance(frame, True, cp=cp)
        assert f(th) == pytest.approx(dense_deviance(frame, th, True, **kwargs), rel=1e-10)
    assert CrossProducts.of(frame, transform=T).m1 == 0  # mixing rows -> no block-diagonal part


def test_deviance_is_pure():
    frame = model_frame("Reaction ~ Days + (Days | Subject)", lmelib.datasets.load("sleepstudy"))
    f = ProfiledDeviance(frame, False)
    a = f(np.array([1.0, 0.0, 1.0]))
    f(np.array([0.2, 0.5, 0.1]))
    assert f(np.array([1.0, 0.0, 1.0])) == a


@pytest.mark.parametrize("data, formula, theta", MODELS)
def test_from_gram_matrix(data, formula, theta, storage):
    """Cross-products from the Gram matrix of a transformed, dense [Z X y] (small error-structure fits)."""
    frame = model_frame(formula, lmelib.datasets.load(data))
    M = np.column_stack([frame.Z.toarray(), frame.X, frame.y])
    rng = np.random.default_rng(3)
    mixing = sp.csr_array(sp.eye(frame.n) - 0.4 * sp.eye(frame.n, k=-1))
    scaling = sp.diags_array(rng.uniform(0.5, 2.0, frame.n), format="csr")
    th = np.array(theta)
    for T, blocked in ((mixing, False), (scaling, True)):
        TM = T @ M
        cp = CrossProducts.from_gram(frame, TM.T @ TM)
        assert (cp.m1 > 0) == blocked
        f = ProfiledDeviance(frame, False, cp=cp)
        assert f(th) == pytest.approx(dense_deviance(frame, th, False, transform=T), rel=1e-10)


def test_pls_solution_rzx_and_rx_as_in_the_paper():
    """R_ZX and R_X read from the blocked factor satisfy the paper's defining equations."""
    import scipy.linalg
    import lmelib
    m = lmelib.lmer("Reaction ~ Days + (Days | Subject)", lmelib.datasets.load("sleepstudy"))
    s, X = m.solution, m.frame.X
    Z = m.frame.Z.toarray()
    Lam = scipy.linalg.block_diag(*[m.lambdas[0]] * m.ngrps["Subject"])
    M = Lam.T @ Z.T @ Z @ Lam + np.eye(Z.shape[1])
    Ltheta = np.linalg.cholesky(M)
    RZX = scipy.linalg.solve_triangular(Ltheta, Lam.T @ Z.T @ X, lower=True)
    np.testing.assert_allclose(np.abs(s.RZX), np.abs(RZX), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(s.RX.T @ s.RX, X.T @ X - RZX.T @ RZX, rtol=1e-8)
