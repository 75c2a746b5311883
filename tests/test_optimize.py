"""The optimiser wrapper: BOBYQA, the boundary settled, the Newton polish (lmelib/optimize.py)."""

import numpy as np
import pytest

from conftest import cubic_bowl, noisy_quadratic
from lmelib.optimize import gradient_polish, minimize, polish


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


def _cubic_bowl_fg(x):
    """cubic_bowl and its gradient, by hand (an independent check of gradient_polish's end point)."""
    d = np.asarray(x, float) - np.array([0.8, -0.3, 1.1])
    H = np.array([[5.0, 2.0, 0.5], [2.0, 3.0, -1.0], [0.5, -1.0, 2.0]])
    g = 2 * H @ d + np.array([0.9 * d[0] ** 2 + 0.2 * d[1] * d[2], 0.2 * d[0] * d[2], 0.2 * d[0] * d[1]])
    return cubic_bowl(x), g


@pytest.mark.parametrize("start", [[0.9, -0.2, 1.0], [0.5, 0.1, 1.6], [0.81, -0.29, 1.1]])
def test_gradient_polish_ends_at_the_zero_of_the_gradient(start):
    x0 = np.array(start)
    x, fx, steps, gnorm = gradient_polish(_cubic_bowl_fg, x0, cubic_bowl(x0), np.full(3, -np.inf))
    assert np.max(np.abs(_cubic_bowl_fg(x)[1])) < 1e-8 and gnorm < 1e-6
    assert fx <= cubic_bowl(x0)
    # the same point as the finite-difference polish, which does not use the gradient
    xf, _, _, _ = polish(cubic_bowl, x0, cubic_bowl(x0), np.full(3, -np.inf))
    np.testing.assert_allclose(x, xf, atol=1e-8)


def test_gradient_polish_keeps_bounds_and_minimize_counts_its_gradients():
    # minimum over x0 ≥ 0 on the bound (f depends on x0² there), x1 free
    def fg(x):
        return float(3 * x[0] ** 2 + x[0] ** 4 + (x[1] - 1.2) ** 2), np.array([6 * x[0] + 4 * x[0] ** 3, 2 * (x[1] - 1.2)])
    calls = []

    def counted(x):
        calls.append(x.copy())
        return fg(x)
    res = minimize(lambda x: fg(x)[0], np.array([1.0, 1.0]), np.array([0.0, -np.inf]), gradient=counted)
    assert res.final[0] == 0.0 and abs(res.final[1] - 1.2) < 1e-10
    assert res.polish_gradients == len(calls) > 0 and res.polish_gradients <= res.polish_feval
    assert all(c[0] >= 0.0 for c in calls)  # never evaluated below the bound


def test_polish_step_onto_a_bound_takes_that_element_out(recwarn):
    """A Newton step shortened to end exactly on a bound (the minimum lies beyond it): the element
    stays there and the polish goes on with the others, with no finite difference of zero width."""
    f = lambda x: float((x[0] + 0.001) ** 2 + 0.5 * (x[0] + 0.001) * (x[1] - 1.0) + (x[1] - 1.0) ** 2)  # noqa: E731
    x0 = np.array([0.0014, 1.2])
    x, fx, steps, g = polish(f, x0, f(x0), np.array([0.0, -np.inf]))
    assert x[0] == 0.0 and fx < f(x0)
    assert abs(x[1] - (1.0 - 0.25 * 0.001)) < 1e-8  # ∂f/∂x1 = 0 at x0 = 0
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
