"""The optimiser wrapper: BOBYQA, the boundary settled, the Newton polish (lmelib/optimize.py)."""

import numpy as np
import pytest

from lmelib import optimize
from lmelib.optimize import minimize, polish


def quadratic(center, H):
    H = np.asarray(H, float)
    return lambda x: float((x - center) @ H @ (x - center)) + 3.0


@pytest.mark.parametrize("start", [[1.0, 1.0], [0.2, 3.0], [5.0, 0.5]])
def test_polish_finds_interior_minimum_from_any_start(start):
    f = quadratic(np.array([0.7, 1.9]), [[4.0, 1.0], [1.0, 2.0]])
    res = minimize(f, np.array(start), np.array([0.0, -np.inf]))
    np.testing.assert_allclose(res.final, [0.7, 1.9], rtol=0, atol=1e-9)
    assert res.polish_feval > 0 and res.polish_feval <= res.feval
    assert res.grad_norm < 1e-6


def test_variance_at_zero_is_exactly_zero():
    # f depends on θ₀² as a profiled deviance does, with its minimum over θ₀ ≥ 0 at the bound
    f = lambda x: float(3.0 * x[0] ** 2 + x[0] ** 4 + (x[1] - 1.2) ** 2)  # noqa: E731
    for start in ([1.0, 1.0], [0.3, 2.0], [2.0, 0.1]):
        res = minimize(f, np.array(start), np.array([0.0, -np.inf]))
        assert res.final[0] == 0.0
        assert abs(res.final[1] - 1.2) < 1e-9
        assert "on bound" in res.brief()


def test_polish_is_never_worse_than_its_start():
    rng = np.random.default_rng(0)
    f0 = quadratic(np.array([1.0, 2.0, 3.0]), np.diag([1.0, 10.0, 100.0]))
    noisy = lambda x: f0(x) + 1e-7 * rng.standard_normal()  # noqa: E731
    x = np.array([1.0, 2.0, 3.0])
    fx = noisy(x)
    x1, f1, _, _ = polish(noisy, x, fx, np.full(3, -np.inf))
    assert f1 <= fx + 1e-9


def test_polish_leaves_bound_elements_alone():
    f = quadratic(np.array([-1.0, 2.0]), np.eye(2))
    x, fx, steps, g = polish(f, np.array([0.0, 2.1]), f(np.array([0.0, 2.1])), np.array([0.0, -np.inf]))
    assert x[0] == 0.0 and abs(x[1] - 2.0) < 1e-9 and steps >= 1


def _noisy_quadratic(A, x0, noise):
    """½(x−x0)ᵀA(x−x0) plus a deterministic rounding-like error of size ``noise``."""
    def f(x):
        d = np.asarray(x) - x0
        wobble = noise * np.sin(1e7 * np.sum(np.asarray(x) * np.arange(1, len(x) + 1)))
        return 0.5 * d @ A @ d + 100.0 + wobble
    return f


def test_hessian_steps_scaled_to_curvature():
    # a small but well-determined coefficient (x ≈ 0.003, curvature 4e4): steps relative to |x|
    # are lost in the noise, steps that raise f by `rise` are not
    A = np.array([[4e4, 1e3], [1e3, 50.0]])
    x0 = np.array([0.003, 1.5])
    f = _noisy_quadratic(A, x0, 1e-10)
    by_rel = optimize.hessian(f, x0)
    by_rise = optimize.hessian(f, x0, rise=1e-3)
    assert np.max(np.abs(by_rise - A) / np.abs(A)) < 1e-5
    assert np.max(np.abs(by_rel - A) / np.abs(A)) > 1e-5  # what the scaled steps fix


def test_hessian_rise_keeps_pilot_steps_without_curvature():
    f = _noisy_quadratic(np.diag([2.0, 0.0]), np.zeros(2), 0.0)
    H = optimize.hessian(f, np.zeros(2), rise=1e-3)
    np.testing.assert_allclose(H, np.diag([2.0, 0.0]), atol=1e-6)


def test_five_point_gradient_is_exact_for_a_quartic():
    # the five-point difference is exact for polynomials of degree 4; the three-point one is
    # off by h²f'''/6
    f = lambda x: float(x[0] ** 4 / 4 - x[0] ** 3 + 2 * x[0])  # noqa: E731
    x, h, free = np.array([1.3]), np.array([0.01]), np.array([0])
    exact_g, exact_d2 = 1.3 ** 3 - 3 * 1.3 ** 2 + 2, 3 * 1.3 ** 2 - 6 * 1.3
    g, d2 = optimize._gradient(f, x, f(x), free, h, wide=True)
    assert abs(g[0] - exact_g) < 1e-10 and abs(d2[0] - exact_d2) < 1e-7
    g3, _ = optimize._gradient(f, x, f(x), free, h)
    assert abs(g3[0] - exact_g) > 1e-6  # what the wide differences fix


def test_hessian_offdiag_from_the_gradient_evaluations():
    # two evaluations per pair, reusing the diagonal's, give a quadratic's Hessian exactly
    A = np.array([[4.0, 1.5, -0.5], [1.5, 2.0, 0.3], [-0.5, 0.3, 1.0]])
    f = quadratic(np.array([0.2, -1.0, 3.0]), A)  # (x−c)ᵀA(x−c): Hessian 2A
    x, free, h = np.array([1.0, 0.5, 2.0]), np.arange(3), np.full(3, 1e-3)
    _, d2 = optimize._gradient(f, x, f(x), free, h)
    calls = []
    counted = lambda t: calls.append(1) or f(t)  # noqa: E731
    H = optimize._hessian_offdiag(counted, x, free, h, d2, f(x))
    np.testing.assert_allclose(H, 2 * A, atol=1e-6)
    assert len(calls) == 2 * 3  # two per pair; the four-point formula needs twelve


def test_polish_lands_on_the_optimum_not_on_the_difference_bias():
    # f = x⁴/4 − x has its minimum at 1; three-point differences with steps 2e-4 put the zero of
    # the difference gradient 1.3e-8 away, five-point ones 1e-16 away
    f = lambda x: float(x[0] ** 4 / 4 - x[0])  # noqa: E731
    for start in (0.999, 1.0 + 1e-6):
        x, fx, steps, g = polish(f, np.array([start]), f(np.array([start])), np.array([-np.inf]))
        assert abs(x[0] - 1.0) < 1e-11


def test_polish_stops_at_rounding_level_without_wandering():
    # a deviance of size 1e5 with rounding-like error 1e-11: the steps near the optimum are
    # rounding, and the polish stops once the contraction says the rest is below STEP_TOL
    A = np.array([[300.0, 40.0, 10.0], [40.0, 120.0, 5.0], [10.0, 5.0, 80.0]])
    x0 = np.array([0.3, 0.5, 0.2])
    base = _noisy_quadratic(A, x0, 1e-11)
    calls = []
    f = lambda x: calls.append(1) or base(x) + 1e5  # noqa: E731
    start = x0 + np.array([2e-6, -1e-6, 3e-6])
    x, fx, steps, g = polish(f, start, f(start), np.full(3, -np.inf))
    assert np.max(np.abs(x - x0)) < 1e-9
    # one three-point gradient (6) and Hessian (6), a step, a five-point gradient (12), a step
    assert len(calls) - 1 <= 26
