"""Penalized iteratively reweighted least squares (PIRLS) for a GLMM.

For given θ and β, the conditional modes û of the spherical random effects
minimise the penalized deviance (Bates et al. 2015, lme4 vignette section 6;
Bates, "lme4: mixed-effects modeling with R", ch. 6)

    −2 Σ log p(y | μ(u)) + ‖u‖²,   η = offset + Xβ + ZΛθ u,   μ = g⁻¹(η).

Each PIRLS step is one weighted penalized least-squares solve on the working
response z = η − offset + (y − μ)/μ'(η) with working weights w = a μ'(η)²/V(μ),
done by the linear model's blocked Cholesky (``ProfiledDeviance.solve``).

Only the weights change from step to step, never the sparsity pattern of
[Z X z]ᵀ W [Z X z].  ``WeightedProducts`` analyses that pattern once per fit
(which levels of two crossed terms meet, where each sum goes in the blocked
A); a step then forms the values by vectorised weighted sums over the rows
(per level for one term, per pair of levels for two crossed terms) and builds
no scipy.sparse matrix, as long as the block A_R1 is stored dense (every model
up to ``deviance.DENSE_WORK``; very large crossed designs keep it sparse).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.special as sc

from .covariance import lambda_of, lambdas_of, theta_slices
from .deviance import (DENSE_WORK, CrossProducts, PLSSolution, ProfiledDeviance, _chol_and_inverse,
                       _congruence)
from .design import ModelFrame
from .family import Family

__all__ = ["Mode", "PIRLS", "WeightedProducts", "agq_correction"]

# PIRLS stops when a Newton step is below PIRLS_STEP_TOL × (1 + max |u|): log |L|² then differs
# from its value at the exact mode by about the deviance's rounding error (see PIRLS.mode)
PIRLS_STEP_TOL = 1e-11
_EPS = np.finfo(float).eps
PIRLS_MAXIT = 50


# ------------------------------------------------------------- the weighted A


def _pairs(codes_a: np.ndarray, codes_b: np.ndarray, m_b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which (level of a, level of b) pairs occur: (pair of every row, a-level, b-level of every pair)."""
    key, inverse = np.unique(codes_a.astype(np.int64) * m_b + codes_b, return_inverse=True)
    return inverse.ravel(), key // m_b, key % m_b


ROWS_PER_CALL = 2_000_000  # group sums of several entries are concatenated up to this many rows


