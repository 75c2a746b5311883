"""Confidence and prediction intervals for the predictions of an lmer fit.

A prediction x β̂ + z b̂ for a row of new data has an error with two parts:

* the estimation error x (β̂ − β) + z (b̂ − b) of the levels seen in fitting.
  Henderson (1975): the inverse of the coefficient matrix C of the mixed-model
  equations is the joint covariance of (β̂ − β, û − u), up to σ².  In lme4's
  spherical coordinates (b = Λθ u, u ~ N(0, σ² I); Bates et al. 2015, sec. 3)
  C is the matrix that penalized least squares factors (deviance.py's A
  without its y row),

        ⎡ ΛᵀZᵀZΛ + I   ΛᵀZᵀX ⎤
    C = ⎣   XᵀZΛ        XᵀX  ⎦ = L Lᵀ,

  so for v = [Λᵀzᵀ; xᵀ] the variance is σ² vᵀ C⁻¹ v = σ² ‖L⁻¹ v‖²: one forward
  solve with the factor the fit already has (no G⁻¹, so singular fits work too).
* each level not seen in fitting (a new school) adds its whole random effect,
  z G zᵀ = σ² ‖λᵀ zᵀ‖², since b_new is independent of the data.  With no
  level seen the total is x Var(β̂) xᵀ + z G zᵀ: the diagonal of the new
  group's marginal V = Z G Zᵀ + σ² I less σ², plus the fixed-effect uncertainty.

A prediction interval adds σ² for the new observation's own residual.  The
intervals use normal quantiles and treat θ̂ and σ̂ as known, ignoring their
uncertainty, as is usual (the GLMM FAQ's intervals on predictions do the same).
Only for fits with R = σ²I.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from scipy.special import ndtri  # the normal quantile (scipy.stats is slow to import)

from .deviance import dense
from .design import CONTEXT
from .newdata import encode_newdata, newdata_columns
from .ranef import new_codes_values, zb

__all__ = ["predict_interval", "prediction_variance", "interval_frame"]

CHUNK = 4096  # newdata rows per forward solve (bounds the r × rows work array)


def interval_frame(fit: np.ndarray, variance: np.ndarray, level: float, index: pd.Index) -> pd.DataFrame:
    """fit ± z_{(1+level)/2} √variance as columns fit, lwr, upr (normal quantiles)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, not {level!r}")
    half = ndtri(0.5 + level / 2) * np.sqrt(variance)
    return pd.DataFrame({"fit": fit, "lwr": fit - half, "upr": fit + half}, index=index)


def predict_interval(m, newdata: pd.DataFrame | None, re: bool, interval: str, level: float) -> pd.DataFrame:
    """x β̂ + z b̂ with a "confidence" or "prediction" interval (columns fit, lwr, upr).

    Without newdata: the rows used in the fit.  ``LinearMixedModel.predict(interval=...)``.
    """
    if interval not in ("confidence", "prediction"):
        raise ValueError(f"interval must be None, 'confidence' or 'prediction', not {interval!r}")
    if m.errors is not None:
        raise NotImplementedError("prediction and confidence intervals need residuals with R = σ²I; "
                                  "this fit has an error structure (correlation= or weights=)")
    newdata = m.frame.data.set_axis(m.frame.index) if newdata is None else newdata
    _check_columns(m, newdata, re, interval)
    random = re or interval == "prediction"  # re=False, "confidence": an interval for x β alone
    X, parts = _new_design(m, newdata, re, random)
    fit = X @ m.solution.beta + m.frame.new_offset(newdata) + zb(m._b, parts)  # unseen levels add 0
    var = prediction_variance(m, X, parts, residual=interval == "prediction", random=random)
    return interval_frame(np.asarray(fit, dtype=float), var, level, newdata.index)


def _check_columns(m, newdata: pd.DataFrame, re: bool, interval: str) -> None:
    """The columns predict needs; with re=False no grouping column, but "prediction" needs each z."""
    grouping = {f for t in m.frame.terms for f in t.term.factors}
    needed = [c for c in newdata_columns(m.frame, re or interval == "prediction")
              if c not in newdata.columns and (re or c not in grouping)]
    if needed:
        raise KeyError(f"newdata lacks column(s) {', '.join(map(repr, needed))} that the model uses")


