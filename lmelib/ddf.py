"""Denominator degrees of freedom for t tests of the fixed effects.

The t statistic of a contrast Lᵀβ̂ divides by a standard error whose variance
parameters are themselves estimated, so t is not exactly t-distributed with
any df.  Two approximations find the df of the t distribution that fits best:

Satterthwaite (1946), as lmerTest computes it (Kuznetsova et al. 2017):
    with φ = (θ, σ) and C(φ) = σ² (R_XᵀR_X)⁻¹ the covariance of β̂,

        ν = 2 (LᵀCL)² / (gᵀ A g),   g_k = Lᵀ (∂C/∂φ_k) L,   A = 2 H⁻¹,

    where H is the Hessian of the deviance (ML fits) or REML criterion, not
    profiled over σ (Bates et al. 2015, eqns. 31 and 39), at φ̂: A is the
    asymptotic covariance of φ̂.  H and ∂C/∂φ are taken numerically with
    Richardson extrapolation, exactly as lmerTest does with numDeriv
    (derivatives.py).

Kenward & Roger (1997), as pbkrtest computes it (Halekoh & Højsgaard 2014),
REML fits only:
    with the marginal covariance Σ = Σ_k γ_k G_k written in its covariance
    parameters γ (the entries of each term's covariance matrix, then σ²;
    G_k = Z_t (I ⊗ E_ij) Z_tᵀ, and I for σ²), the covariance of β̂,
    Φ = (XᵀΣ⁻¹X)⁻¹, is corrected for the variability of γ̂ to
    Φ_A = Φ + 2ΦΛΦ, and the df of the F statistic (t² for one contrast) is
    matched to its first two moments.  lmerTest's KR table reports the
    adjusted standard errors √(LᵀΦ_A L).

Σ⁻¹ is formed densely (n × n, by Woodbury's identity), which suits data sets
of up to a few thousand rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg

from .derivatives import richardson_hessian, richardson_jacobian
from .structures import require_iid_residuals

__all__ = [
    "Satterthwaite",
    "KenwardRoger",
    "satterthwaite",
    "kenward_roger",
    "contest1d",
    "coef_table",
    "varpar_deviance",
    "varpar_vcov_beta",
]

EIGEN_TOL = 1e-8  # lmerTest's tol: Hessian eigenvalues treated as zero


# ---------------------------------------------------------------- Satterthwaite


def varpar_deviance(m):
    """The objective as a function of φ = (θ, σ), σ not profiled (lmerTest's ``devfun_vp``).

    ML: log|Lθ|² + r²θ/σ² + n log(2πσ²) (eqn. 31); REML adds
    log|R_X|² − p log(2πσ²) (eqn. 39).
    """
    devfun, n, p, reml = m.devfun, m.frame.n, m.frame.p, m.reml

    def f(varpar: np.ndarray) -> float:
        sol, s2 = devfun.solve(varpar[:-1]), varpar[-1] ** 2
        dev = sol.ldL2 + sol.pwrss / s2 + n * np.log(2 * np.pi * s2)
        return dev + sol.ldRX2 - p * np.log(2 * np.pi * s2) if reml else dev

    return f


def varpar_vcov_beta(m):
    """C(φ) = σ² (R_XᵀR_X)⁻¹, the covariance of β̂ as a function of φ = (θ, σ).

    lmerTest's ``get_covbeta``.
    """
    devfun = m.devfun

    def f(varpar: np.ndarray) -> np.ndarray:
        RXinv = np.linalg.inv(devfun.solve(varpar[:-1]).RX)
        return varpar[-1] ** 2 * RXinv @ RXinv.T

    return f


@dataclass(frozen=True, eq=False)
class Satterthwaite:
    """What Satterthwaite's df of any contrast needs (lmerTest's ``lmerModLmerTest`` slots).

    ``vcov_beta`` is C(φ̂), ``vcov_varpar`` A = 2 H⁻¹ (a Moore–Penrose inverse
    over the eigenvalues above 1e-8, as lmerTest), ``jacobian`` ∂C/∂φ_k
    stacked over k, and ``eigenvalues`` those of H (a negative or zero one
    means φ̂ is not a proper optimum).
    """

    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    eigenvalues: np.ndarray

    def ddf(self, L) -> float:
        """ν = 2 (LᵀCL)² / (gᵀ A g) for the contrast Lᵀβ."""
        L = np.asarray(L, dtype=float)
        g = np.einsum("i,kij,j->k", L, self.jacobian, L)
        return float(2 * (L @ self.vcov_beta @ L) ** 2 / (g @ self.vcov_varpar @ g))

    def variance(self, L) -> float:
        L = np.asarray(L, dtype=float)
        return float(L @ self.vcov_beta @ L)


def satterthwaite(m) -> Satterthwaite:
    """Satterthwaite's approximation for the fit ``m`` (Satterthwaite 1946; Kuznetsova et al. 2017)."""
    require_iid_residuals(m, "Satterthwaite's method", "lmerTest")
    varpar = np.append(m.theta, m.sigma)
    H = richardson_hessian(varpar_deviance(m), varpar)
    values, vectors = np.linalg.eigh(H)
    _warn_eigenvalues(values)
    pos = values > EIGEN_TOL
    A = 2 * (vectors[:, pos] / values[pos]) @ vectors[:, pos].T
    J = richardson_jacobian(varpar_vcov_beta(m), varpar)
    return Satterthwaite(m.vcov.to_numpy(), A, J, values[::-1])


