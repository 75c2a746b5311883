"""Numerical derivatives of the objective: central differences and Richardson extrapolation.

Two kinds, for two purposes:

* Central differences with one step per coordinate (:func:`central_differences`,
  :func:`hessian_offdiagonal`, :func:`hessian`): the optimum's Newton polish
  (optimize.py), the Wald intervals of an error structure's parameters and a
  GLMM's standard errors.  ``hessian(rise=...)`` scales each step to the
  curvature, so that a small but well-determined coefficient is not lost in
  the objective's rounding error.
* Richardson extrapolation over steps h, h/2, h/4, h/8
  (:func:`richardson_hessian`, :func:`richardson_jacobian`), exactly as the R
  package numDeriv computes them (its ``genD`` and ``jacobian``, method
  "Richardson", d = 0.1 and 1e-4, r = 4): lmerTest's Satterthwaite df use
  these, and ddf.py matches lmerTest by using the same steps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["central_differences", "hessian_offdiagonal", "hessian", "richardson_hessian",
           "richardson_jacobian"]


# ------------------------------------------------------------- central differences


def _unit(x: np.ndarray, i: int, h: float) -> np.ndarray:
    e = np.zeros_like(x)
    e[i] = h
    return e


def central_differences(f, x, fx, free, h, wide=False) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient on the free elements, and the Hessian's diagonal from the same
    evaluations: three-point, or with ``wide`` five-point (error O(h⁴), so that steps FD_WIDE
    times longer cut the rounding error in the gradient as many times)."""
    g, d2 = np.zeros(len(free)), np.zeros(len(free))
    for a, i in enumerate(free):
        fp, fm = f(x + _unit(x, i, h[i])), f(x - _unit(x, i, h[i]))
        if wide:
            fpp, fmm = f(x + _unit(x, i, 2 * h[i])), f(x - _unit(x, i, 2 * h[i]))
            g[a] = (8 * (fp - fm) - (fpp - fmm)) / (12 * h[i])
            d2[a] = (16 * (fp + fm) - (fpp + fmm) - 30 * fx) / (12 * h[i] ** 2)
        else:
            g[a] = (fp - fm) / (2 * h[i])
            d2[a] = (fp - 2 * fx + fm) / h[i] ** 2
    return g, d2


def hessian_offdiagonal(f, x, free, h, d2, fx=None, g=None) -> np.ndarray:
    """The Hessian on the free elements: the given diagonal ``d2``, the rest by

    * four-point differences (neither ``fx`` nor ``g``);
    * given f(x) = ``fx``, two evaluations per pair that reuse the diagonal's,
      Hᵢⱼ = [f(x+eᵢ+eⱼ) + f(x−eᵢ−eⱼ) − 2f(x) − hᵢ²Hᵢᵢ − hⱼ²Hⱼⱼ] / (2hᵢhⱼ): as accurate, to
      second order, with half the evaluations;
    * given also the central gradient ``g``, one evaluation per pair,
      f(x+eᵢ+eⱼ) = f + gᵢhᵢ + gⱼhⱼ + ½hᵢ²Hᵢᵢ + ½hⱼ²Hⱼⱼ + Hᵢⱼhᵢhⱼ + O(h³): accurate to O(h),
      enough for chord Newton steps, whose end point does not depend on the Hessian.
    """
    H = np.diag(d2)
    for a, i in enumerate(free):
        for b in range(a + 1, len(free)):
            j = free[b]
            ei, ej = _unit(x, i, h[i]), _unit(x, j, h[j])
            axes = d2[a] * h[i] ** 2 + d2[b] * h[j] ** 2
            if fx is None:
                H[a, b] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                           + f(x - ei - ej)) / (4 * h[i] * h[j])
            elif g is None:
                H[a, b] = (f(x + ei + ej) - fx + f(x - ei - ej) - fx - axes) / (2 * h[i] * h[j])
            else:
                rest = f(x + ei + ej) - fx - g[a] * h[i] - g[b] * h[j]
                H[a, b] = (rest - 0.5 * axes) / (h[i] * h[j])
            H[b, a] = H[a, b]
    return H


