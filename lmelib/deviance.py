"""The profiled deviance as a pure function of θ (Bates et al. 2015, section 3).

For given θ, penalized least squares (PLS) solves for the conditional modes u
and the fixed effects β at once through the Cholesky factor of

        ⎡ ΛᵀZᵀZΛ + I   ΛᵀZᵀX   ΛᵀZᵀy ⎤
    A = ⎢   XᵀZΛ        XᵀX     Xᵀy  ⎥ = L Lᵀ,
        ⎣   yᵀZΛ        yᵀX     yᵀy  ⎦

(eqn. 18 with y appended), whose last diagonal element is √r²θ, the minimum
penalized residual sum of squares (eqns. 14 and 19).  Everything in A except
Λθ is a cross-product of [Z X y], computed once here, so one evaluation does
no work proportional to the number of rows.

The factor is blocked as in MixedModels.jl: the first random-effects term (the
one with most levels) gives a block-diagonal block L11 with one small ℓ × ℓ
Cholesky factor per level; the remaining terms, X and y form a dense block
(index R below):

    L11 = chol(λᵀ A11_g λ + I) per level g,
    L21 = Λ_Rᵀ A_R1 Λ1 L11⁻ᵀ,
    L22 = chol(Λ_Rᵀ A_RR Λ_R + I_z − L21 L21ᵀ).

A_R1 and L21 are dense when L21 L21ᵀ is cheap to form densely (small models,
and every single-term model): one evaluation is then a handful of small
array operations.  Large crossed designs keep them sparse.

Glossary: lmelib's names and the JSS paper's (Bates et al. 2015, section 3;
equation numbers as the paper numbers them)

    ============================  ===============================================
    lmelib                        lme4 / the paper
    ============================  ===============================================
    ``lambdas(θ)``, λ per term    the blocks of Λθ, eqn. 4 (lme4 stores Λθᵀ as
                                  ``Lambdat``, filled from θ through ``Lind``)
    ``term.codes/values``         Z, one row per observation, eqns. 6-7 (lme4
                                  stores ``Zt`` = Zᵀ, eqn. 8)
    ``CrossProducts`` (A)         ZᵀZ, ZᵀX, Zᵀy, XᵀX, Xᵀy, yᵀy: lme4pureR's
                                  ``ZtWX``, ``ZtWy``, ``XtWX``, ... (lme4 forms
                                  ΛθᵀZᵀ from ``Lambdat`` and ``Zt`` at each
                                  evaluation)
    ``ProfiledDeviance.solve``    lme4's ``updateL`` and PLS steps I-II (the
                                  Cholesky factor Lθ at θ, eqn. 18, and the
                                  solution of eqns. 48-52)
    ``L11``, ``L21``, ``L22``     the blocks of Lθ (lme4's sparse Cholesky ``L``)
                                  with, in L22's last rows, R_ZXᵀ, R_Xᵀ and r²θ
    ``PLSSolution.RZX``           R_ZX (lme4's ``RZX``): Lθ R_ZX = ΛθᵀZᵀX, eqn. 49
    ``PLSSolution.RX``            R_X (lme4's ``RX``): R_XᵀR_X = XᵀX − R_ZXᵀR_ZX,
                                  eqn. 50
    ``pwrss``                     r²θ, the penalized residual sum of squares at
                                  its minimum, eqns. 14 and 19 (lme4's ``pwrss``)
    ``ldL2``, ``ldRX2``           log|Lθ|², log|R_X|² (lme4's ``ldL2``, ``ldRX2``)
    ``u``, ``b = Λθ u``           spherical and natural random effects, eqns. 10-11
    ``deviance_at_sigma``         the ML deviance at σ, β profiled, eqn. 31
    ``objective``                 the profiled deviance, eqn. 34, or REML
                                  criterion, eqn. 41 (lme4's ``devfun``)
    ``sigma``²                    σ̂² = r²θ / n, eqn. 33, or r²θ / (n − p) for
                                  REML, eqn. 40
    ============================  ===============================================
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp

from .blocksums import level_sums
from .covariance import lambdas_of, theta_bounds, theta_slices
from .schur import ScalarSchur

if TYPE_CHECKING:  # for annotations only: design.py imports this module
    from .design import ModelFrame

__all__ = ["CrossProducts", "PLSSolution", "ProfiledDeviance", "objective", "deviance_at_sigma"]

LOG_2PI = np.log(2 * np.pi)
DENSE_WORK = 5e7  # r² q1: multiply-adds of a dense L21 L21ᵀ up to which A_R1 is stored dense


def dense_rows(frame: ModelFrame) -> int:
    """Rows of L's dense block L22: the terms after the first, X and y."""
    return sum(t.q for t in frame.terms[1:]) + frame.p + 1


