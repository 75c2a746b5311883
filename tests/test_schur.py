"""lmelib/schur.py: L21 L21ᵀ for scalar terms from products formed once.

The stored products must give G(w) = A_R1 diag(w) A_R1ᵀ exactly as a direct
product does, whichever store is chosen, and the deviance of a large crossed
design (where the store is used) must equal the deviance without it.
"""

import numpy as np
import pytest
import scipy.sparse as sp

import lmelib
import lmelib.schur
from lmelib.deviance import ProfiledDeviance
from lmelib.design import model_frame
from lmelib.schur import ScalarSchur


def _random_blocks(seed, r=40, m=300, density=0.08):
    """A sparse r × m A_R1 (a few dense rows, as X and y are) and A11 with repeated values."""
    rng = np.random.default_rng(seed)
    C = sp.random_array((r, m), density=density, rng=rng, format="lil")
    C[-3:, :] = rng.normal(size=(3, m))  # dense rows, like [X y]ᵀ Z1
    A11 = rng.integers(1, 12, size=m).astype(float).reshape(m, 1, 1)
    return sp.csr_array(C), A11


def _lower(M):
    return M[np.tril_indices(len(M))]


def _force(store, monkeypatch):
    """Make ``store`` the only one within its memory limit."""
    for other, limit in (("by level", "MAX_PAIRS"), ("by class", "MAX_STORED"), ("dense", "MAX_DENSE")):
        if other != store:
            monkeypatch.setattr(lmelib.schur, limit, 0)


@pytest.mark.parametrize("store", ["by level", "by class", "dense"])
@pytest.mark.parametrize("seed", [0, 1])
def test_subtract_equals_the_direct_product(store, seed, monkeypatch):
    _force(store, monkeypatch)
    C, A11 = _random_blocks(seed)
    s = ScalarSchur.of(C, A11)
    assert (s.by_level is not None) == (store == "by level")
    assert (s.dense is not None) == (store == "dense")
    lam = 0.7
    w = lam**2 / (lam**2 * A11.ravel() + 1.0)
    expected = (C @ sp.diags_array(w) @ C.T).toarray()
    S = np.zeros((C.shape[0],) * 2)
    s.subtract(S, lam, A11)
    np.testing.assert_allclose(_lower(-S), _lower(expected), rtol=1e-12, atol=1e-12)
    assert np.all(np.triu(S, 1) == 0)  # only the lower triangle is written


def test_by_class_needs_equal_a11_only():
    """Levels with the same A11 share a weight: K classes, not one per level."""
    C, A11 = _random_blocks(2)
    saved = lmelib.schur.MAX_PAIRS, lmelib.schur.MAX_DENSE
    lmelib.schur.MAX_PAIRS = lmelib.schur.MAX_DENSE = 0
    try:
        s = ScalarSchur.of(C, A11)
    finally:
        lmelib.schur.MAX_PAIRS, lmelib.schur.MAX_DENSE = saved
    assert s.by_class.shape[0] == len(np.unique(A11))


def test_too_large_gives_none(monkeypatch):
    monkeypatch.setattr(lmelib.schur, "MAX_PAIRS", 0)
    monkeypatch.setattr(lmelib.schur, "MAX_STORED", 0)
    monkeypatch.setattr(lmelib.schur, "MAX_DENSE", 0)
    C, A11 = _random_blocks(3)
    assert ScalarSchur.of(C, A11) is None


@pytest.mark.parametrize("store", ["by level", "by class", "dense", "none"])
@pytest.mark.parametrize("reml", [True, False])
def test_crossed_deviance_with_and_without_the_store(store, reml, monkeypatch):
    """grunfeld's crossed (1 | firm) + (1 | year) with A_R1 sparse: the store changes no digit
    beyond rounding, against the deviance computed by the sparse product."""
    monkeypatch.setattr(lmelib.deviance, "DENSE_WORK", 0)
    if store in ("by level", "by class", "dense"):
        _force(store, monkeypatch)
    frame = model_frame("inv ~ value + capital + (1 | firm) + (1 | year)", lmelib.datasets.load("grunfeld"))
    f = ProfiledDeviance(frame, reml)
    if store == "none":
        monkeypatch.setattr(lmelib.schur, "MAX_PAIRS", 0)
        monkeypatch.setattr(lmelib.schur, "MAX_STORED", 0)
        monkeypatch.setattr(lmelib.schur, "MAX_DENSE", 0)
    assert (f._schur is None) == (store == "none")
    plain = ProfiledDeviance(frame, reml)
    plain.__dict__["_schur"] = None  # the sparse product L21 L21ᵀ
    for theta in ([0.9, 0.1], [2.0, 0.0], [0.05, 1.3]):
        assert f(np.array(theta)) == pytest.approx(plain(np.array(theta)), rel=1e-13)