def prediction_variance(m, X: np.ndarray, parts, residual: bool = True, random: bool = True) -> np.ndarray:
    """Variance of the prediction error of each row, for a fit with R = σ²I.

    ``X`` and ``parts`` (each term's level codes, −1 for a level not seen, and
    z values) describe the new rows; ``random`` counts z G zᵀ of the levels not
    seen (the new groups' own effects); ``residual`` adds σ² (a prediction
    rather than a confidence interval).
    """
    n = X.shape[0]
    seen = np.concatenate([_henderson_quadratic(m, X[s], [(c[s], v[s]) for c, v in parts])
                           for s in _chunks(n)]) if n else np.zeros(0)
    unseen = _new_levels(parts, m.lambdas) if random else 0.0
    return m.sigma**2 * (seen + unseen + (1.0 if residual else 0.0))


def _new_design(m, newdata: pd.DataFrame, re: bool, random: bool):
    """X of the new rows and each term's (codes, z values); with ``re=False`` every code is −1."""
    n = len(newdata)
    parts = [_codes_values(t, newdata, re) if random else (np.full(n, -1), np.zeros((n, t.ell)))
             for t in m.frame.terms]
    return m.frame.new_X(newdata), parts


def _new_levels(parts, lams) -> np.ndarray:
    """z G zᵀ / σ² = ‖λᵀ zᵀ‖² summed over the terms whose level was not seen in fitting."""
    return sum(np.where(codes < 0, ((values @ lam) ** 2).sum(axis=1), 0.0)
               for (codes, values), lam in zip(parts, lams))


def _codes_values(term, newdata: pd.DataFrame, re: bool) -> tuple[np.ndarray, np.ndarray]:
    """A term's level codes (−1: not seen, and every row when ``re=False``) and z values."""
    if re:
        return new_codes_values(term, newdata)
    encoded = encode_newdata(term.spec, newdata)  # as ranef.new_codes_values, without the levels
    values = np.asarray(term.spec.get_model_matrix(encoded, na_action="raise", context=CONTEXT), dtype=float)
    if values.shape[0] != len(newdata):  # "1" needs no data
        values = np.ones((len(newdata), values.shape[1]))
    return np.full(len(newdata), -1, dtype=np.intp), values


def _chunks(n: int) -> list[slice]:
    return [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]


def _henderson_quadratic(m, X: np.ndarray, parts) -> np.ndarray:
    """‖L⁻¹ v‖² for each row, v = [Λᵀzᵀ (seen levels only); xᵀ] in the blocked factor's order.

    L = [[L11, 0], [L21, L22]] (deviance.py): w1 = L11⁻¹ v1 level by level, then
    w2 = L22⁻¹ (v2 − L21 w1), dropping the y row of L21 and L22; ‖L⁻¹v‖² = ‖w1‖² + ‖w2‖².
    """
    sol, cp = m.solution, m.frame.cross_products
    n = X.shape[0]
    r = cp.q_rest + cp.p  # rows of L22 without y
    w1sq = np.zeros(n)
    if cp.m1:  # the first term, in the block-diagonal L11
        (codes, values), lam = parts[0], m.lambdas[0]
        seen = np.flatnonzero(codes >= 0)
        w1 = np.linalg.solve(sol.L11[codes[seen]], (values[seen] @ lam)[:, :, None])[:, :, 0]
        w1sq[seen] = (w1**2).sum(axis=1)
        rows = (codes[seen, None] * cp.ell1 + np.arange(cp.ell1)).ravel()
        W1 = sp.csr_array((w1.ravel(), (rows, np.repeat(seen, cp.ell1))), shape=(cp.m1 * cp.ell1, n))
    v2 = np.zeros((r, n))
    for k, offset, ell, _ in cp.rest:  # the other terms, in the dense block
        (codes, values), lam = parts[k], m.lambdas[k]
        seen = np.flatnonzero(codes >= 0)
        rows = offset + codes[seen, None] * ell + np.arange(ell)
        v2[rows, seen[:, None]] = values[seen] @ lam
    v2[cp.q_rest:] = X.T
    if cp.m1:  # v2 − L21 w1, as (w1ᵀ L21ᵀ)ᵀ: sparse w1 times L21 stored dense or sparse
        v2 -= dense(W1.T @ sol.L21[:r].T).T
    w2 = scipy.linalg.solve_triangular(sol.L22[:r, :r], v2, lower=True, check_finite=False)
    return w1sq + (w2**2).sum(axis=0)
