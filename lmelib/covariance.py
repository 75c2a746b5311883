"""The covariance parameters θ and the relative covariance factor Λθ.

For a term with ℓ columns (intercept, slopes) the random effects of one level
have covariance σ² λ λᵀ, where λ is an ℓ × ℓ lower-triangular matrix.  θ lists
the lower triangle of λ column by column (lme4's ``Lind`` order; JSS eqn. 4:
Σθ = σ² Λθ Λθᵀ, and eqns. 10-11: b = Λθ u, u ~ N(0, σ² I)); its diagonal elements are bounded below by 0 and the
others are free (lme4's ``lower``).  Λθ itself is block diagonal, one copy of λ
per level.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["n_theta", "theta_slices", "theta_lower", "theta_start", "theta_bounds", "lambda_of",
           "lambdas_of", "covariance_of"]


def n_theta(ell: int) -> int:
    """Number of θ elements for a term with ``ell`` columns."""
    return ell * (ell + 1) // 2


def theta_slices(ells: list[int]) -> list[slice]:
    """Where each term's elements sit in the concatenated θ."""
    bounds = np.cumsum([0] + [n_theta(e) for e in ells])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


@lru_cache(maxsize=None)
def _tril_indices(ell: int) -> tuple[np.ndarray, np.ndarray]:
    # column-major lower triangle: (0,0), (1,0), ..., (ell-1,0), (1,1), ...
    cols, rows = np.triu_indices(ell)
    return rows, cols


def theta_lower(ell: int) -> np.ndarray:
    """Lower bounds: 0 on the diagonal of λ, −∞ below it."""
    rows, cols = _tril_indices(ell)
    return np.where(rows == cols, 0.0, -np.inf)


def theta_start(ell: int) -> np.ndarray:
    """lme4's starting value: λ = I."""
    rows, cols = _tril_indices(ell)
    return np.where(rows == cols, 1.0, 0.0)


def theta_bounds(ells: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """lme4's start (λ = I) and lower bounds of the whole θ, term by term."""
    return (np.concatenate([theta_start(e) for e in ells]),
            np.concatenate([theta_lower(e) for e in ells]))


def lambda_of(theta: np.ndarray, ell: int) -> np.ndarray:
    """The ℓ × ℓ lower-triangular λ from its θ elements."""
    lam = np.zeros((ell, ell))
    lam[_tril_indices(ell)] = theta
    return lam


def lambdas_of(theta: np.ndarray, ells: list[int], slices: list[slice] | None = None) -> list[np.ndarray]:
    """λ of each term from the concatenated θ (the blocks of Λθ, one per term).

    ``slices`` are ``theta_slices(ells)``, passed by callers that evaluate the deviance often.
    """
    return [lambda_of(theta[s], e) for s, e in zip(slices or theta_slices(ells), ells)]


def covariance_of(theta: np.ndarray, ell: int, sigma: float) -> np.ndarray:
    """Covariance of one level's random effects, σ² λ λᵀ."""
    lam = lambda_of(theta, ell)
    return sigma**2 * lam @ lam.T