def _warn_eigenvalues(values: np.ndarray) -> None:
    neg = values[values < -EIGEN_TOL]
    zero = values[np.abs(values) < EIGEN_TOL]
    if len(neg):
        warnings.warn(f"the Hessian of the objective has {len(neg)} negative eigenvalue(s) "
                      f"({', '.join(f'{v:.1e}' for v in neg)}): the fit is not at a minimum",
                      UserWarning, stacklevel=3)
    if len(zero):
        warnings.warn(f"the Hessian of the objective has {len(zero)} eigenvalue(s) close to zero "
                      f"({', '.join(f'{v:.1e}' for v in zero)}): a variance parameter is not "
                      "identified; its direction is left out of the df", UserWarning, stacklevel=3)


# ---------------------------------------------------------------- Kenward-Roger


@dataclass(frozen=True, eq=False)
class _Component:
    """One covariance parameter γ_k: G_k = U D Uᵀ, U the Z columns of a term (None: G = I)."""

    cols: slice | None
    D: np.ndarray | None


def _components(m) -> list[_Component]:
    """γ in pbkrtest's order: each term's covariance, lower triangle by columns, then σ²."""
    out, start = [], 0
    for term in m.frame.terms:
        cols = slice(start, start + term.q)
        for j in range(term.ell):
            for i in range(j, term.ell):
                E = np.zeros((term.ell, term.ell))
                E[i, j] = E[j, i] = 1.0  # ∂Σ/∂γ for the (co)variance of columns i and j
                out.append(_Component(cols, np.kron(np.eye(term.n_levels), E)))
        start += term.q
    out.append(_Component(None, None))
    return out


@dataclass(frozen=True, eq=False)
class KenwardRoger:
    """pbkrtest's ``vcovAdj`` and what ``Lb_ddf`` needs: Φ, Φ_A, the P_k and W = 2 I_E⁻¹."""

    vcov: np.ndarray  # Φ = vcov(m)
    vcov_adj: np.ndarray  # Φ_A
    P: np.ndarray  # k × p × p
    W: np.ndarray  # k × k

    def variance(self, L) -> float:
        L = np.asarray(L, dtype=float)
        return float(L @ self.vcov_adj @ L)

    def ddf(self, L) -> float:
        """Denominator df for the hypothesis Lβ = 0, L with q rows (pbkrtest's ``Lb_ddf``).

        K&R (1997, section 4): A1, A2 from Θ = Lᵀ(LΦLᵀ)⁻¹L, the P_i and W; the
        scaled F statistic's moments E and V matched to an F(q, m) with
        m = 4 + (q + 2) / (qρ − 1).
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        q, Phi = L.shape[0], self.vcov
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        u = [Theta @ Phi @ P @ Phi for P in self.P]
        A1 = A2 = 0.0
        for i in range(len(u)):
            for j in range(i, len(u)):
                e = 1 if i == j else 2
                A1 += e * self.W[i, j] * np.trace(u[i]) * np.trace(u[j])
                A2 += e * self.W[i, j] * np.sum(u[i] * u[j].T)
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        c1, c2, c3 = np.array([g, q - g, q + 2 - g]) / (3 * q + 2 * (1 - g))
        v0, v1, v2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        ratio = 1.0 if abs(1 - A2 / q) < 1e-14 and abs(v1) < 1e-14 else (1 - A2 / q) / v1
        rho = ratio**2 * v0 / v2 / q
        return float(4 + (q + 2) / (q * rho - 1))


def _marginal_precision(m, Z: np.ndarray) -> np.ndarray:
    """Σ⁻¹ for Σ = ZGZᵀ + σ²I = σ²(ZΛΛᵀZᵀ + I), by Woodbury: σ⁻²(I − ZΛ (ΛᵀZᵀZΛ + I)⁻¹ ΛᵀZᵀ)."""
    blocks = [np.kron(np.eye(t.n_levels), lam) for t, lam in zip(m.frame.terms, m.lambdas)]
    ZL = Z @ scipy.linalg.block_diag(*blocks)
    M = ZL.T @ ZL + np.eye(ZL.shape[1])
    return (np.eye(m.nobs) - ZL @ np.linalg.solve(M, ZL.T)) / m.sigma**2


def _kr_pieces(m, comps: list[_Component]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kenward & Roger's P_i = −XᵀΣ⁻¹G_iΣ⁻¹X, Q_ij = XᵀΣ⁻¹G_iΣ⁻¹G_jΣ⁻¹X, K_ij = tr(Σ⁻¹G_iΣ⁻¹G_j).

    With G_i = U D Uᵀ, everything is a product of the small U_iᵀΣ⁻¹U_j and U_iᵀΣ⁻¹X.
    """
    X, Z = m.frame.X, m.frame.Z.toarray()
    Sinv = _marginal_precision(m, Z)
    SX, SZ = Sinv @ X, Sinv @ Z

    def cross(a: _Component, b: _Component) -> np.ndarray:  # U_aᵀ Σ⁻¹ U_b
        if a.cols is None:
            return Sinv if b.cols is None else SZ[:, b.cols]
        return SZ[:, a.cols].T if b.cols is None else Z[:, a.cols].T @ SZ[:, b.cols]

    def D(c: _Component, M: np.ndarray) -> np.ndarray:  # D_c M
        return M if c.D is None else c.D @ M

    UX = [SX if c.cols is None else Z[:, c.cols].T @ SX for c in comps]  # U_iᵀ Σ⁻¹ X
    k, p = len(comps), X.shape[1]
    P = np.array([-u.T @ D(c, u) for c, u in zip(comps, UX)])
    Q, K = np.empty((k, k, p, p)), np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            Cij, Cji = cross(comps[i], comps[j]), cross(comps[j], comps[i])
            Q[i, j] = UX[i].T @ D(comps[i], Cij) @ D(comps[j], UX[j])
            Q[j, i] = Q[i, j].T
            K[i, j] = K[j, i] = np.sum(D(comps[i], Cij) * D(comps[j], Cji).T)
    return P, Q, K


