"""The gradient of the profiled deviance (or REML criterion) with respect to θ.

With β and σ profiled out, the ML deviance (Bates et al. 2015, eqn. 34) and the
REML criterion (eqn. 41) are

    d(θ) = log|B| + n′ (1 + log(2π r²θ / n′)),

where n′ = n (ML) or n − p (REML), and B is the leading block of the
augmented matrix of deviance.py whose log determinant the criterion holds:
B = ΛθᵀZᵀZΛθ + I (q × q, log|B| = log|Lθ|², eqn. 34) for ML and, for REML,
the leading q + p block

        ⎡ ΛθᵀZᵀZΛθ + I   ΛθᵀZᵀX ⎤
    B = ⎣   XᵀZΛθ          XᵀX   ⎦,   log|B| = log|Lθ|² + log|R_X|²,

since R_XᵀR_X is B's Schur complement (eqn. 50).  Write B = Λ̃ᵀ M Λ̃ + D
with M = [Z X]ᵀ[Z X], Λ̃ = diag(Λθ, I_p) and D = diag(I_q, 0).  Then

    ∂ log|B| / ∂θ_k = 2 tr(B⁻¹ Λ̃ᵀ M ∂Λ̃/∂θ_k),                        (1)

and, since r²θ is a minimum over u and β (eqn. 14), by the envelope theorem

    ∂ r²θ / ∂θ_k = −2 (y − ZΛθu − Xβ)ᵀ Z (∂Λθ/∂θ_k) u.                 (2)

θ_k is the element (i, j) of one term's λ, so ∂Λθ/∂θ_k has a 1 at row (g, i),
column (g, j) of every level g of that term: (1) is 2 Σ_g P[(g,j), (g,i)]
with P = B⁻¹Λ̃ᵀM, and (2) is −2 Σ_g v_g[i] u_g[j] with v = Zᵀ(y − ZΛθu − Xβ),
a cross-product of [Z X y] (no rows are read).  Only P's diagonal ℓ × ℓ
blocks are needed, and with them only B⁻¹ on the pattern of M (a selected
inverse).  From the blocked factor of deviance.py, restricted to B's rows
(s of the dense block: q_rest for ML, q_rest + p for REML; L22's later rows
hold y),

    B⁻¹ = L_B⁻ᵀ L_B⁻¹,   (B⁻¹)_RR = V = L22⁻ᵀ L22⁻¹,   (B⁻¹)_R1 = −V W,
    (B⁻¹)_11 = blockdiag(A_g⁻¹) + WᵀVW,   W = L21 L11⁻¹ = U blockdiag(λ A_g⁻¹),

where U = Λ_Rᵀ A_R1 and A_g = L11_g L11_gᵀ = λᵀ A11_g λ + I.  Multiplying out
P = B⁻¹Λ̃ᵀM block by block,

    P_11 = blockdiag(A_g⁻¹ λᵀ A11_g) + Wᵀ V F,   F = −U blockdiag(G_g),  G_g = I − λ A_g⁻¹ λᵀ A11_g,
    P_RR = V C,   C = Λ_Rᵀ A_RR − U blockdiag(λ A_g⁻¹ λᵀ) A_R1ᵀ.

Only sums over levels enter the gradient, and V enters through T = L22⁻¹
(V = TᵀT, LAPACK's dtrtri, as costly as L22's factorisation):

* first term: Σ_g (WᵀVF)_gg = −Σ_g (λA_g⁻¹)ᵀ K_g G_g with K_g = (TU_g)ᵀ(TU_g),
  one product of T with the sparse U;
* a term of the dense block with λ invertible: P Λ̃ = B⁻¹(B − D) = I − B⁻¹D
  gives P_gg = (I − V_gg) λ⁻¹, from V's diagonal blocks alone;
* one with λ singular or nearly so (smallest singular value below INVERTIBLE,
  where I − V_gg loses digits): V C from C's columns of that term.

Away from that shortcut nothing divides by λ, so the gradient is exact at a
singular λ (a variance at its bound 0) as well.  On InstEval (q1 = 2972,
1153 dense rows) the gradient costs about 1.3 evaluations.

The formulas use only the cross-products, so they hold for any
``CrossProducts`` a ``ProfiledDeviance`` is made with (weighted or
transformed rows), but not for a GLMM's Laplace deviance, whose weights change
with θ, nor for an error structure's (θ, ψ) (structured.py).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp

from .deviance import CrossProducts, PLSSolution, ProfiledDeviance, dense, lambda_rest_t, objective

__all__ = ["gradient", "objective_and_gradient"]

INVERTIBLE = 1e-4  # smallest singular value of λ from which a dense-block term uses P_gg λ = I − V_gg
LEVEL_CHUNK = 4_000_000  # entries of the dense T U formed at a time


def objective_and_gradient(dev: ProfiledDeviance, theta: np.ndarray) -> tuple[float, np.ndarray]:
    """``dev(θ)`` and its gradient with respect to θ, from one factorisation."""
    theta = np.asarray(theta, dtype=float)
    sol, cp = dev.solve(theta), dev.cp
    lams = dev.lambdas(theta)
    n_eff = cp.n - cp.p if dev.reml else cp.n
    s = cp.q_rest + (cp.p if dev.reml else 0)  # rows of L22 inside B
    U = _rest_t_AR1(dev, theta, lams, s) if cp.m1 else None  # Λ_Rᵀ A_R1
    traces = _log_det_terms(cp, sol, lams, s, U)  # Σ_g P_gg per term, eqn. (1)
    products = _residual_terms(cp, sol, lams)  # Σ_g v_g u_gᵀ per term, eqn. (2)
    grad = np.empty(len(theta))
    for k, sl in enumerate(dev.theta_slices):
        cols, rows = np.triu_indices(lams[k].shape[0])  # λ's lower triangle in θ's order (covariance.py)
        G = 2.0 * traces[k].T - (2.0 * n_eff / sol.pwrss) * products[k]
        grad[sl] = G[rows, cols]
    f = objective(sol.ldL2, sol.ldRX2, sol.pwrss, cp.n, cp.p, dev.reml)
    return f, grad


def gradient(dev: ProfiledDeviance, theta: np.ndarray) -> np.ndarray:
    """∂ dev(θ) / ∂θ: the ML deviance's or REML criterion's gradient (module docstring)."""
    return objective_and_gradient(dev, theta)[1]


# ------------------------------------------------------------ eqn. (1): log|B|


def _log_det_terms(cp: CrossProducts, sol: PLSSolution, lams: list[np.ndarray], s: int, U) -> dict:
    """Σ_g P_gg (ℓ × ℓ) for each term, P = B⁻¹Λ̃ᵀM, by term index (U = Λ_Rᵀ A_R1 on B's rows)."""
    T = _leading_inverse_factor(sol.L22, s)  # V = TᵀT
    AR1 = cp.AR1[:s]
    out, first = {}, None
    if cp.m1:
        first = _FirstTerm(cp, sol.L11, lams[0])
        K = _level_grams(T, U, cp.m1, cp.ell1)  # U_gᵀ V U_g
        # P_11 = blockdiag(A_g⁻¹λᵀA11_g) + WᵀVF, with W_g = U_g λA_g⁻¹ and F_g = −U_g G_g
        out[0] = first.base - np.einsum("gba,gbc,gcd->ad", first.lam_Ainv, K, first.G)
    for k, offset, ell, m in cp.rest:
        block = slice(offset, offset + m * ell)
        smallest = abs(lams[k][0, 0]) if ell == 1 else np.linalg.svd(lams[k], compute_uv=False).min()
        if smallest >= INVERTIBLE:
            out[k] = _through_inverse(T[:, block], lams[k], m)
        else:
            C = lambda_rest_t(cp.rest, lams, cp.ARR[:s, block])  # P_RR = V C, C = Λ_Rᵀ A_RR − U blockdiag(λA_g⁻¹λᵀ) A_R1ᵀ
            if first is not None:
                C = C - dense(first.times(U, first.H) @ AR1[block].T)
            out[k] = _block_sums(T[:, block], T @ C, m, ell)
    return out


def _through_inverse(T_t: np.ndarray, lam: np.ndarray, m: int) -> np.ndarray:
    """Σ_g P_gg for a term of the dense block whose λ is invertible: P Λ̃ = B⁻¹(B − D) = I − B⁻¹D,
    so P_gg λ = I − V_gg and only V's diagonal blocks are needed (no product with C)."""
    ell = lam.shape[0]
    V_sum = _block_sums(T_t, T_t, m, ell)  # Σ_g V_gg
    # (mI − Σ_g V_gg) λ⁻¹, the first factor symmetric
    return scipy.linalg.solve_triangular(lam, m * np.eye(ell) - V_sum, lower=True, trans="T").T


def _leading_inverse_factor(L22: np.ndarray, s: int) -> np.ndarray:
    """T = L⁻¹ for L the leading s × s block of L22 (LAPACK's dtrtri): V = (L Lᵀ)⁻¹ = TᵀT."""
    if s == 0:
        return np.zeros((0, 0))
    T, info = scipy.linalg.lapack.dtrtri(L22[:s, :s], lower=1)
    if info != 0:
        raise FloatingPointError("the leading block of L22 is singular")
    return T


def _rest_t_AR1(dev: ProfiledDeviance, theta: np.ndarray, lams: list[np.ndarray], s: int):
    """Λ_Rᵀ A_R1 on the first s rows of the dense block: level by level for a dense A_R1, through
    the deviance's sparse Λ_R (made from its fixed pattern) for a sparse one."""
    AR1 = dev.cp.AR1[:s]
    if isinstance(AR1, np.ndarray):
        return lambda_rest_t(dev.cp.rest, lams, AR1)
    return sp.csr_array(dev.lambda_rest(theta)[:s, :s].T @ AR1)


def _block_sums(X: np.ndarray, Y: np.ndarray, m: int, ell: int) -> np.ndarray:
    """Σ_g X_gᵀ Y_g (ℓ × ℓ) for the m column blocks of two s × mℓ matrices."""
    s = X.shape[0]
    return np.einsum("jga,jgb->ab", X.reshape(s, m, ell), Y.reshape(s, m, ell))


class _FirstTerm:
    """The first term's per-level ℓ × ℓ quantities, from L11 (A_g = L11_g L11_gᵀ = λᵀA11_gλ + I)."""

    def __init__(self, cp: CrossProducts, L11: np.ndarray, lam: np.ndarray):
        self.m, self.ell = cp.m1, cp.ell1
        Linv = np.linalg.inv(L11)
        Ainv = np.swapaxes(Linv, 1, 2) @ Linv  # A_g⁻¹ = L11_g⁻ᵀ L11_g⁻¹
        self.lam_Ainv = lam @ Ainv  # W = U blockdiag(λ A_g⁻¹)
        self.H = self.lam_Ainv @ lam.T  # λ A_g⁻¹ λᵀ
        self.G = np.eye(self.ell) - self.H @ cp.A11  # F = −U blockdiag(G_g)
        self.base = (Ainv @ lam.T @ cp.A11).sum(axis=0)  # Σ_g A_g⁻¹ λᵀ A11_g

    def times(self, U, D: np.ndarray):
        """U blockdiag(D_1, ..., D_m), for U dense or sparse."""
        if isinstance(U, np.ndarray):
            r = U.shape[0]
            return np.einsum("cga,gab->cgb", U.reshape(r, self.m, self.ell), D).reshape(r, self.m * self.ell)
        Dsp = sp.bsr_array((D, np.arange(self.m), np.arange(self.m + 1)), shape=(self.m * self.ell,) * 2)
        return sp.csr_array(U @ Dsp)


def _level_grams(T: np.ndarray, U, m: int, ell: int) -> np.ndarray:
    """U_gᵀ V U_g = (TU_g)ᵀ(TU_g) for every level g (m × ℓ × ℓ), a chunk of levels at a time."""
    K = np.zeros((m, ell, ell))
    if T.size == 0:
        return K
    if not isinstance(U, np.ndarray):
        U = sp.csc_array(U)
    Tt = np.ascontiguousarray(T.T)
    chunk = max(1, LEVEL_CHUNK // (T.shape[0] * ell))
    for g in range(0, m, chunk):
        k = min(m, g + chunk) - g
        X = dense(U[:, g * ell : (g + k) * ell].T @ Tt).reshape(k, ell, -1)  # (T U_g)ᵀ
        K[g : g + k] = np.einsum("gas,gbs->gab", X, X)
    return K


# ------------------------------------------------------------ eqn. (2): r²θ


def _residual_terms(cp: CrossProducts, sol: PLSSolution, lams: list[np.ndarray]) -> dict:
    """Σ_g v_g u_gᵀ (ℓ × ℓ) for each term, v = Zᵀ(y − ZΛθu − Xβ) from the cross-products."""
    beta = sol.beta if sol.beta0 is None else sol.beta - sol.beta0  # for y − Xβ0, as cp holds it
    u = sol.u
    q1 = cp.m1 * cp.ell1
    u1 = u[:q1].reshape(cp.m1, cp.ell1)
    b1 = u1 @ lams[0].T if cp.m1 else u1  # b = Λθ u, level by level (eqn. 10)
    b_rest = np.concatenate([(u[q1 + o : q1 + o + m * ell].reshape(m, ell) @ lams[k].T).ravel()
                             for k, o, ell, m in cp.rest] + [np.zeros(0)])
    z = np.concatenate([-b_rest, -beta, [1.0]])  # [Z_rest X y] z = y − Z_rest b_rest − Xβ
    out = {}
    if cp.m1:
        v1 = (cp.AR1.T @ z).reshape(cp.m1, cp.ell1) - np.einsum("gab,gb->ga", cp.A11, b1)
        out[0] = v1.T @ u1
    v_rest = cp.ARR @ z - cp.AR1 @ b1.ravel()
    for k, o, ell, m in cp.rest:
        out[k] = v_rest[o : o + m * ell].reshape(m, ell).T @ u[q1 + o : q1 + o + m * ell].reshape(m, ell)
    return out
