"""The optimiser wrapper: BOBYQA, the boundary settled, the Newton polish (lmelib/optimize.py)."""

import numpy as np
import pytest

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