def kenward_roger(m) -> KenwardRoger:
    """Kenward & Roger's adjusted covariance of β̂ (Kenward & Roger 1997; pbkrtest's ``vcovAdj``).

    Φ_A = Φ + 2 Φ Λ Φ,  Λ = Σ_ij W_ij (Q_ij − P_i Φ P_j),  W = I_E⁻¹, the
    inverse expected (REML) information of γ; the second derivatives R_ij of
    K&R's Λ vanish because Σ is linear in γ.
    """
    require_iid_residuals(m, "Kenward-Roger's method", "pbkrtest")
    if not m.reml:
        raise ValueError("Kenward-Roger's method needs a REML fit (as lmerTest and pbkrtest); "
                         "refit with reml=True")
    P, Q, K = _kr_pieces(m, _components(m))
    Phi, k = m.vcov.to_numpy(), len(P)
    # twice the expected information: tr(𝒫G_i𝒫G_j), 𝒫 = Σ⁻¹ − Σ⁻¹XΦXᵀΣ⁻¹ (pbkrtest's IE2)
    IE2 = np.array([[K[i, j] - 2 * np.sum(Phi * Q[i, j]) + np.sum((Phi @ P[i]) * (P[j] @ Phi))
                     for j in range(k)] for i in range(k)])
    singular = np.min(np.abs(np.linalg.eigvalsh(IE2))) <= 1e-10
    W = 2 * (np.linalg.pinv(IE2) if singular else np.linalg.inv(IE2))
    Lam = sum(W[i, j] * (Q[i, j] - P[i] @ Phi @ P[j]) for i in range(k) for j in range(k))
    return KenwardRoger(Phi, Phi + 2 * Phi @ Lam @ Phi, P, W)


# ------------------------------------------------------------- t tests


def contest1d(m, L, ddf: str = "Satterthwaite", *, method=None) -> dict:
    """Estimate, standard error, df, t value and p value of the contrast Lᵀβ (lmerTest's ``contest1D``).

    ``method`` may be a precomputed :func:`satterthwaite` or :func:`kenward_roger`
    result, to test many contrasts of one model.
    """
    L = np.asarray(L, dtype=float)
    method = method or _method(m, ddf)
    est = float(L @ m.solution.beta)
    se = np.sqrt(method.variance(L))
    df = method.ddf(L)
    t = est / se
    import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
    return {"Estimate": est, "Std. Error": se, "df": df, "t value": t,
            "Pr(>|t|)": 2 * scipy.stats.t.sf(abs(t), df)}


def _method(m, ddf: str):
    if ddf == "Satterthwaite":
        return satterthwaite(m)
    if ddf in ("Kenward-Roger", "KR"):
        return kenward_roger(m)
    raise ValueError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', got {ddf!r}")


def coef_table(m, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """The fixed-effects table of lmerTest's ``summary(m, ddf=...)``: a t test per coefficient.

    Kenward-Roger reports the adjusted standard errors √diag(Φ_A), as lmerTest
    does, so its t values differ slightly from Satterthwaite's.
    """
    method = _method(m, ddf)
    rows = [contest1d(m, L, method=method) for L in np.eye(m.frame.p)]
    return pd.DataFrame(rows, index=list(m.frame.x_names),
                        columns=["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"])
