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


def _cubic(x):
    """A smooth non-quadratic function with correlated elements, minimum near (0.8, -0.3, 1.1)."""
    d = np.asarray(x) - np.array([0.8, -0.3, 1.1])
    H = np.array([[5.0, 2.0, 0.5], [2.0, 3.0, -1.0], [0.5, -1.0, 2.0]])
    return float(d @ H @ d + 0.3 * d[0] ** 3 + 0.2 * d[0] * d[1] * d[2] + 7.0)


def test_one_evaluation_per_pair_hessian():
    # f(x + h_i e_i + h_j e_j) with the central gradient and diagonal: the exact Hessian to O(h)
    x, free = np.array([1.0, 0.2, 0.6]), np.arange(3)
    h = optimize._fd_steps(x, np.full(3, -np.inf))
    fx = _cubic(x)
    g, d2 = optimize._gradient(_cubic, x, fx, free, h)
    d = x - np.array([0.8, -0.3, 1.1])
    exact = 2 * np.array([[5.0, 2.0, 0.5], [2.0, 3.0, -1.0], [0.5, -1.0, 2.0]])
    exact[0, 0] += 1.8 * d[0]
    exact[0, 1] += 0.2 * d[2]; exact[1, 0] = exact[0, 1]  # noqa: E702
    exact[0, 2] += 0.2 * d[1]; exact[2, 0] = exact[0, 2]  # noqa: E702
    exact[1, 2] += 0.2 * d[0]; exact[2, 1] = exact[1, 2]  # noqa: E702
    H1 = optimize._hessian_one_per_pair(_cubic, x, fx, free, h, g, d2)
    np.testing.assert_allclose(H1, exact, atol=1e-3)


def test_polish_with_one_evaluation_per_pair_reaches_the_same_point():
    lower = np.array([0.0, -np.inf, -np.inf])
    start = np.array([0.79, -0.29, 1.12])
    runs = {}
    for k in (4, 1):
        calls = [0]

        def f(x):
            calls[0] += 1
            return _cubic(x)

        x, fx, steps, g = polish(f, start, f(start), lower, pair_evals=k)
        runs[k] = (x, calls[0])
    np.testing.assert_allclose(runs[1][0], runs[4][0], rtol=0, atol=1e-9)
    assert runs[1][1] < runs[4][1]  # 3 pairs: 3 evaluations instead of 12


def test_initial_step_is_passed_to_bobyqa():
    # BOBYQA's first interpolation points are the start moved by the initial step in each element
    f0 = quadratic(np.array([0.5, 300.0]), [[1.0, 0.0], [0.0, 1e-4]])
    seen = []

    def f(x):
        seen.append(np.array(x))
        return f0(x)

    start = np.array([1.0, 200.0])
    res = minimize(f, start, np.full(2, -np.inf), polish_result=False, initial_step=np.array([0.1, 10.0]))
    moves = np.abs(np.array(seen[:5]) - start)
    assert np.isclose(moves[:, 0].max(), 0.1) and np.isclose(moves[:, 1].max(), 10.0)
    np.testing.assert_allclose(res.final, [0.5, 300.0], atol=1e-3)
