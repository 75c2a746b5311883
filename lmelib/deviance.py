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
    """θ-independent cross-products of [Z X y], blocked by the first term."""

    n: int
    p: int
    ell1: int  # columns of the first term
    m1: int  # levels of the first term
    A11: np.ndarray  # m1 × ℓ1 × ℓ1: Z1ᵀZ1, one block per level
    AR1: sp.csr_array  # r × q1: [Z_rest X y]ᵀ Z1
    ARR: np.ndarray  # r × r: [Z_rest X y]ᵀ [Z_rest X y]
    rest: tuple[tuple[int, int, int], ...]  # (offset, ℓ, levels) of each other term in R
    q_rest: int

    @classmethod
    def of(cls, frame: ModelFrame) -> "CrossProducts":
        first, *others = frame.terms
        ell1, m1 = first.ell, first.n_levels
        pairs = first.values[:, :, None] * first.values[:, None, :]
        A11 = np.stack(
            [np.bincount(first.codes, weights=pairs[:, a, b], minlength=m1)
             for a in range(ell1) for b in range(ell1)],
            axis=1,
        ).reshape(m1, ell1, ell1)
        blocks = [t.Z() for t in others] + [sp.csc_array(frame.X), sp.csc_array(frame.y[:, None])]
        R = sp.hstack(blocks, format="csc")
        offsets = np.cumsum([0] + [t.q for t in others])
        rest = tuple((int(o), t.ell, t.n_levels) for o, t in zip(offsets, others))
        return cls(
            n=frame.n,
            p=frame.p,
            ell1=ell1,
            m1=m1,
            A11=A11,
            AR1=sp.csr_array(R.T @ first.Z()),
            ARR=(R.T @ R).toarray(),
            rest=rest,
            q_rest=int(offsets[-1]),
        )


@dataclass(frozen=True, eq=False)
class PLSSolution:
    """The blocked Cholesky factor at θ and the PLS solution it gives."""

    theta: np.ndarray
    L11: np.ndarray  # m1 × ℓ1 × ℓ1
    L21: sp.csr_array  # r × q1
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
        c1 = self.L21[[-1], :].toarray().ravel() - (self.L21[:-1, :].T @ w)
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


class ProfiledDeviance:
    """``f(θ) -> float``: the ML deviance or REML criterion, profiled over β and σ.

    Calling it changes nothing: the same θ always gives the same value (the
    cross-products are computed once, when the function is made).
    """

    def __init__(self, frame: ModelFrame, reml: bool = True):
        self.frame = frame
        self.reml = bool(reml)
        self.cp = CrossProducts.of(frame)
        ells = [t.ell for t in frame.terms]
        self.theta_slices = tuple(theta_slices(ells))
        self.lower = np.concatenate([theta_lower(e) for e in ells])
        self.start = np.concatenate([theta_start(e) for e in ells])

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """The ℓ × ℓ factor λ of each term at θ."""
        return [lambda_of(theta[s], t.ell) for s, t in zip(self.theta_slices, self.frame.terms)]

    def _lambda_rest(self, lams: list[np.ndarray]) -> sp.csr_array:
        # Λ_R: block diagonal, one λ per level of each other term, then I for [X y]
        blocks = [sp.kron(sp.eye_array(m), lam) for (_, _, m), lam in zip(self.cp.rest, lams[1:])]
        blocks.append(sp.eye_array(self.cp.p + 1))
        return sp.block_diag(blocks, format="csr")

    def solve(self, theta: np.ndarray) -> PLSSolution:
        """Factor A at θ (the blocked Cholesky of the module docstring)."""
        theta = np.asarray(theta, dtype=float)
        cp = self.cp
        lams = self.lambdas(theta)
        lam1 = lams[0]
        # Step I: L11 per level, chol(λᵀ A11_g λ + I)
        M11 = lam1.T @ cp.A11 @ lam1 + np.eye(cp.ell1)
        L11 = np.linalg.cholesky(M11)
        # Step II: L21 = Λ_Rᵀ A_R1 (block-diag of λ L11_g⁻ᵀ)
        inv = np.linalg.inv(L11)  # lower triangular inverses, m1 × ℓ × ℓ
        D = lam1 @ np.swapaxes(inv, 1, 2)
        Dsp = sp.bsr_array(
            (D, np.arange(cp.m1), np.arange(cp.m1 + 1)), shape=(cp.m1 * cp.ell1,) * 2
        )
        lamR = self._lambda_rest(lams)
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
