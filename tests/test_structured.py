"""The objective of a model with an error structure, a function of (θ, ψ) (lmelib/structured.py),
and the data columns each structure declares (lmelib/structures.py).

At ψ = 0 the AR(1) correlation φ = tanh 0 = 0 and T(ψ) = I, so the structured objective must
equal the profiled deviance of deviance.py (1e-10 relative); at any other ψ it must equal the
profiled deviance of the data whitened by T(ψ) plus log |S C S|, formed here densely.
"""

import numpy as np
import pytest

import lmelib
from lmelib import AR1, ARMA, CAR1, CompSymm, VarExp, VarIdent, VarPower
from lmelib.deviance import ProfiledDeviance
from lmelib.design import model_frame
from lmelib.structured import StructuredDeviance, split
from lmelib.structures import ErrorModel, structure_columns

FORMULA = "inv ~ value + capital + (1 | firm)"


@pytest.fixture(scope="module")
def grunfeld():
    return lmelib.datasets.load("grunfeld")


def structured(data, reml=True, correlation=AR1("year", "firm"), weights=None):
    frame = model_frame(FORMULA, data)
    return frame, StructuredDeviance(frame, reml, ErrorModel.of(frame.data, correlation, weights))


@pytest.mark.parametrize("reml", [True, False])
def test_equals_profiled_deviance_without_correlation(grunfeld, reml):
    frame, f = structured(grunfeld, reml)
    plain = ProfiledDeviance(frame, reml)
    for theta in ([0.5], [1.3], [0.0]):
        assert f(np.array(theta + [0.0])) == pytest.approx(plain(np.array(theta)), rel=1e-10)


def test_is_the_whitened_deviance_plus_log_determinant(grunfeld):
    """−2 log L(θ, ψ) = d(θ | T y, T X, T Z) + log |S C S|, with C from φ = tanh ψ (AR(1))."""
    frame, f = structured(grunfeld, False, weights=VarIdent("firm"))
    psi = np.concatenate([[0.4], np.linspace(-0.3, 0.3, 9)])
    T, logdet = f.errors.transform(psi)
    T = T.toarray()
    sd = np.exp(np.concatenate([[0.0], psi[1:]]))[frame.data["firm"].cat.codes.to_numpy()]
    years = frame.data["year"].to_numpy()
    same = frame.data["firm"].to_numpy()[:, None] == frame.data["firm"].to_numpy()[None, :]
    R = np.where(same, np.tanh(0.4) ** np.abs(years[:, None] - years[None, :]), 0.0) * np.outer(sd, sd)
    assert logdet == pytest.approx(np.linalg.slogdet(R)[1], rel=1e-10)
    np.testing.assert_allclose(T.T @ T, np.linalg.inv(R), rtol=1e-8, atol=1e-10)
    # the ML deviance of y ~ N(Xβ, σ²(ZΛΛᵀZᵀ + R)) at β̂ and σ̂, formed densely
    theta = 0.7
    Z, X, y = frame.Z.toarray(), frame.X, frame.y
    V = theta**2 * Z @ Z.T + R
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    n = len(y)
    dense = np.linalg.slogdet(V)[1] + n * (1 + np.log(2 * np.pi * (r @ Vi @ r) / n))
    assert f(np.concatenate([[theta], psi])) == pytest.approx(dense, rel=1e-9)


def test_split_and_bounds_by_name(grunfeld):
    frame, f = structured(grunfeld, weights=VarIdent("firm"))
    assert len(f.start) == 1 + 1 + 9 and list(f.lower[:1]) == [0.0] and np.all(np.isneginf(f.lower[1:]))
    theta, psi = f.split(np.arange(11.0))
    assert list(theta) == [0.0] and list(psi) == list(range(1, 11))
    assert "cross_products" not in frame.__dict__  # start and bounds need no cross-products


def test_fitted_model_theta_and_psi(grunfeld):
    m = lmelib.lmer(FORMULA, grunfeld, correlation=AR1("year", "firm"))
    assert len(m.theta) == 1 and len(m.psi) == 1
    theta, psi = split(m.optsum.final, m.frame)
    np.testing.assert_array_equal(np.concatenate([m.theta, m.psi]), m.optsum.final)
    assert m.structure["Phi"] == pytest.approx(np.tanh(psi[0]), rel=1e-15)
    plain = lmelib.lmer(FORMULA, grunfeld)
    assert len(plain.psi) == 0 and np.array_equal(plain.theta, plain.optsum.final)


@pytest.mark.parametrize("structure, columns", [
    (VarIdent("g"), {"g": "by"}),
    (VarPower("x"), {"x": "covariate"}),
    (VarExp("x"), {"x": "covariate"}),
    (AR1("t", "g"), {"t": "time", "g": "group"}),
    (AR1("t"), {"t": "time"}),
    (CAR1("t", "g"), {"t": "time", "g": "group"}),
    (CompSymm("g"), {"g": "group"}),
    (ARMA("t", "g", p=2, q=1), {"t": "time", "g": "group"}),
])
def test_each_structure_declares_its_columns(structure, columns):
    assert structure.columns == columns


def test_structure_columns_say_where_each_was_named():
    assert structure_columns(AR1("year", "firm"), VarIdent("firm"), None) == {
        "year": "AR1(time=...)", "firm": "AR1(group=...)"}