def deviance_at_sigma(ldL2: float, pwrss: float, n: int, sigma: float) -> float:
    """ML deviance at θ and a given σ, β profiled (eqn. 31 at β̂θ; eqn. 34 is its minimum over σ)."""
    return ldL2 + pwrss / sigma**2 + n * (LOG_2PI + 2 * np.log(sigma))


def objective(ldL2: float, ldRX2: float, pwrss: float, n: int, p: int, reml: bool) -> float:
    """ML deviance (eqn. 34) or REML criterion (eqn. 41) from the PLS pieces."""
    if reml:
        nmp = n - p
        return ldL2 + ldRX2 + nmp * (1.0 + LOG_2PI + math.log(pwrss / nmp))
    return ldL2 + n * (1.0 + LOG_2PI + math.log(pwrss / n))


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """θ-independent cross-products of [Z X y], blocked by the first term.

    With ``sqrtw`` (square roots of prior or working weights, as a GLMM's
    PIRLS uses) or a sparse n × n ``transform`` (e.g. a whitening of
    correlated errors) the rows of [Z X y] are transformed first.  When the
    transformed first term no longer has a block-diagonal ZᵀZ (a transform
    that mixes its levels), every term goes into the dense block: m1 = 0.
    """

    n: int
    p: int
    ell1: int  # columns of the first term
    m1: int  # levels of the first term (0: no block-diagonal part)
    A11: np.ndarray  # m1 × ℓ1 × ℓ1: Z1ᵀZ1, one block per level
    AR1: sp.csr_array | np.ndarray  # r × q1: [Z_rest X y]ᵀ Z1 (dense when small, see DENSE_WORK)
    ARR: np.ndarray  # r × r: [Z_rest X y]ᵀ [Z_rest X y]
    rest: tuple[tuple[int, int, int, int], ...]  # (term index, offset, ℓ, levels) in R
    q_rest: int
    beta0: np.ndarray | None = None  # y was replaced by y − Xβ0 (see ``of``); β is β0 + the PLS solution
    # ARR already less L21 L21ᵀ at Λ_R = I (an observation-level first term absorbed into the
    # weights, pirls.WeightedProducts): step III then only scales it
    absorbed: bool = False

    @classmethod
    def of(cls, frame: ModelFrame, sqrtw: np.ndarray | None = None,
           transform: sp.sparray | None = None, center_y: bool = False) -> "CrossProducts":
        """The blocks for ``frame``; ``center_y`` replaces y by its least-squares residual on X.

        The profiled deviance, u and σ do not change when y is replaced by y − Xβ0 (β shifts
        by β0), but r²θ = yᵀy − … then loses far fewer digits to cancellation: the objective is
        accurate to rounding in r²θ rather than in yᵀy, which is what lets the optimum be found
        to the same digits on every machine.
        """
        X, y = frame.X, frame.y
        beta0 = None
        if center_y and frame.p:
            beta0 = ols(X, y)
            y = y - X @ beta0
        if sqrtw is not None:
            X, y = X * sqrtw[:, None], y * sqrtw
        if transform is None and len(frame.terms) == 1:
            return dataclasses.replace(cls._single_term(frame, X, y, sqrtw), beta0=beta0)
        if transform is not None:
            X, y = transform @ X, transform @ y
        Zs = [_rows(t.Z(), sqrtw, transform) for t in frame.terms]
        first = frame.terms[0]
        if transform is None:
            A11 = _diagonal_blocks(first.codes, first.values, first.n_levels, sqrtw)
        else:
            A11 = _block_diagonal_or_none(Zs[0], first.ell)
        blocked = A11 is not None
        others = list(range(1 if blocked else 0, len(frame.terms)))
        R = sp.hstack([Zs[k] for k in others] + [sp.csc_array(X), sp.csc_array(y[:, None])],
                      format="csc")
        AR1 = sp.csr_array(R.T @ Zs[0]) if blocked else sp.csr_array((R.shape[1], 0))
        return cls._blocked(frame, blocked, A11, AR1, (R.T @ R).toarray(), beta0)

    @classmethod
    def _blocked(cls, frame: ModelFrame, blocked: bool, A11, AR1, ARR, beta0=None) -> "CrossProducts":
        """Assemble the blocks: the first term apart when ``blocked``, the rest in R."""
        others = range(1 if blocked else 0, len(frame.terms))
        offsets = np.cumsum([0] + [frame.terms[k].q for k in others])
        dense_ar1 = AR1.shape[0] ** 2 * AR1.shape[1] <= DENSE_WORK
        if dense_ar1 != isinstance(AR1, np.ndarray):
            AR1 = AR1.toarray() if dense_ar1 else sp.csr_array(AR1)
        first = frame.terms[0]
        return cls(
            n=frame.n,
            p=frame.p,
            ell1=first.ell if blocked else 1,
            m1=first.n_levels if blocked else 0,
            A11=A11 if blocked else np.zeros((0, 1, 1)),
            AR1=AR1,
            ARR=ARR,
            rest=tuple((k, int(o), frame.terms[k].ell, frame.terms[k].n_levels)
                       for k, o in zip(others, offsets)),
            q_rest=int(offsets[-1]),
            beta0=beta0,
        )

    @classmethod
    def from_gram(cls, frame: ModelFrame, A: np.ndarray, beta0: np.ndarray | None = None) -> "CrossProducts":
        """From the full Gram matrix A = MᵀM of a (transformed) M = [Z X y], columns in that order.

        The first term's block is block diagonal when the transform keeps each row within
        one of its levels (its other entries are then exact zeros); otherwise m1 = 0.
        """
        first = frame.terms[0]
        q1, ell, m = first.q, first.ell, first.n_levels
        B = A[:q1, :q1].reshape(m, ell, m, ell).transpose(0, 2, 1, 3)  # level × level × ℓ × ℓ
        diag = B[np.arange(m), np.arange(m)].copy()
        blocked = np.count_nonzero(B) == np.count_nonzero(diag)
        split = q1 if blocked else 0
        return cls._blocked(frame, blocked, diag, A[split:, :split], A[split:, split:].copy(), beta0)

    @classmethod
    def _single_term(cls, frame: ModelFrame, X, y, sqrtw) -> "CrossProducts":
        """One random-effects term: every block by bincount over its levels, no sparse algebra."""
        term = frame.terms[0]
        v = term.values if sqrtw is None else term.values * sqrtw[:, None]
        R = np.column_stack([X, y])
        m, ell = term.n_levels, term.ell
        AR1 = np.stack([np.bincount(term.codes, weights=R[:, c] * v[:, k], minlength=m)
                        for c in range(R.shape[1]) for k in range(ell)])
        return cls(n=frame.n, p=frame.p, ell1=ell, m1=m,
                   A11=_diagonal_blocks(term.codes, term.values, m, sqrtw),
                   AR1=AR1.reshape(R.shape[1], ell, m).transpose(0, 2, 1).reshape(R.shape[1], m * ell),
                   ARR=R.T @ R, rest=(), q_rest=0)


def ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of y on X (through QR, accurate for ill-conditioned X)."""
    return np.linalg.lstsq(X, y, rcond=None)[0]


def _chol_and_inverse(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factors of m stacked ℓ × ℓ blocks and their inverses (closed form for ℓ ≤ 2)."""
    m, ell, _ = M.shape
    if ell == 1:
        L = np.sqrt(M)
        return L, 1.0 / L
    if ell > 2:
        L = np.linalg.cholesky(M)
        return L, np.linalg.inv(L)
    Mt = M.reshape(m, 4).T  # rows: M00, M01, M10, M11 of every level
    L, inv = np.zeros((4, m)), np.zeros((4, m))
    L[0] = np.sqrt(Mt[0])
    inv[0] = 1.0 / L[0]
    L[2] = Mt[2] * inv[0]
    L[3] = np.sqrt(Mt[3] - L[2] * L[2])
    inv[3] = 1.0 / L[3]
    inv[2] = -L[2] * inv[0] * inv[3]
    return L.T.reshape(m, 2, 2), inv.T.reshape(m, 2, 2)


def _congruence(lam: np.ndarray, A: np.ndarray) -> np.ndarray:
    """λᵀ A_g λ for m stacked ℓ × ℓ blocks A_g, as one product with λ ⊗ λ."""
    m, ell, _ = A.shape
    kron = (lam[:, None, :, None] * lam[None, :, None, :]).reshape(ell * ell, ell * ell)
    return (A.reshape(m, ell * ell) @ kron).reshape(m, ell, ell)


