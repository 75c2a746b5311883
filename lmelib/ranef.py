"""Random effects after a fit: variance components, conditional modes and variances.

Shared by linear and generalized linear mixed models: both hold θ (hence λ of
each term), the spherical modes u and the Cholesky factor L of
ΛᵀZᵀWZΛ + I, from which b = Λu and the conditional covariance
σ² Λ (LLᵀ)⁻¹ Λᵀ follow (lme4's ``ranef(condVar = TRUE)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg

from .deviance import PLSSolution, dense
from .design import CONTEXT
from .newdata import encode_newdata

__all__ = ["varcorr_table", "split_b", "ranef_frames", "conditional_variances", "tidy_ranef",
           "zb", "new_codes_values", "unique_names"]


def unique_names(names: list[str]) -> list[str]:
    """R's make.unique: a repeated grouping name gets .1, .2 (``(x || g)`` -> g, g.1)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        out.append(name if k == 0 else f"{name}.{k}")
        seen[name] = k + 1
    return out


def varcorr_table(terms, lams, sigma: float, residual: bool = True) -> pd.DataFrame:
    """As R's ``as.data.frame(VarCorr(m))``: variances, then covariances/correlations.

    ``var1`` and ``var2`` are strings, missing (``<NA>``, R's NA) where R has NA: ``var2`` of a
    variance, both of the residual.
    """
    rows = []
    for name, term, lam in zip(unique_names([t.name for t in terms]), terms, lams):
        cov = sigma**2 * lam @ lam.T
        sd = np.sqrt(np.diag(cov))
        rows += [(name, col, None, cov[i, i], sd[i]) for i, col in enumerate(term.columns)]
        for j in range(term.ell):
            for i in range(j + 1, term.ell):
                cor = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                rows.append((name, term.columns[j], term.columns[i], cov[i, j], cor))
    if residual:
        rows.append(("Residual", None, None, sigma**2, sigma))
    out = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
    return out.astype({"var1": "string", "var2": "string"})  # absent names print as <NA>, as R's


def split_b(terms, lams, u: np.ndarray) -> list[np.ndarray]:
    """b = Λu of each term, as levels × ℓ arrays."""
    out, start = [], 0
    for term, lam in zip(terms, lams):
        out.append(u[start : start + term.q].reshape(term.n_levels, term.ell) @ lam.T)
        start += term.q
    return out


def ranef_frames(terms, b) -> dict[str, pd.DataFrame]:
    """One DataFrame of conditional modes per grouping factor, terms of a factor side by side."""
    out: dict[str, pd.DataFrame] = {}
    for term, bt in zip(terms, b):
        df = pd.DataFrame(bt, index=term.levels, columns=list(term.columns))
        df.index.name = term.name
        out[term.name] = pd.concat([out[term.name], df], axis=1) if term.name in out else df
    return out


def conditional_variances(sol: PLSSolution, terms, lams, sigma: float) -> list[np.ndarray]:
    """Diagonal blocks of σ² Λ (LLᵀ)⁻¹ Λᵀ, by term and level, from the blocked factor.

    With L = [[L11, 0], [L21, L22]] (Z rows only), (LLᵀ)⁻¹ has the blocks
    L11⁻ᵀL11⁻¹ + MᵀM (M = L22⁻¹ L21 L11⁻¹) for the first term and L22⁻ᵀL22⁻¹
    for the others.
    """
    q = sol.q_rest
    blocked = sol.L11.shape[0] > 0
    L22inv = scipy.linalg.solve_triangular(sol.L22[:q, :q], np.eye(q), lower=True)
    out = []
    if blocked:
        L11inv = np.linalg.inv(sol.L11)  # m1 × ℓ1 × ℓ1
        V1 = np.swapaxes(L11inv, 1, 2) @ L11inv
        if q:
            m1, ell1, _ = sol.L11.shape
            L21z = dense(sol.L21)[:q, :].reshape(q, m1, ell1)
            M = (L22inv @ np.einsum("rgk,gkl->rgl", L21z, L11inv).reshape(q, -1)).reshape(q, m1, ell1)
            V1 = V1 + np.einsum("rgk,rgl->gkl", M, M)
        out.append(sigma**2 * lams[0] @ V1 @ lams[0].T)
    W = L22inv.T @ L22inv
    start = 0
    for term, lam in zip(terms[1:] if blocked else terms, lams[1:] if blocked else lams):
        idx = start + np.arange(term.q).reshape(term.n_levels, term.ell)
        out.append(sigma**2 * lam @ W[idx[:, :, None], idx[:, None, :]] @ lam.T)
        start += term.q
    return out


def tidy_ranef(terms, b, V) -> pd.DataFrame:
    """As R's ``as.data.frame(ranef(m, condVar = TRUE))``: grpvar, term, grp, condval, condsd."""
    parts = []
    for term, bt, Vt in zip(terms, b, V):
        sd = np.sqrt(np.diagonal(Vt, axis1=1, axis2=2))
        for j, col in enumerate(term.columns):
            parts.append(pd.DataFrame({"grpvar": term.name, "term": col, "grp": term.levels,
                                       "condval": bt[:, j], "condsd": sd[:, j]}))
    return pd.concat(parts, ignore_index=True)


def zb(b, codes_values) -> np.ndarray:
    """Z b from each term's level codes and values; a code of −1 (unseen level) adds 0."""
    total = 0.0
    for bt, (codes, values) in zip(b, codes_values):
        known = codes >= 0
        contrib = np.einsum("ij,ij->i", values, bt[np.where(known, codes, 0)])
        total = total + np.where(known, contrib, 0.0)
    return total


def new_codes_values(term, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A term's level codes (−1 for levels not seen in fitting) and values for new data.

    Levels are matched by value as the fitted data typed them (308 finds 308.0);
    a categorical column in the term's left-hand side is encoded with its fitted levels.
    """
    encoded = encode_newdata(term.spec, newdata)
    values = np.asarray(term.spec.get_model_matrix(encoded, na_action="raise", context=CONTEXT), dtype=float)
    if values.shape[0] != len(newdata):  # "1" needs no data: one row per row of newdata
        values = np.ones((len(newdata), values.shape[1]))
    return term.new_codes(newdata), values
