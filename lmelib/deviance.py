"""The profiled deviance as a pure function of θ (Bates et al. 2015, section 3).

For given θ, penalized least squares (PLS) solves for the conditional modes u
and the fixed effects β at once through the Cholesky factor of

        ⎡ ΛᵀZᵀZΛ + I   ΛᵀZᵀX   ΛᵀZᵀy ⎤
    A = ⎢   XᵀZΛ        XᵀX     Xᵀy  ⎥ = L Lᵀ,
        ⎣   yᵀZΛ        yᵀX     yᵀy  ⎦

whose last diagonal element is √r²θ, the penalized residual sum of squares
(eqn. 21).  Everything in A except Λθ is a cross-product of [Z X y], computed
once here, so one evaluation does no work proportional to the number of rows.

The factor is blocked as in MixedModels.jl: the first random-effects term (the
one with most levels) gives a block-diagonal block L11 with one small ℓ × ℓ
Cholesky factor per level; the remaining terms, X and y form a dense block
(index R below):

    L11 = chol(λᵀ A11_g λ + I) per level g,
    L21 = Λ_Rᵀ A_R1 Λ1 L11⁻ᵀ            (sparse),
    L22 = chol(Λ_Rᵀ A_RR Λ_R + I_z − L21 L21ᵀ).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .covariance import lambda_of, theta_lower, theta_slices, theta_start
from .design import ModelFrame

__all__ = ["CrossProducts", "PLSSolution", "ProfiledDeviance", "objective"]

LOG_2PI = np.log(2 * np.pi)


def objective(ldL2: float, ldRX2: float, pwrss: float, n: int, p: int, reml: bool) -> float:
    """ML deviance (eqn. 34) or REML criterion (eqn. 41) from the PLS pieces."""
    if reml:
        nmp = n - p
        return ldL2 + ldRX2 + nmp * (1.0 + LOG_2PI + np.log(pwrss / nmp))
    return ldL2 + n * (1.0 + LOG_2PI + np.log(pwrss / n))


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
    AR1: sp.csr_array | np.ndarray  # r × q1: [Z_rest X y]ᵀ Z1 (dense for a single term)
    ARR: np.ndarray  # r × r: [Z_rest X y]ᵀ [Z_rest X y]
    rest: tuple[tuple[int, int, int, int], ...]  # (term index, offset, ℓ, levels) in R
    q_rest: int

    @classmethod
    def of(cls, frame: ModelFrame, sqrtw: np.ndarray | None = None,
           transform: sp.sparray | None = None) -> "CrossProducts":
        X, y = frame.X, frame.y
        if sqrtw is not None:
            X, y = X * sqrtw[:, None], y * sqrtw
        if transform is None and len(frame.terms) == 1:
            return cls._single_term(frame, X, y, sqrtw)
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
        offsets = np.cumsum([0] + [frame.terms[k].q for k in others])
        rest = tuple((k, int(o), frame.terms[k].ell, frame.terms[k].n_levels)
                     for k, o in zip(others, offsets))
        ell1 = first.ell if blocked else 1
        return cls(
            n=frame.n,
            p=frame.p,
            ell1=ell1,
            m1=first.n_levels if blocked else 0,
            A11=A11 if blocked else np.zeros((0, 1, 1)),
            AR1=sp.csr_array(R.T @ Zs[0]) if blocked else sp.csr_array((R.shape[1], 0)),
            ARR=(R.T @ R).toarray(),
            rest=rest,
            q_rest=int(offsets[-1]),
        )


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


def _rows(Z: sp.sparray, sqrtw, transform) -> sp.csc_array:
    if sqrtw is not None:
        Z = sp.diags_array(sqrtw) @ Z
    if transform is not None:
        Z = transform @ Z
    return sp.csc_array(Z)


def _diagonal_blocks(codes, values, m, sqrtw) -> np.ndarray:
    """Z1ᵀZ1 as m blocks of ℓ × ℓ, from the level codes and the term's columns."""
    v = values if sqrtw is None else values * sqrtw[:, None]
    ell = v.shape[1]
    pairs = v[:, :, None] * v[:, None, :]
    A = [np.bincount(codes, weights=pairs[:, a, b], minlength=m) for a in range(ell) for b in range(ell)]
    return np.stack(A, axis=1).reshape(m, ell, ell)


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

    @property
    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares r²θ (eqn. 21)."""
        return float(self.L22[-1, -1] ** 2)

    @property
    def ldL2(self) -> float:
        """log |Lθ|² of the random-effects block (eqn. 34)."""
        d11 = np.diagonal(self.L11, axis1=1, axis2=2)
        d22 = np.diag(self.L22)[: self.q_rest]
        return 2.0 * (np.log(d11).sum() + np.log(d22).sum())

    @property
    def ldRX2(self) -> float:
        """log |R_X|², the REML correction (eqn. 41)."""
        q = self.q_rest
        return 2.0 * np.log(np.diag(self.L22)[q : q + self.p]).sum()

    @property
    def RX(self) -> np.ndarray:
        """R_X = L_XXᵀ, with R_Xᵀ R_X the Schur complement behind vcov(β)."""
        q = self.q_rest
        return self.L22[q : q + self.p, q : q + self.p].T

    @cached_property
    def _solution(self) -> tuple[np.ndarray, np.ndarray]:
        # back-substitution in Lᵀ [u; β] = (last row of L): eqns. 22-23
        L22 = self.L22[:-1, :-1]
        w = scipy.linalg.solve_triangular(L22, self.L22[-1, :-1], lower=True, trans="T")
        L21 = dense(self.L21)
        c1 = L21[-1, :] - L21[:-1, :].T @ w
        m1, ell1, _ = self.L11.shape
        u1 = np.linalg.solve(
            np.swapaxes(self.L11, 1, 2), c1.reshape(m1, ell1, 1)
        ).reshape(m1, ell1)
        return w, u1

    @property
    def beta(self) -> np.ndarray:
        w, _ = self._solution
        return w[self.q_rest :]

    @property
    def u(self) -> np.ndarray:
        """Spherical random effects u, in Z's column order (term by term)."""
        w, u1 = self._solution
        return np.concatenate([u1.ravel(), w[: self.q_rest]])


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
        self.cp = CrossProducts.of(frame) if cp is None else cp
        ells = [t.ell for t in frame.terms]
        self.theta_slices = tuple(theta_slices(ells))
        self.lower = np.concatenate([theta_lower(e) for e in ells])
        self.start = np.concatenate([theta_start(e) for e in ells])
        self._lamR = self._lambda_rest_pattern()

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """The ℓ × ℓ factor λ of each term at θ."""
        return [lambda_of(theta[s], t.ell) for s, t in zip(self.theta_slices, self.frame.terms)]

    def _lambda_rest_pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
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

    def _lambda_rest(self, theta: np.ndarray) -> sp.csr_array:
        # Λ_R: block diagonal, one λ per level of each other term, then I for [X y]
        indices, indptr, src, shape = self._lamR
        data = np.where(src >= 0, theta[np.maximum(src, 0)], 1.0)
        return sp.csr_array((data, indices, indptr), shape=shape)

    def solve(self, theta: np.ndarray) -> PLSSolution:
        """Factor A at θ (the blocked Cholesky of the module docstring)."""
        theta = np.asarray(theta, dtype=float)
        cp = self.cp
        lams = self.lambdas(theta)
        lam1 = lams[0] if cp.m1 else np.zeros((1, 1))
        # Step I: L11 per level, chol(λᵀ A11_g λ + I)
        M11 = lam1.T @ cp.A11 @ lam1 + np.eye(cp.ell1)
        L11 = np.linalg.cholesky(M11)
        # Step II: L21 = Λ_Rᵀ A_R1 (block-diag of λ L11_g⁻ᵀ)
        inv = np.linalg.inv(L11)  # lower triangular inverses, m1 × ℓ × ℓ
        D = lam1 @ np.swapaxes(inv, 1, 2)
        if isinstance(cp.AR1, np.ndarray):  # one term: dense, level by level
            r = cp.AR1.shape[0]
            L21 = np.einsum("rgk,gkl->rgl", cp.AR1.reshape(r, cp.m1, cp.ell1), D).reshape(r, -1)
            S = cp.ARR - L21 @ L21.T
        else:
            Dsp = sp.bsr_array(
                (D, np.arange(cp.m1), np.arange(cp.m1 + 1)), shape=(cp.m1 * cp.ell1,) * 2
            )
            lamR = self._lambda_rest(theta)
            L21 = sp.csr_array(lamR.T @ (cp.AR1 @ Dsp))
            # Step III: the Schur complement and its dense Cholesky factor L22
            S = (lamR.T @ (lamR.T @ cp.ARR).T).T if cp.q_rest else cp.ARR.copy()
            S = np.asarray(S)
            S -= (L21 @ L21.T).toarray()
        S[np.arange(cp.q_rest), np.arange(cp.q_rest)] += 1.0
        try:
            L22 = scipy.linalg.cholesky(S, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            # only the y pivot can vanish: a perfect fit leaves r² = 0
            raise FloatingPointError(
                f"the penalized least-squares system is not positive definite at theta={theta}"
            ) from None
        return PLSSolution(theta, L11, L21, L22, cp.q_rest, cp.p)

    def __call__(self, theta: np.ndarray) -> float:
        sol = self.solve(theta)
        return objective(sol.ldL2, sol.ldRX2, sol.pwrss, self.cp.n, self.cp.p, self.reml)