def _times_blocks(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """A @ blockdiag(D_1, ..., D_m) for a dense r × mℓ matrix A and D of shape m × ℓ × ℓ."""
    m, ell, _ = D.shape
    if ell == 1:
        return A * D[:, 0, 0]
    A3 = A.reshape(A.shape[0], m, ell)
    out = A3[:, :, :1] * D[None, :, 0, :]
    for k in range(1, ell):
        out = out + A3[:, :, k : k + 1] * D[None, :, k, :]
    return out.reshape(A.shape[0], m * ell)


def _rows(Z: sp.sparray, sqrtw, transform) -> sp.csc_array:
    if sqrtw is not None:
        Z = sp.diags_array(sqrtw) @ Z
    if transform is not None:
        Z = transform @ Z
    return sp.csc_array(Z)


def _diagonal_blocks(codes, values, m, sqrtw) -> np.ndarray:
    """Z1ᵀZ1 as m blocks of ℓ × ℓ, from the level codes and the term's columns."""
    v = values if sqrtw is None else values * sqrtw[:, None]
    return level_sums(codes, v, v, m)


def _block_diagonal_or_none(Z1: sp.csc_array, ell: int) -> np.ndarray | None:
    """Z1ᵀZ1's ℓ × ℓ diagonal blocks, or None if it has entries outside them."""
    A = sp.coo_array(Z1.T @ Z1)
    if np.any(A.row // ell != A.col // ell):
        return None
    m = Z1.shape[1] // ell
    out = np.zeros((m, ell, ell))
    np.add.at(out, (A.row // ell, A.row % ell, A.col % ell), A.data)
    return out


@dataclass(frozen=True, eq=False)
class PLSSolution:
    """The blocked Cholesky factor at θ and the PLS solution it gives."""

    theta: np.ndarray
    L11: np.ndarray  # m1 × ℓ1 × ℓ1
    L21: sp.csr_array | np.ndarray  # r × q1
    L22: np.ndarray  # r × r
    q_rest: int
    p: int
    beta0: np.ndarray | None = None  # β = β0 + the solution for y − Xβ0 (CrossProducts.of)

    @property
    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares at its minimum, r²θ (eqns. 14 and 19)."""
        return float(self.L22[-1, -1] ** 2)

    @cached_property
    def _log_diag22(self) -> np.ndarray:
        return np.log(self.L22.diagonal())

    @property
    def ldL2(self) -> float:
        """log |Lθ|² of the random-effects block (eqn. 34)."""
        d11 = self.L11 if self.L11.shape[1] == 1 else np.diagonal(self.L11, axis1=1, axis2=2)
        return 2.0 * float(np.log(d11).sum() + self._log_diag22[: self.q_rest].sum())

    @property
    def ldRX2(self) -> float:
        """log |R_X|², the REML correction (eqn. 41)."""
        q = self.q_rest
        return 2.0 * self._log_diag22[q : q + self.p].sum()

    @property
    def RX(self) -> np.ndarray:
        """R_X = L_XXᵀ, with R_Xᵀ R_X the Schur complement behind vcov(β) (eqn. 50)."""
        q = self.q_rest
        return self.L22[q : q + self.p, q : q + self.p].T

    @property
    def RZX(self) -> np.ndarray:
        """R_ZX (q × p), with Lθ R_ZX = ΛθᵀZᵀX (eqn. 49): the X rows of L below the random-effects columns."""
        q, p = self.q_rest, self.p
        L21x = self.L21[q : q + p]
        L21x = L21x.toarray() if sp.issparse(L21x) else np.asarray(L21x)
        return np.vstack([L21x.T, self.L22[q : q + p, :q].T])

    @cached_property
    def _solution(self) -> tuple[np.ndarray, np.ndarray]:
        # back-substitution in Lᵀ [u; β] = (last row of L): β̂ and then u, eqns. 51-52
        L22 = self.L22[:-1, :-1]
        w = scipy.linalg.solve_triangular(L22, self.L22[-1, :-1], lower=True, trans="T", check_finite=False)
        L21 = dense(self.L21)
        c1 = L21[-1, :] - L21[:-1, :].T @ w
        m1, ell1, _ = self.L11.shape
        if ell1 == 1:
            return w, (c1 / self.L11[:, 0, 0]).reshape(m1, 1)
        u1 = np.linalg.solve(
            np.swapaxes(self.L11, 1, 2), c1.reshape(m1, ell1, 1)
        ).reshape(m1, ell1)
        return w, u1

    @property
    def beta(self) -> np.ndarray:
        w, _ = self._solution
        beta = w[self.q_rest :]
        return beta if self.beta0 is None else beta + self.beta0

    @property
    def u(self) -> np.ndarray:
        """Spherical random effects u, in Z's column order (term by term)."""
        w, u1 = self._solution
        return np.concatenate([u1.ravel(), w[: self.q_rest]])


def _scalar_rows(cp: CrossProducts) -> np.ndarray | None:
    """Row of each stored entry of a sparse A_R1 when every term is scalar (else None)."""
    if isinstance(cp.AR1, np.ndarray) or cp.ell1 != 1 or any(ell != 1 for _, _, ell, _ in cp.rest):
        return None
    return np.repeat(np.arange(cp.AR1.shape[0]), np.diff(cp.AR1.indptr))


def lambda_rest_t(rest, lams: list[np.ndarray], M: np.ndarray) -> np.ndarray:
    """Λ_Rᵀ M for a dense M whose first rows are the dense block's random effects (``rest`` as in
    CrossProducts), level by level (Λ_R is block diagonal, then I for [X y]); a new array."""
    out = M.copy()
    for k, offset, ell, m in rest:
        rows = slice(offset, offset + m * ell)
        if ell == 1:
            out[rows] *= lams[k][0, 0]
        else:
            out[rows] = (lams[k].T @ M[rows].reshape(m, ell, -1)).reshape(m * ell, -1)
    return out


def _row_scale(cp: CrossProducts, lams: list[np.ndarray]) -> np.ndarray:
    """The diagonal of Λ_R when every other term is scalar: λ of each level's term, 1 for [X y]."""
    scale = np.ones(cp.ARR.shape[0])
    for k, offset, _, m in cp.rest:
        scale[offset : offset + m] = lams[k][0, 0]
    return scale


def dense(a) -> np.ndarray:
    """A block of L as an ndarray, whether it is stored dense or sparse."""
    return a if isinstance(a, np.ndarray) else a.toarray()


class ProfiledDeviance:
    """``f(θ) -> float``: the ML deviance or REML criterion, profiled over β and σ.

    Calling it changes nothing: the same θ always gives the same value (the
    cross-products are computed once, when the function is made).
    """

    def __init__(self, frame: ModelFrame, reml: bool = True, cp: CrossProducts | None = None):
        self.frame = frame
        self.reml = bool(reml)
        self.cp = frame.cross_products if cp is None else cp
        ells = [t.ell for t in frame.terms]
        self.theta_slices = tuple(theta_slices(ells))
        self._ells = ells
        self.start, self.lower = theta_bounds(ells)

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """The ℓ × ℓ factor λ of each term at θ."""
        return lambdas_of(theta, self._ells, self.theta_slices)

    @cached_property
    def _lamR(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
        """Λ_R's sparsity, made once (lme4's ``Lind``): for each stored value, the θ element
        it holds (−1 for the identity block of [X y])."""
        rows, cols, src = [], [], []
        for k, offset, ell, m in self.cp.rest:
            tc, tr = np.triu_indices(ell)  # column-major lower triangle, θ's order
            first = self.theta_slices[k].start
            level = offset + ell * np.arange(m)[:, None]
            rows.append((level + tr).ravel()), cols.append((level + tc).ravel())
            src.append(np.tile(first + np.arange(len(tr)), m))
        r = self.cp.q_rest + self.cp.p + 1
        diag = np.arange(self.cp.q_rest, r)
        rows.append(diag), cols.append(diag), src.append(np.full(len(diag), -1))
        rows, cols, src = (np.concatenate(a) for a in (rows, cols, src))
        order = np.lexsort((cols, rows))  # CSR order: by row, then column
        indptr = np.searchsorted(rows[order], np.arange(r + 1))
        return cols[order], indptr, src[order], (r, r)

    def lambda_rest(self, theta: np.ndarray) -> sp.csr_array:
        # Λ_R: block diagonal, one λ per level of each other term, then I for [X y]
        indices, indptr, src, shape = self._lamR
        data = np.where(src >= 0, theta[np.maximum(src, 0)], 1.0)
        return sp.csr_array((data, indices, indptr), shape=shape)

    @cached_property
    def _AR1_rows(self) -> np.ndarray | None:
        """Row of each stored entry of a sparse A_R1 when every term is scalar (else None)."""
        return _scalar_rows(self.cp)

    def _sparse_L21(self, theta: np.ndarray, lams: list[np.ndarray], D: np.ndarray,
                    cp: CrossProducts) -> sp.csr_array:
        """L21 = Λ_Rᵀ A_R1 blockdiag(D) for a sparse A_R1."""
        rows = self._AR1_rows if cp is self.cp else _scalar_rows(cp)
        if rows is not None:  # scalar terms: both factors are diagonal, so only the values change
            data = cp.AR1.data * D[:, 0, 0][cp.AR1.indices] * _row_scale(cp, lams)[rows]
            return sp.csr_array((data, cp.AR1.indices, cp.AR1.indptr), shape=cp.AR1.shape)
        Dsp = sp.bsr_array((D, np.arange(cp.m1), np.arange(cp.m1 + 1)), shape=(cp.m1 * cp.ell1,) * 2)
        return sp.csr_array(self.lambda_rest(theta).T @ (cp.AR1 @ Dsp))

    @cached_property
    def _schur(self) -> ScalarSchur | None:
        """The products behind L21 L21ᵀ when every term is scalar and A_R1 sparse (schur.py)."""
        return None if self._AR1_rows is None else ScalarSchur.of(self.cp.AR1, self.cp.A11)

    def _scalar_schur_complement(self, lams: list[np.ndarray]) -> np.ndarray:
        """Λ_R (A_RR − G(w)) Λ_R = Λ_Rᵀ A_RR Λ_R − L21 L21ᵀ on the lower triangle (schur.py)."""
        S = self.cp.ARR.copy()
        self._schur.subtract(S, float(lams[0][0, 0]), self.cp.A11)
        # Λ_R is λ_k I on the rows of term k and I on [X y]: scale block by block, one pass
        bounds = [(offset, offset + m, lams[k][0, 0]) for k, offset, _, m in self.cp.rest]
        bounds.append((self.cp.q_rest, len(S), 1.0))
        for a, (r0, r1, la) in enumerate(bounds):
            for c0, c1, lc in bounds[: a + 1]:
                if la * lc != 1.0:
                    S[r0:r1, c0:c1] *= la * lc
        return S

    def _rest_congruence(self, A: np.ndarray, lams: list[np.ndarray]) -> np.ndarray:
        """Λ_Rᵀ A Λ_R for a symmetric A, as a new array."""
        if not self.cp.rest:  # Λ_R = I: X and y only
            return A.copy()
        return self._lambda_rest_t(self._lambda_rest_t(A, lams).T, lams)

    def _lambda_rest_t(self, M: np.ndarray, lams: list[np.ndarray]) -> np.ndarray:
        return lambda_rest_t(self.cp.rest, lams, M)

    def solve(self, theta: np.ndarray, cp: CrossProducts | None = None) -> PLSSolution:
        """Factor A at θ (the blocked Cholesky of the module docstring).

        ``cp``: other values on the same pattern as this function's cross-products
        (PIRLS's weighted ones, pirls.WeightedProducts); by default its own.
        """
        theta = np.asarray(theta, dtype=float)
        cp = self.cp if cp is None else cp
        lams = self.lambdas(theta)
        lam1 = lams[0] if cp.m1 else np.zeros((1, 1))
        # Step I: L11 per level, chol(λᵀ A11_g λ + I), and D = λ L11⁻ᵀ per level
        if cp.ell1 == 1:
            L11, inv = _chol_and_inverse(lam1[0, 0] ** 2 * cp.A11 + 1.0)
        else:
            M11 = _congruence(lam1, cp.A11)
            M11.reshape(cp.m1, -1)[:, :: cp.ell1 + 1] += 1.0
            L11, inv = _chol_and_inverse(M11)
        # Step II: L21 = Λ_Rᵀ A_R1 Λ1 L11⁻ᵀ, level by level;
        # Step III: the Schur complement Λ_Rᵀ A_RR Λ_R − L21 L21ᵀ (+ I) and its factor L22
        if cp is self.cp and self._schur is not None:  # scalar terms: G(w) from fixed products
            D = lam1 * np.swapaxes(inv, 1, 2)
            L21 = self._sparse_L21(theta, lams, D, cp)
            S = self._scalar_schur_complement(lams)
        elif isinstance(cp.AR1, np.ndarray):  # dense
            S = self._rest_congruence(cp.ARR, lams)
            D = lam1[0, 0] * inv if cp.ell1 == 1 else lam1 @ np.swapaxes(inv, 1, 2)  # Λ1 L11⁻ᵀ per level
            L21 = _times_blocks(cp.AR1, D)
            if cp.rest:
                L21 = self._lambda_rest_t(L21, lams)
            if not cp.absorbed:
                S -= L21 @ L21.T
        else:
            S = self._rest_congruence(cp.ARR, lams)
            D = lam1 @ np.swapaxes(inv, 1, 2)  # Λ1 L11⁻ᵀ, block by block
            L21 = self._sparse_L21(theta, lams, D, cp)
            S -= (L21 @ L21.T).toarray()
        if cp.q_rest:
            S.flat[: cp.q_rest * (len(S) + 1) : len(S) + 1] += 1.0
        # LAPACK reads the lower triangle of S; S.T is the same matrix in Fortran order (no copy)
        U, info = scipy.linalg.lapack.dpotrf(S.T, lower=0, clean=1, overwrite_a=1)
        L22 = U.T
        if info != 0:
            # only the y pivot can vanish: a perfect fit leaves r² = 0
            raise FloatingPointError(
                f"the penalized least-squares system is not positive definite at theta={theta}")
        return PLSSolution(theta, L11, L21, L22, cp.q_rest, cp.p, cp.beta0)

    def __call__(self, theta: np.ndarray) -> float:
        sol = self.solve(theta)
        return objective(sol.ldL2, sol.ldRX2 if self.reml else 0.0, sol.pwrss, self.cp.n, self.cp.p, self.reml)
