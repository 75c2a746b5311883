"""The objective of a mixed model with an error structure, a function of (θ, ψ).

With R = σ² S C S in place of σ² I (structures.py), the whitening T(ψ) turns
the model for y into one for T y with independent errors, so

    −2 log L(θ, ψ) = d(θ | T(ψ) [Z X y]) + log |S C S|,

d the profiled deviance or REML criterion of deviance.py (eqns. 34 and 41)
computed from the whitened cross-products, and log |S C S| the Jacobian of the
whitening.  The optimiser sees one vector x = (θ, ψ): θ first, as lme4 orders
it, then the structure's unconstrained parameters ψ; :func:`split` is the one
place that tells them apart.
"""

from __future__ import annotations

import numpy as np

from .covariance import n_theta, theta_bounds
from .design import ModelFrame
from .deviance import CrossProducts, PLSSolution, ProfiledDeviance, ols
from .structures import ErrorModel

__all__ = ["StructuredDeviance", "split"]


def split(x: np.ndarray, frame: ModelFrame) -> tuple[np.ndarray, np.ndarray]:
    """The optimiser's x = (θ, ψ) as θ and ψ (ψ empty when the model has no error structure)."""
    k = sum(n_theta(t.ell) for t in frame.terms)
    return x[:k], x[k:]


class StructuredDeviance:
    """``f(x) -> float`` with x = (θ, ψ): the objective of a model with an error structure.

    The rows of [Z X y] are whitened by T(ψ) (structures.py), the mixed-model
    objective of the whitened data is computed as for R = σ²I (deviance.py),
    and log |R/σ²| is added (the Jacobian of the whitening).
    """

    DENSE_ROWS = 4_000_000  # [Z X y] is kept as a dense n × (q + p + 1) array up to this size

    def __init__(self, frame: ModelFrame, reml: bool, errors: ErrorModel):
        self.frame, self.reml, self.errors = frame, reml, errors
        start, lower = theta_bounds([t.ell for t in frame.terms])  # no cross-products needed
        self.start = np.concatenate([start, errors.start])
        self.lower = np.concatenate([lower, np.full(len(errors.start), -np.inf)])
        Z = frame.Z
        # y − Xβ0 in place of y, as CrossProducts.of(center_y=True): same fit, fewer digits lost
        self._beta0 = ols(frame.X, frame.y) if frame.p else None
        y0 = frame.y if self._beta0 is None else frame.y - frame.X @ self._beta0
        self._M = (np.column_stack([Z.toarray(), frame.X, y0])
                   if frame.n * (Z.shape[1] + frame.p + 1) <= self.DENSE_ROWS else None)

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x = (θ, ψ) as θ and ψ."""
        return split(x, self.frame)

    def _devfun(self, psi: np.ndarray) -> tuple[ProfiledDeviance, float]:
        """The profiled deviance of the data whitened by T(ψ), and log |S C S|."""
        T, logdet = self.errors.transform(psi)
        if self._M is None:
            cp = CrossProducts.of(self.frame, transform=T, center_y=True)
        else:  # small data: one sparse-times-dense product and one Gram matrix per evaluation
            TM = T @ self._M
            cp = CrossProducts.from_gram(self.frame, TM.T @ TM, self._beta0)
        return ProfiledDeviance(self.frame, self.reml, cp=cp), logdet

    def __call__(self, x: np.ndarray) -> float:
        theta, psi = self.split(x)
        f, logdet = self._devfun(psi)
        return f(theta) + logdet

    def solve(self, x: np.ndarray) -> PLSSolution:
        """The PLS solution of the whitened model at (θ, ψ)."""
        theta, psi = self.split(x)
        return self._devfun(psi)[0].solve(theta)
