"""Numerical derivatives (lmelib/derivatives.py): central differences with curvature-scaled
steps, and numDeriv's Richardson extrapolation, on functions whose derivatives are known."""

import numpy as np

from lmelib.derivatives import hessian, richardson_hessian, richardson_jacobian


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
    by_rel = hessian(f, x0)
    by_rise = hessian(f, x0, rise=1e-3)
    assert np.max(np.abs(by_rise - A) / np.abs(A)) < 1e-5
    assert np.max(np.abs(by_rel - A) / np.abs(A)) > 1e-5  # what the scaled steps fix


def test_hessian_rise_keeps_pilot_steps_without_curvature():
    f = _noisy_quadratic(np.diag([2.0, 0.0]), np.zeros(2), 0.0)
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
