"""Marginal and conditional R² of a mixed model (Nakagawa and Schielzeth 2013).

The variance of the response on the linear-predictor scale is split into

    σ²_f  the variance of the fixed-effect predictions x_i β̂ over the rows
          (with the n − 1 divisor, as R's ``var``),
    σ²_r  the random effects' variance: for each term, the mean over rows of
          z_i Σ z_iᵀ with Σ = σ² λ λᵀ the term's covariance (Johnson 2014;
          Nakagawa, Johnson and Schielzeth 2017 for random slopes; for a
          random intercept this is its variance),
    σ²_ε  the residual variance: σ² for a linear mixed model, the
          distribution-specific variance on the link scale for a GLMM,

and R²_marginal = σ²_f / (σ²_f + σ²_r + σ²_ε), R²_conditional =
(σ²_f + σ²_r) / (σ²_f + σ²_r + σ²_ε).  The definitions follow R's
``performance::r2_nakagawa`` (insight's ``get_variance``), so the numbers can be
compared with it: for a binomial GLMM σ²_ε is π²/3 (logit), 1 (probit) or
π²/6 (cloglog); for a Poisson GLMM (log link) it is the lognormal
approximation log(1 + 1/μ) with μ = exp(β̂₀) of the null model, the same
random effects with an intercept only.  A GLMM term with one level per
observation (an observation-level random effect) counts as residual variance.

Two deliberate differences from performance: z_i is the term's own model
matrix (performance takes the matching columns of X and drops a slope absent
from the fixed effects), and a singular fit still gets a conditional R² (the
variance that is zero adds nothing; performance returns NA when a θ on its
boundary is below 1e-5).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .glmm import glmer

__all__ = ["r2", "variance_components"]


def r2(m) -> pd.Series:
    """Nakagawa and Schielzeth's marginal and conditional R² of an lmer or glmer fit.

    >>> lmelib.r2(lmelib.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy))
    marginal       0.279
    conditional    0.799
    """
    if getattr(m, "errors", None) is not None:
        raise NotImplementedError("R² needs residuals with R = σ²I (one residual variance); this fit has "
                                  "an error structure (correlation= or weights=)")
    if not hasattr(m.frame, "X"):
        raise NotImplementedError("R² needs the rows of X and Z, which an out-of-core (Dask) fit does "
                                  "not keep; fit a pandas DataFrame or a sample of it")
    v = variance_components(m)
    total = v["fixed"] + v["random"] + v["residual"]
    return pd.Series({"marginal": v["fixed"] / total,
                      "conditional": (v["fixed"] + v["random"]) / total}, name="R2")


def variance_components(m) -> pd.Series:
    """σ²_f, σ²_r and σ²_ε of the module docstring, as a Series (fixed, random, residual)."""
    frame = m.frame
    varying = np.ptp(frame.X, axis=0) > 0  # constant columns (the intercept) add no variance
    eta_fixed = frame.X[:, varying] @ np.asarray(m.fixef, dtype=float)[varying]
    fixed = float(np.var(eta_fixed, ddof=1)) if varying.any() else 0.0  # R's var(): n − 1 divisor
    glmm = hasattr(m, "family")
    per_obs = [glmm and t.n_levels == frame.n for t in frame.terms]  # observation-level terms
    spread = [_term_variance(t.values, m.sigma * lam) for t, lam in zip(frame.terms, m.lambdas)]
    random = sum(s for s, o in zip(spread, per_obs) if not o)
    residual = _distribution_variance(m) if glmm else m.sigma**2
    residual += sum(s for s, o in zip(spread, per_obs) if o)
    return pd.Series({"fixed": fixed, "random": float(random), "residual": float(residual)})


def _term_variance(values: np.ndarray, lam_sigma: np.ndarray) -> float:
    """Mean over rows of z_i Σ z_iᵀ, Σ = (σλ)(σλ)ᵀ: the mean of ‖z_i σλ‖²."""
    return float(((values @ lam_sigma) ** 2).sum(axis=1).mean())


def _distribution_variance(m) -> float:
    """The GLMM's residual variance on the link scale (insight's ``.compute_variance_distribution``)."""
    family, link = m.family.name, m.family.link.name
    if family == "binomial":
        table = {"logit": np.pi**2 / 3, "probit": 1.0, "cloglog": np.pi**2 / 6}
        if link in table:
            return table[link]
    if family == "poisson" and link == "log":
        mu = np.exp(float(_null_model(m).fixef.iloc[0]))
        if mu < 6:  # performance's threshold
            warnings.warn(f"the null model's mean μ = exp(β̂₀) = {mu:.2g} is small: the lognormal "
                          "approximation log(1 + 1/μ) of the Poisson residual variance may be unreliable",
                          UserWarning, stacklevel=3)
        return float(np.log1p(1.0 / mu))  # lognormal approximation: log(1 + var(μ)/μ²), var(μ) = μ
    raise NotImplementedError(f"R² is implemented for lmer fits and for binomial (logit, probit, "
                              f"cloglog) and Poisson (log) GLMMs, not the {family} family "
                              f"with the {link} link")


def _null_model(m):
    """The GLMM refitted with its random effects and an intercept only (insight's ``null_model``)."""
    frame = m.frame
    bars = " + ".join(f"({t.term.expr} | {':'.join(t.term.factors)})" for t in frame.terms)
    return glmer(f"{frame.formula.response} ~ 1 + {bars}", frame.data, family=m.family.name,
                 link=m.family.link.name, weights=frame.weights, offset=frame.offset, nagq=m.nagq)
