"""The optimiser wrapper: BOBYQA, the boundary settled, the Newton polish (lmelib/optimize.py)."""

import numpy as np
import pytest

from conftest import cubic_bowl, noisy_quadratic
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
    base = noisy_quadratic(A, x0, 1e-11)
    calls = []
    f = lambda x: calls.append(1) or base(x) + 1e5  # noqa: E731
    start = x0 + np.array([2e-6, -1e-6, 3e-6])
    x, fx, steps, g = polish(f, start, f(start), np.full(3, -np.inf))
    assert np.max(np.abs(x - x0)) < 1e-9
    # one three-point gradient (6) and Hessian (6), a step, a five-point gradient (12), a step
    assert len(calls) - 1 <= 26


def test_polish_with_one_evaluation_per_pair_reaches_the_same_point():
    lower = np.array([0.0, -np.inf, -np.inf])
    start = np.array([0.79, -0.29, 1.12])
    runs = {}
    for k in (2, 1):
        calls = [0]

        def f(x):
            calls[0] += 1
            return cubic_bowl(x)

        x, fx, steps, g = polish(f, start, f(start), lower, pair_evals=k)
        runs[k] = (x, calls[0])
    np.testing.assert_allclose(runs[1][0], runs[2][0], rtol=0, atol=1e-9)
    assert runs[1][1] < runs[2][1]  # 3 pairs: 3 evaluations instead of 6


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