def _segments(index: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(index, starts): when the rows come group after group (data sorted by the grouping
    factor, as panel data usually are) the sums are ``np.add.reduceat`` over contiguous
    segments from ``starts``, many times faster than ``np.bincount``; else starts is None."""
    if len(index) and np.all(index[1:] >= index[:-1]):
        starts = np.searchsorted(index, np.arange(m))
        if np.all(np.diff(np.append(starts, len(index))) > 0):  # every group has rows
            return index, starts
    return index, None


class _GroupSums:
    """Σ_rows weight · f_j over the groups of index_j, for many entries j of A at once.

    Each entry ("job") is (index of every row, number of groups, the columns
    whose product is f_j, flat positions of its sums in the target array, their
    mirror images or None).  For small data the jobs are concatenated into few
    ``np.bincount`` calls (f_j formed once); for large data (more than
    ROWS_PER_CALL rows) each job is one call, with f_j formed on the fly so that
    no copy of the data is kept.
    """

    def __init__(self, jobs: list, n: int):
        self.n, self.stream = n, 2 * n > ROWS_PER_CALL
        self.chunks, self.dest, self.mirror, batch, rows = [], [], [], [], 0
        for job in jobs:
            if batch and rows + n > ROWS_PER_CALL:
                self._add(batch)
                batch, rows = [], 0
            batch.append(job)
            rows += n
        if batch:
            self._add(batch)
        self.dest = np.concatenate(self.dest) if self.dest else np.zeros(0, int)
        self.mirror = np.concatenate(self.mirror) if self.mirror else np.zeros(0, int)

    def _add(self, batch) -> None:
        if self.stream:  # intercept columns (all ones) need no product
            self.chunks.extend((_segments(idx, m), tuple(c for c in cols if not _ones(c)), 1, m)
                               for idx, m, cols, _, _ in batch)
        else:
            starts = np.cumsum([0] + [m for _, m, _, _, _ in batch])
            index = np.concatenate([idx + s for (idx, _, _, _, _), s in zip(batch, starts)])
            f = np.concatenate([np.prod(cols, axis=0) * np.ones(self.n) for _, _, cols, _, _ in batch])
            self.chunks.append((_segments(index, int(starts[-1])), (f,), len(batch), int(starts[-1])))
        for _, m, _, d, mi in batch:  # positions of the sums, and their mirror images (−1: none)
            self.dest.append(np.broadcast_to(d, (m,)))
            self.mirror.append(np.full(m, -1) if mi is None else np.broadcast_to(mi, (m,)))

    def into(self, out: np.ndarray, weight: np.ndarray) -> None:
        """Write the sums with row weights ``weight`` into ``out`` (flat positions)."""
        if not self.chunks:
            return
        sums = []
        for (idx, starts), cols, k, m in self.chunks:
            wf = np.tile(weight, k) if k > 1 else weight
            for c in cols:
                wf = wf * c
            sums.append(np.bincount(idx, weights=wf, minlength=m) if starts is None else np.add.reduceat(wf, starts))
        sums = np.concatenate(sums)
        flat = out.reshape(-1)
        flat[self.dest] = sums
        has = self.mirror >= 0
        flat[self.mirror[has]] = sums[has]


class WeightedProducts:
    """``of(w, z)``: the CrossProducts of [Z X z] with rows weighted by w (√w on each side).

    Columns of R (the dense part of A) are [Z_rest, X, z], as in ``CrossProducts``;
    ``with_x=False`` leaves X out (PIRLS over u alone, β fixed).  Every entry of A
    is a sum over rows of w (or w z) times a fixed product of columns, grouped by
    the level (first term), the pair of levels (two crossed terms) or not at all
    (X and z): ``_GroupSums`` holds these jobs, set up here once.
    """

    def __init__(self, frame: ModelFrame, with_x: bool):
        self.frame, self.terms = frame, frame.terms
        self.X = frame.X if with_x else np.zeros((frame.n, 0))
        t1 = self.terms[0]
        self.offsets = np.cumsum([0] + [t.q for t in self.terms[1:]]).astype(int)
        self.q_rest, self.px = int(self.offsets[-1]), self.X.shape[1]
        self.r, self.q1 = self.q_rest + self.px + 1, t1.q
        self.dense = self.r**2 * t1.q <= DENSE_WORK
        # an observation-level scalar first term ((1 | obs): one row per level) is absorbed into
        # the weights of the other blocks (``of``)
        self.absorbs = (self.dense and len(self.terms) > 1 and t1.ell == 1 and t1.n_levels == frame.n
                        and np.array_equal(np.sort(t1.codes), np.arange(frame.n)))
        self._template = CrossProducts._blocked(
            _frame_with_x(frame, self.X), True, np.zeros((t1.n_levels, t1.ell, t1.ell)),
            np.zeros((self.r, t1.q)), np.zeros((self.r, self.r)))
        if self.dense:
            self._jobs()

    # ------------------------------------------------------------ set-up

    def _jobs(self) -> None:
        """The entries of A11, A_R1 and A_RR as group sums of w or w z (the pattern, once)."""
        t1, rest, n = self.terms[0], self.terms[1:], self.frame.n
        one = np.zeros(n, dtype=np.intp)  # a single group: plain sums over the rows (X, z)
        V1, Xc = t1.values, [self.X[:, c] for c in range(self.px)]
        Rrow = [self.offsets[k] for k in range(len(rest))]
        q1, r, qr, l1 = self.q1, self.r, self.q_rest, t1.ell
        g1 = np.arange(t1.n_levels)
        a11, ar1, arr, zr1, zrr = [], [], [], [], []

        def rr(i, j):  # flat positions in A_RR and their mirror images (None on the diagonal)
            i, j = np.broadcast_arrays(np.asarray(i), np.asarray(j))
            return i * r + j, (None if np.all(i == j) else j * r + i)

        for a in range(l1):  # Z1ᵀ W Z1: per level, ℓ1 × ℓ1 blocks
            for b in range(a, l1):
                d, mi = (g1 * l1 + a) * l1 + b, (g1 * l1 + b) * l1 + a
                a11.append((t1.codes, t1.n_levels, (V1[:, a], V1[:, b]), d, None if a == b else mi))
            for c in range(self.px):  # Xᵀ W Z1: per level
                ar1.append((t1.codes, t1.n_levels, (Xc[c], V1[:, a]), (qr + c) * q1 + g1 * l1 + a, None))
            zr1.append((t1.codes, t1.n_levels, (V1[:, a],), (r - 1) * q1 + g1 * l1 + a, None))
        for k, t in enumerate(rest):
            o, g = Rrow[k], np.arange(t.n_levels)
            inv, lev_k, lev_1 = _pairs(t.codes, t1.codes, t1.n_levels)
            for a in range(t.ell):
                Va = t.values[:, a]
                for b in range(l1):  # Z_kᵀ W Z1: per pair of levels that meet
                    ar1.append((inv, len(lev_k), (Va, V1[:, b]), (o + lev_k * t.ell + a) * q1 + lev_1 * l1 + b, None))
                for b in range(a, t.ell):  # Z_kᵀ W Z_k: per level
                    arr.append((t.codes, t.n_levels, (Va, t.values[:, b]), *rr(o + g * t.ell + a, o + g * t.ell + b)))
                for c in range(self.px):
                    arr.append((t.codes, t.n_levels, (Va, Xc[c]), *rr(o + g * t.ell + a, qr + c)))
                zrr.append((t.codes, t.n_levels, (Va,), *rr(o + g * t.ell + a, r - 1)))
            for j in range(k + 1, len(rest)):  # Z_kᵀ W Z_j, two crossed terms: per pair of levels
                tj, oj = rest[j], Rrow[j]
                inv, lev_k, lev_j = _pairs(t.codes, tj.codes, tj.n_levels)
                for a in range(t.ell):
                    for b in range(tj.ell):
                        arr.append((inv, len(lev_k), (t.values[:, a], tj.values[:, b]),
                                    *rr(o + lev_k * t.ell + a, oj + lev_j * tj.ell + b)))
        for c in range(self.px):  # Xᵀ W X and Xᵀ W z: one group
            for d in range(c, self.px):
                arr.append((one, 1, (Xc[c], Xc[d]), *rr(qr + c, qr + d)))
            zrr.append((one, 1, (Xc[c],), *rr(qr + c, r - 1)))
        self._w11, self._wr1, self._wrr = (_GroupSums(j, n) for j in (a11, ar1, arr))
        self._zr1, self._zrr = _GroupSums(zr1, n), _GroupSums(zrr, n)

    # ------------------------------------------------------------ values

    def of(self, w: np.ndarray, z: np.ndarray, lam1: float | None = None) -> CrossProducts:
        """The blocks of A for weights w and response z; only values are computed.

        With ``lam1`` (λ of the first term) and an observation-level first term, A_RR comes
        less L21 L21ᵀ (at Λ_R = I): row o of [Z_rest X z] meets one level, with
        L11² = λ1² w_o v_o² + 1, so A_RR − L21 L21ᵀ is the same sum over rows with weights
        w_o − λ1² w_o² v_o² / L11² = w_o / (λ1² w_o v_o² + 1), and step III of the blocked
        Cholesky forms no product with L21 (``CrossProducts.absorbed``).
        """
        if not self.dense:  # A_R1 too large to hold dense: the sparse construction of CrossProducts
            import dataclasses

            frame = dataclasses.replace(_frame_with_x(self.frame, self.X), y=z)
            return CrossProducts.of(frame, sqrtw=np.sqrt(w))
        t1 = self.terms[0]
        A11 = np.empty((t1.n_levels, t1.ell, t1.ell))
        AR1, ARR = np.zeros((self.r, self.q1)), np.zeros((self.r, self.r))
        wz = w * z
        self._w11.into(A11, w)
        self._wr1.into(AR1, w)
        self._zr1.into(AR1, wz)
        absorbed = self.absorbs and lam1 is not None
        if absorbed:
            w = w / (lam1 * lam1 * w * t1.values[:, 0] ** 2 + 1.0)
            wz = w * z
        self._wrr.into(ARR, w)
        self._zrr.into(ARR, wz)
        ARR[-1, -1] = wz @ z
        return CrossProducts(n=self.frame.n, p=self.px, ell1=t1.ell, m1=t1.n_levels, A11=A11,
                             AR1=AR1, ARR=ARR, rest=self._template.rest, q_rest=self.q_rest,
                             absorbed=absorbed)


def _ones(column: np.ndarray) -> bool:
    """An intercept column: products with it are skipped."""
    return bool(np.all(column == 1.0))


def _frame_with_x(frame: ModelFrame, X: np.ndarray) -> ModelFrame:
    import dataclasses

    return frame if X is frame.X else dataclasses.replace(frame, X=X)


# ---------------------------------------------------- the conditional density


def _kernel(fam: Family, y, wt):
    """μ ↦ the μ-dependent part of log p(y | μ) per row; the rest is a constant of the data."""
    if fam.name == "binomial":
        k = np.round(wt * y)
        if np.all((k == 0) | (k == wt)):  # all successes or all failures in each row (binary data):
            success = k > 0  # one logarithm per row
            return lambda mu: wt * np.log(np.where(success, mu, 1.0 - mu))
        return lambda mu: sc.xlogy(k, mu) + sc.xlog1py(wt - k, -mu)
    return lambda mu: wt * (sc.xlogy(y, mu) - mu)


def _mu_eta(link, eta, mu):
    """dμ/dη; from μ itself for the logit and log links (the same values, one exp fewer)."""
    if link.name == "logit":
        return np.maximum(mu * (1.0 - mu), _EPS)
    if link.name == "log":
        return mu
    return link.mu_eta(eta)


# ------------------------------------------------------------------- PIRLS


@dataclass(frozen=True, eq=False)
class Mode:
    """The conditional mode at (θ, β) and the factor at its working weights."""

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    solution: PLSSolution
    loglik_cond: float  # Σ log p(y | μ̂)
    iterations: int

    @property
    def laplace(self) -> float:
        """−2 Σ log p(y | μ̂) + ‖û‖² + log |L|² (lme4's ``Laplace``)."""
        return -2.0 * self.loglik_cond + float(self.u @ self.u) + self.solution.ldL2


class PIRLS:
    """Penalized IRLS for one GLMM: the LMM's blocked Cholesky applied to working responses.

    Everything that does not depend on the weights is made here, once: the
    pattern of the weighted cross-products (``WeightedProducts``), the solvers,
    and the constant part of the conditional log-density.  ``iterations``
    counts the PIRLS steps made so far (all calls of ``mode``).
    """

    def __init__(self, frame: ModelFrame, fam: Family, y, prior_w, offset):
        self.frame, self.family = frame, fam
        self.y, self.prior_w, self.offset = y, prior_w, offset
        self._kernel = _kernel(fam, y, prior_w)
        mu0 = np.full(frame.n, 0.5)
        self._const = float(np.sum(fam.loglik(y, mu0, prior_w) - self._kernel(mu0)))
        self._products, self._solvers = {}, {}
        self._ells = [t.ell for t in frame.terms]
        self._slices = theta_slices(self._ells)
        self._ones = [[_ones(t.values[:, a]) for a in range(t.ell)] for t in frame.terms]
        # Newton steps (observed information) for a non-canonical link; Fisher scoring otherwise
        self._newton = fam.name == "binomial" and fam.link.curvature is not None
        self.iterations = 0

    def loglik_rows(self, mu) -> np.ndarray:
        """log p(y | μ) per row without its constant (which ``loglik`` adds)."""
        return self._kernel(mu)

    def loglik(self, mu) -> float:
        """Σ log p(y | μ)."""
        return self._const + float(self._kernel(mu).sum())

    def _setup(self, with_beta: bool) -> tuple[WeightedProducts, ProfiledDeviance]:
        if with_beta not in self._products:  # made at first use: stage 1 needs X, stage 2 not
            wp = WeightedProducts(self.frame, with_beta)
            self._products[with_beta] = wp
            self._solvers[with_beta] = ProfiledDeviance(_frame_with_x(self.frame, wp.X), False, cp=wp._template)
        return self._products[with_beta], self._solvers[with_beta]

    def lambdas(self, theta) -> list[np.ndarray]:
        return lambdas_of(theta, self._ells, self._slices)

    def Zb(self, lams, u) -> np.ndarray:
        """Z Λθ u, term by term from the level codes (b = Λθ u per level)."""
        out, start = np.zeros(self.frame.n), 0
        for lam, t, ones in zip(lams, self.frame.terms, self._ones):
            b = u[start : start + t.q].reshape(t.n_levels, t.ell) @ lam.T
            for a in range(t.ell):  # column a of the term times its effects, level by level
                out += b[:, a][t.codes] if ones[a] else t.values[:, a] * b[:, a][t.codes]
            start += t.q
        return out

    def Lambda_u(self, theta, u) -> np.ndarray:
        """b = Λθ u, in Z's column order."""
        out, start = [], 0
        for lam, t in zip(self.lambdas(theta), self.frame.terms):
            out.append((u[start : start + t.q].reshape(t.n_levels, t.ell) @ lam.T).ravel())
            start += t.q
        return np.concatenate(out)

    def _fixed(self, beta) -> np.ndarray:
        """offset + Xβ, the part of η that PIRLS over u alone keeps fixed."""
        return self.offset + self.frame.X @ beta

    def _pdev(self, lams, u, fixed) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Penalized deviance −2 Σ log p(y | μ) + ‖u‖² at u, with η, μ and Σ log p."""
        eta = fixed + self.Zb(lams, u)
        mu = self.family.link.linkinv(eta)
        ll = self.loglik(mu)
        return -2.0 * ll + float(u @ u), eta, mu, ll

    def _solve(self, theta, eta, mu, beta, with_beta: bool, fixed=None, newton: bool = False):
        """One PLS solve at the working weights and response of (η, μ).

        The working response is z = η − offset + (y − μ)/μ'(η), less Xβ when β is fixed, with
        the expected-information weights w = a μ'²/V(μ) (Fisher scoring, as lme4).  With
        ``newton`` (a binomial model with a non-canonical link) the weights are the observed
        information, w − s (μ''/μ' − μ'V'/V) with the score s = a (y − μ) μ'/V, and z uses
        s / w: Newton's method, whose steps shrink quadratically instead of linearly; where an
        observed weight is not positive the step falls back to Fisher scoring.
        Returns the factor and the new u and β.
        """
        wp, solver = self._setup(with_beta)
        d = _mu_eta(self.family.link, eta, mu)
        V = self.family.variance(mu)
        w = self.prior_w * d**2 / V
        resid = (self.y - mu) / d
        if newton:
            score = self.prior_w * (self.y - mu) * d / V
            observed = w - score * (self.family.link.curvature(eta) - d * (1.0 - 2.0 * mu) / V)
            if np.all(observed > 0) and np.all(np.isfinite(observed)):
                w, resid = observed, score / observed
        lam1 = float(theta[0]) if wp.absorbs else None  # the first term is scalar: λ1 = θ1
        if with_beta:
            sol = solver.solve(theta, cp=wp.of(w, eta - self.offset + resid, lam1))
            return sol, sol.u, sol.beta
        z = eta - (self._fixed(beta) if fixed is None else fixed) + resid
        if len(self.frame.terms) == 1:
            sol, u_new = self._solve_one_term(theta, wp, w, z)
            return sol, u_new, beta
        sol = solver.solve(theta, cp=wp.of(w, z, lam1))
        return sol, sol.u, beta


    def _solve_one_term(self, theta, wp: WeightedProducts, w, z) -> tuple[PLSSolution, np.ndarray]:
        """u alone for one term: ΛᵀZᵀWZΛ + I is block diagonal, one ℓ × ℓ system per level.

        L_i = chol(λᵀ A_i λ + I) with A_i = Z_iᵀ W Z_i (Step I of deviance.solve), then
        L_i c_i = λᵀ Z_iᵀ W z and L_iᵀ u_i = c_i (eqns. 48 and 52 without β); r²θ = zᵀWz − ‖c‖².
        """
        t = self.frame.terms[0]
        lam = lambda_of(theta, t.ell)
        cp = wp.of(w, z)
        M = lam[0, 0] ** 2 * cp.A11 + 1.0 if t.ell == 1 else _congruence(lam, cp.A11) + np.eye(t.ell)
        L, inv = _chol_and_inverse(M)
        rhs = cp.AR1[-1].reshape(t.n_levels, t.ell) @ lam  # rows λᵀ Z_iᵀ W z
        if t.ell == 1:
            c = inv[:, 0, 0] * rhs[:, 0]
            u = inv[:, 0, 0] * c
        else:
            c = np.einsum("gij,gj->gi", inv, rhs)
            u = np.einsum("gji,gj->gi", inv, c).ravel()
            c = c.ravel()
        pwrss = float(cp.ARR[-1, -1] - c @ c)
        return PLSSolution(theta, L, c[None, :], np.full((1, 1), np.sqrt(max(pwrss, 0.0))), 0, 0), u

    def mode(self, theta, beta, u0=None, with_beta=False) -> Mode:
        """PIRLS to the conditional mode from u0; ``with_beta`` updates β too (lme4's first stage).

        Each step solves at the weights of the current u.  When that solve's Newton step is
        below PIRLS_STEP_TOL relative, u is the mode to within about that step (the steps
        shrink quadratically for canonical links, linearly for others), so u is kept with the
        factor just made at its weights: no solve is spent on a step that changes nothing.
        log |L|² depends on u to first order (through the weights), so the tolerance is set
        where that change is below the deviance's rounding error.
        """
        theta, beta = np.asarray(theta, float), np.asarray(beta, float)
        lams = self.lambdas(theta)
        u = np.zeros(sum(t.q for t in self.frame.terms)) if u0 is None else u0
        fixed = self._fixed(beta)
        pdev, eta, mu, ll = self._pdev(lams, u, fixed)
        for it in range(1, PIRLS_MAXIT + 1):
            # L at the weights of the current μ: at convergence, the factor of the Laplace approximation
            sol, u_new, beta_new = self._solve(theta, eta, mu, beta, with_beta, fixed, self._newton)
            step = max(np.max(np.abs(u_new - u), initial=0.0), np.max(np.abs(beta_new - beta), initial=0.0))
            if step < PIRLS_STEP_TOL * (1.0 + np.max(np.abs(u), initial=0.0)):
                break
            for _ in range(20):  # step-halving
                if with_beta:
                    fixed = self._fixed(beta_new)
                new = self._pdev(lams, u_new, fixed)
                if new[0] <= pdev + 1e-10 * abs(pdev):
                    break
                u_new, beta_new = (u + u_new) / 2, (beta + beta_new) / 2
            u, beta, (pdev, eta, mu, ll) = u_new, beta_new, new
        if self._newton:  # the Laplace approximation's factor is at the expected weights (lme4's)
            sol = self._solve(theta, eta, mu, beta, with_beta, fixed)[0]
        self.iterations += it
        return Mode(u, beta, eta, mu, sol, ll, it)


# ---------------------------------------------------------- quadrature


@functools.cache
def _gauss_hermite(nagq: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Hermite nodes and weights for N(0, 1), made once per nagq (numpy's hermegauss
    solves an eigenproblem, as costly as a PIRLS step on small data)."""
    z, w = np.polynomial.hermite_e.hermegauss(nagq)
    w = w / w.sum()
    z.flags.writeable = w.flags.writeable = False
    return z, w


def agq_correction(pirls: PIRLS, theta, mode: Mode, nagq: int) -> float:
    """Adaptive Gauss–Hermite correction to the Laplace deviance (one scalar term).

    For level i with mode ûᵢ and Lᵢᵢ, −2 log ∫ p(yᵢ | u) φ(u) du
    ≈ gᵢ(ûᵢ) + log Lᵢᵢ² − 2 log Σ_k w_k exp(−½[gᵢ(ûᵢ + z_k/Lᵢᵢ) − gᵢ(ûᵢ)] + ½ z_k²),
    with gᵢ(u) = −2 Σ_j log p(y_ij | u) + u², (z_k, w_k) Gauss–Hermite for N(0, 1).
    All nodes and levels are evaluated in one array of K × n rows; the node
    z = 0 (odd K) contributes w_0 exactly and is not evaluated.
    """
    term = pirls.frame.terms[0]
    z, w = _gauss_hermite(nagq)
    keep = z != 0.0
    zk, wk = z[keep], w[keep]
    lam, m, codes = float(theta[0]), term.n_levels, term.codes
    Lii = np.abs(mode.solution.L11[:, 0, 0])
    lv = lam * term.values[:, 0]
    base_eta = mode.eta - lv * mode.u[codes]
    # gᵢ(ûᵢ + z_k/Lᵢᵢ) − gᵢ(ûᵢ) for all nodes at once: rows k·n + j, levels k·m + i
    u_k = mode.u[None, :] + zk[:, None] / Lii[None, :]  # K × m
    eta_k = base_eta[None, :] + lv[None, :] * u_k[:, codes]
    ll_k = pirls.loglik_rows(pirls.family.link.linkinv(eta_k))
    flat = (codes[None, :] + m * np.arange(len(zk))[:, None]).ravel()
    g_k = -2.0 * np.bincount(flat, weights=ll_k.ravel(), minlength=m * len(zk)).reshape(-1, m) + u_k**2
    g0 = -2.0 * np.bincount(codes, weights=pirls.loglik_rows(mode.mu), minlength=m) + mode.u**2
    acc = (wk[:, None] * np.exp(-0.5 * (g_k - g0[None, :]) + 0.5 * zk[:, None] ** 2)).sum(axis=0)
    acc += w[~keep].sum()
    return float(-2.0 * np.log(acc).sum())
