"""Numerical derivatives (lmelib/derivatives.py): central differences with curvature-scaled
steps, and numDeriv's Richardson extrapolation, on functions whose derivatives are known."""

import numpy as np

from conftest import cubic_bowl, noisy_quadratic
from lmelib import derivatives
from lmelib.derivatives import hessian, richardson_hessian, richardson_jacobian


def test_hessian_steps_scaled_to_curvature():
    # a small but well-determined coefficient (x ≈ 0.003, curvature 4e4): steps relative to |x|
    # are lost in the noise, steps that raise f by `rise` are not
    A = np.array([[4e4, 1e3], [1e3, 50.0]])
    x0 = np.array([0.003, 1.5])
    f = noisy_quadratic(A, x0, 1e-10)
    by_rel = hessian(f, x0)
    by_rise = hessian(f, x0, rise=1e-3)
    assert np.max(np.abs(by_rise - A) / np.abs(A)) < 1e-5
    assert np.max(np.abs(by_rel - A) / np.abs(A)) > 1e-5  # what the scaled steps fix


def test_hessian_rise_keeps_pilot_steps_without_curvature():
    f = noisy_quadratic(np.diag([2.0, 0.0]), np.zeros(2), 0.0)
    H = hessian(f, np.zeros(2), rise=1e-3)
    np.testing.assert_allclose(H, np.diag([2.0, 0.0]), atol=1e-6)


def test_richardson_derivatives():
    """numDeriv's Richardson extrapolation on a function with known derivatives."""
    def f(x):
        return np.exp(x[0]) * np.sin(x[1]) + x[0] ** 2 * x[2] ** 3

    def g(x):
        return np.array([[x[0] * x[1], np.cos(x[2])], [x[1] ** 3, 1.0]])

    x = np.array([0.3, 1.2, 0.0])  # x[2] = 0: numDeriv's absolute step
    e0, s1, c1 = np.exp(x[0]), np.sin(x[1]), np.cos(x[1])
    H = np.array([[e0 * s1 + 2 * x[2] ** 3, e0 * c1, 6 * x[0] * x[2] ** 2],
                  [e0 * c1, -e0 * s1, 0.0],
                  [6 * x[0] * x[2] ** 2, 0.0, 6 * x[0] ** 2 * x[2]]])
    np.testing.assert_allclose(richardson_hessian(f, x), H, atol=1e-7)
    J = richardson_jacobian(g, x)
    np.testing.assert_allclose(J[0], [[x[1], 0], [0, 0]], atol=1e-9)
    np.testing.assert_allclose(J[1], [[x[0], 0], [3 * x[1] ** 2, 0]], atol=1e-9)
    np.testing.assert_allclose(J[2], [[0, -np.sin(x[2])], [0, 0]], atol=1e-9)


def test_five_point_gradient_is_exact_for_a_quartic():
    # the five-point difference is exact for polynomials of degree 4; the three-point one is
    # off by h²f'''/6
    f = lambda x: float(x[0] ** 4 / 4 - x[0] ** 3 + 2 * x[0])  # noqa: E731
    x, h, free = np.array([1.3]), np.array([0.01]), np.array([0])
    exact_g, exact_d2 = 1.3 ** 3 - 3 * 1.3 ** 2 + 2, 3 * 1.3 ** 2 - 6 * 1.3
    g, d2 = derivatives.central_differences(f, x, f(x), free, h, wide=True)
    assert abs(g[0] - exact_g) < 1e-10 and abs(d2[0] - exact_d2) < 1e-7
    g3, _ = derivatives.central_differences(f, x, f(x), free, h)
    assert abs(g3[0] - exact_g) > 1e-6  # what the wide differences fix


def test_hessian_offdiag_from_the_gradient_evaluations():
    # two evaluations per pair, reusing the diagonal's, give a quadratic's Hessian exactly
    A = np.array([[4.0, 1.5, -0.5], [1.5, 2.0, 0.3], [-0.5, 0.3, 1.0]])
    c = np.array([0.2, -1.0, 3.0])
    f = lambda t: float((t - c) @ A @ (t - c))  # noqa: E731  (Hessian 2A)
    x, free, h = np.array([1.0, 0.5, 2.0]), np.arange(3), np.full(3, 1e-3)
    _, d2 = derivatives.central_differences(f, x, f(x), free, h)
    calls = []
    counted = lambda t: calls.append(1) or f(t)  # noqa: E731
    H = derivatives.hessian_offdiagonal(counted, x, free, h, d2, f(x))
    np.testing.assert_allclose(H, 2 * A, atol=1e-6)
    assert len(calls) == 2 * 3  # two per pair; the four-point formula needs twelve


def test_one_evaluation_per_pair_hessian():
    # f(x + h_i e_i + h_j e_j) with the central gradient and diagonal: the exact Hessian to O(h)
    x, free = np.array([1.0, 0.2, 0.6]), np.arange(3)
    h = np.full(3, 2e-4)
    fx = cubic_bowl(x)
    g, d2 = derivatives.central_differences(cubic_bowl, x, fx, free, h)
    d = x - np.array([0.8, -0.3, 1.1])
    exact = 2 * np.array([[5.0, 2.0, 0.5], [2.0, 3.0, -1.0], [0.5, -1.0, 2.0]])
    exact[0, 0] += 1.8 * d[0]
    exact[0, 1] += 0.2 * d[2]; exact[1, 0] = exact[0, 1]  # noqa: E702
    exact[0, 2] += 0.2 * d[1]; exact[2, 0] = exact[0, 2]  # noqa: E702
    exact[1, 2] += 0.2 * d[0]; exact[2, 1] = exact[1, 2]  # noqa: E702
    H1 = derivatives.hessian_offdiagonal(cubic_bowl, x, free, h, d2, fx, g)
    np.testing.assert_allclose(H1, exact, atol=1e-3)