def hessian(f, x, rel=1e-4, floor=1e-2, rise=None) -> np.ndarray:
    """Central finite-difference Hessian, steps ``rel`` × max(|x|, ``floor``).

    With ``rise`` the steps are scaled to the curvature instead: a pilot pass with those steps
    estimates the diagonal, then each step is set so that it raises f by about ``rise``
    (h_i = √(2 rise / f_ii)).  Relative steps are far too short for a coefficient that is small
    but well determined (a slope on a scale of hundreds): the second differences are then
    dominated by f's rounding error, and differ from one BLAS kernel or row order to another.
    """
    x = np.asarray(x, dtype=float)
    h, every = rel * np.maximum(np.abs(x), floor), np.arange(len(x))
    fx = f(x)
    _, d2 = central_differences(f, x, fx, every, h)
    if rise is not None:
        h = _curvature_steps(d2, h, rise)
        _, d2 = central_differences(f, x, fx, every, h)
    return hessian_offdiagonal(f, x, every, h, d2)


def _curvature_steps(d2: np.ndarray, h: np.ndarray, rise: float) -> np.ndarray:
    """Steps that raise a quadratic with diagonal d2 by ``rise``; the pilot steps where d2 ≤ 0."""
    scaled = np.sqrt(2.0 * rise / np.where(d2 > 0, d2, 1.0))
    return np.where(d2 > 0, scaled, h)


# ------------------------------------------- numDeriv's Richardson extrapolation


def _steps(x: np.ndarray, d: float, eps: float = 1e-4) -> np.ndarray:
    """numDeriv's initial steps: relative d, absolute eps where x is (near) zero."""
    zero_tol = np.sqrt(np.finfo(float).eps / 7e-7)
    return np.abs(d * x) + eps * (np.abs(x) < zero_tol)


def _richardson(a: np.ndarray, r: int = 4) -> np.ndarray:
    """Extrapolate estimates made with steps h, h/2, h/4, ... (first axis) to step 0."""
    for m in range(1, r):
        a = (a[1:] * 4**m - a[:-1]) / (4**m - 1)
    return a[0]


def richardson_hessian(f, x: np.ndarray, d: float = 0.1, r: int = 4) -> np.ndarray:
    """Hessian of a scalar f at x, as ``numDeriv::hessian`` (its genD, Richardson)."""
    x = np.asarray(x, dtype=float)
    n, f0, h0, e = len(x), f(x), _steps(x, d), np.eye(len(x))
    hs = [h0 / 2.0**k for k in range(r)]  # the steps of every coordinate, halved r times

    def second(i: int, j: int, h: np.ndarray) -> float:  # f(x + u) − 2 f(x) + f(x − u)
        u = h[i] * e[i] + (h[j] * e[j] if j != i else 0)
        return f(x + u) - 2 * f0 + f(x - u)

    diag = np.array([_richardson(np.array([second(i, i, h) / h[i] ** 2 for h in hs]), r)
                     for i in range(n)])
    H = np.diag(diag)
    for i in range(n):
        for j in range(i):
            est = [(second(i, j, h) - diag[i] * h[i] ** 2 - diag[j] * h[j] ** 2) / (2 * h[i] * h[j])
                   for h in hs]
            H[i, j] = H[j, i] = _richardson(np.array(est), r)
    return H


def richardson_jacobian(f, x: np.ndarray, d: float = 1e-4, r: int = 4) -> np.ndarray:
    """Derivatives of an array-valued f at x, one per element of x (``numDeriv::jacobian``)."""
    x = np.asarray(x, dtype=float)
    h0, e = _steps(x, d), np.eye(len(x))
    out = []
    for i in range(len(x)):
        est = [(f(x + h * e[i]) - f(x - h * e[i])) / (2 * h) for h in h0[i] / 2.0 ** np.arange(r)]
        out.append(_richardson(np.array(est), r))
    return np.array(out)
