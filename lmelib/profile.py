"""Likelihood profiles of the parameters (Bates et al. 2015, section 5.1).

The profile of a parameter φ holds φ fixed, optimises the deviance over all
the other parameters, and records the signed square root of the increase,

    ζ(φ) = sign(φ − φ̂) √(d(φ) − d(φ̂)).

Were the estimator of φ normal, ζ would be a straight line in φ; its bends
show where the Wald interval φ̂ ± z·se misleads.  Where ζ = ±z_{1−α/2} the
likelihood-ratio test of φ is on the edge of rejection at level α, so those
values are the ends of a profile confidence interval.

As lme4's ``profile.merMod``:

* the deviance is the ML deviance, also for a REML fit, which is refitted by
  ML first (lme4's ``devfun2`` calls ``refitML``);
* the variance parameters are the standard deviations and correlations of the
  random effects, term by term in θ's order (lower triangle, column by column),
  then σ: ``.sig01``, ``.sig02``, ..., ``.sigma``.  On this scale the deviance,
  with β profiled out by PLS but σ not (eqn. 31), is

      d(s, σ) = log|Lθ|² + r²θ / σ² + n log(2πσ²),   θ = chol(Σ(s)) / σ;

* a fixed effect βj is held at x while θ is re-optimised and σ and the other
  β are profiled out (lme4 refits with xj x as an offset; the PLS solution
  gives the same directly, see ``_fixef_deviance``);
* the profile is traced outward from the estimate in both directions, each
  step aiming at a change of δ = cutoff/8 in ζ, until |ζ| exceeds
  cutoff = √χ²_{k}(1 − alpha_max), k the number of parameters;
* the interval ends come from an interpolating (natural cubic) spline of ζ
  against φ, inverted as R's ``splines::backSpline`` does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import nlopt
import numpy as np
import pandas as pd
import scipy.interpolate

from .formatting import fmt_lik
from .covariance import lambda_of, n_theta
from .deviance import ProfiledDeviance, deviance_at_sigma, objective
from .structures import require_iid_residuals

__all__ = [
    "Profile",
    "ParameterProfile",
    "profile",
    "varpar_names",
    "varpar",
    "sdcor_from_theta",
    "theta_from_sdcor",
    "interval_labels",
]



# ------------------------------------------------ the sd/correlation scale


def _tril(ell: int) -> tuple[np.ndarray, np.ndarray]:
    # column-major lower triangle, θ's order: (0,0), (1,0), ..., (1,1), ...
    cols, rows = np.triu_indices(ell)
    return rows, cols


def _psd_cholesky(C: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L Lᵀ = C for positive semidefinite C (a correlation may be ±1)."""
    ell = len(C)
    L = np.zeros_like(C)
    for j in range(ell):
        d = C[j, j] - L[j, :j] @ L[j, :j]
        L[j, j] = np.sqrt(max(d, 0.0))
        for i in range(j + 1, ell):
            L[i, j] = (C[i, j] - L[i, :j] @ L[j, :j]) / L[j, j] if L[j, j] > 0 else 0.0
    return L


def sdcor_from_theta(theta: np.ndarray, ells: list[int], sigma: float) -> np.ndarray:
    """Standard deviations and correlations of each term, then σ (lme4's ``Cv_to_Sv``).

    A correlation with a zero standard deviation is reported as 0, as lme4 does.
    """
    out, start = [], 0
    for ell in ells:
        k = n_theta(ell)
        lam = lambda_of(theta[start : start + k], ell)
        cov = sigma**2 * lam @ lam.T
        sd = np.sqrt(np.diag(cov))
        with np.errstate(divide="ignore", invalid="ignore"):
            m = cov / np.outer(sd, sd)
        m[~np.isfinite(m)] = 0.0
        m[np.diag_indices(ell)] = sd
        out.append(m[_tril(ell)])
        start += k
    return np.concatenate(out + [[sigma]])


def theta_from_sdcor(sdcor: np.ndarray, ells: list[int], sigma: float) -> np.ndarray:
    """θ from standard deviations and correlations (lme4's ``Sv_to_Cv``), σ given separately."""
    out, start = [], 0
    for ell in ells:
        k = n_theta(ell)
        m = np.zeros((ell, ell))
        m[_tril(ell)] = sdcor[start : start + k]
        sd = np.diag(m).copy()
        m = m + np.tril(m, -1).T
        m[np.diag_indices(ell)] = 1.0
        out.append(_psd_cholesky(m * np.outer(sd, sd) / sigma**2)[_tril(ell)])
        start += k
    return np.concatenate(out)


def varpar_names(m) -> list[str]:
    """lme4's names of the variance parameters: ``.sig01``, ``.sig02``, ..., ``.sigma``."""
    return [f".sig{i + 1:02d}" for i in range(len(m.theta))] + [".sigma"]


def varpar(m) -> pd.Series:
    """The variance parameters of a fit on the sd/correlation scale, named as lme4 names them."""
    ells = [t.ell for t in m.frame.terms]
    return pd.Series(sdcor_from_theta(m.theta, ells, m.sigma), index=varpar_names(m))


def _varpar_bounds(m) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviations in [0, ∞), correlations in [−1, 1], σ in [0, ∞)."""
    sd = m.optsum.lower == 0
    lower = np.append(np.where(sd, 0.0, -1.0), 0.0)
    upper = np.append(np.where(sd, np.inf, 1.0), np.inf)
    return lower, upper


def interval_labels(level: float) -> list[str]:
    """R's column names for the interval ends: ``"2.5 %"``, ``"97.5 %"`` (``format.perc``)."""
    a = (1 - level) / 2
    pct = [100 * a, 100 * (1 - a)]
    decimals = max(max(0, len(f"{p:.3g}".partition(".")[2])) for p in pct)
    return [f"{p:.{decimals}f} %" for p in pct]


# ------------------------------------------------------- the deviance d(s, σ)


class SdcorDeviance:
    """The ML deviance as a function of (s, σ), β profiled out (lme4's ``devfun2``, eqn. 31)."""

    def __init__(self, m):
        self.devfun = m.devfun if not m.reml else ProfiledDeviance(m.frame, reml=False)
        self.ells = [t.ell for t in m.frame.terms]
        self.n = m.frame.n

    def solve(self, par: np.ndarray) -> tuple[float, np.ndarray]:
        """Deviance and β̂θ at ``par`` = (s, σ)."""
        sigma = par[-1]
        if not sigma > 0:
            return np.inf, np.full(self.devfun.cp.p, np.nan)
        sol = self.devfun.solve(theta_from_sdcor(par[:-1], self.ells, sigma))
        dev = deviance_at_sigma(sol.ldL2, sol.pwrss, self.n, sigma)
        return float(dev), sol.beta

    def __call__(self, par: np.ndarray) -> float:
        return self.solve(par)[0]


def _bobyqa(f, start: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimise f within [lower, upper] by BOBYQA; the best point seen, whatever NLopt says."""
    start = np.clip(np.asarray(start, dtype=float), lower, upper)
    best = [start, np.inf]

    def objective(x, grad):
        try:
            fx = float(f(x))
        except (FloatingPointError, np.linalg.LinAlgError):  # PLS system not positive definite
            fx = np.inf
        if not np.isfinite(fx):
            fx = 1e300
        if fx < best[1]:
            best[0], best[1] = x.copy(), fx
        return fx

    opt = nlopt.opt(nlopt.LN_BOBYQA, len(start))
    opt.set_min_objective(objective)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    # small first steps: each start is the optimum at the neighbouring point
    step = np.maximum(0.02 * np.abs(start), 0.005)
    opt.set_initial_step(np.minimum(step, 0.25 * (upper - lower)))  # fits in [−1, 1]
    opt.set_ftol_abs(1e-6)  # on the deviance: ζ to about 1e-7
    opt.set_xtol_rel(1e-6)
    opt.set_maxeval(10_000)
    try:
        opt.optimize(start)
    except (nlopt.RoundoffLimited, ValueError):
        pass  # keep the best point seen
    return best[0], best[1]


# ------------------------------------------------------------- stepping out


@dataclass(frozen=True)
class _Settings:
    cutoff: float
    delta: float
    max_points: int
    max_mult: float
    devtol: float


def _next_value(prev: np.ndarray, last: np.ndarray, col: int, s: _Settings,
                lowcut: float, upcut: float, notes: list[str]) -> float:
    """lme4's ``nextpar``: the value where ζ should change by δ, by the last secant."""
    num, denom = last[col] - prev[col], last[0] - prev[0]
    if np.isnan(denom) or denom == 0:
        notes.append("last two points have identical or NA ζ: using the minimum step")
        step = 1e-6
    else:
        step = s.delta * num / denom
        if step < 0:
            notes.append("unexpected decrease in the profile: using the minimum step")
            step = 1e-6
        elif abs(step) > s.max_mult * abs(num):
            step = np.sign(step) * s.max_mult * abs(num)
    return float(min(upcut, max(lowcut, last[col] + np.sign(num) * step)))


def _walk(rows: list[np.ndarray], col: int, zeta_at, s: _Settings,
          lowcut: float, upcut: float, notes: list[str]) -> list[np.ndarray]:
    """lme4's ``fillmat``: extend the profile from its last two points until |ζ| > cutoff."""
    rows = list(rows)
    while (len(rows) < s.max_points and lowcut < rows[-1][col] < upcut
           and not abs(rows[-1][0]) > s.cutoff):
        x = _next_value(rows[-2], rows[-1], col, s, lowcut, upcut, notes)
        rows.append(zeta_at(x, rows[-1]))
    return rows


def _first_step(pw: float, lowcut: float, upcut: float) -> float:
    """lme4 moves 1 % away from the estimate first (0.001 from 0); inward at a bound."""
    x = 0.001 if pw == 0 else pw * 1.01
    return x if lowcut <= x <= upcut else pw * 0.99


# ---------------------------------------------------------------- profiles


@dataclass(frozen=True, eq=False)
class ParameterProfile:
    """The profile of one parameter: ζ and all parameters at each point.

    ``points`` has columns ``.zeta`` and every parameter (lme4's profile
    layout), sorted by this parameter; ``lower`` and ``upper`` are the bounds
    of a variance parameter (NaN for a fixed effect); ``notes`` the
    irregularities met while tracing it.
    """

    name: str
    points: pd.DataFrame
    lower: float
    upper: float
    notes: tuple[str, ...] = ()

    @property
    def value(self) -> np.ndarray:
        return self.points[self.name].to_numpy()

    @property
    def zeta(self) -> np.ndarray:
        return self.points[".zeta"].to_numpy()

    @cached_property
    def _inverse(self):
        """φ as a function of ζ: R's backSpline of the interpolation spline, or the reason it fails."""
        ok = ~np.isnan(self.zeta)
        try:
            return _back_spline(self.value[ok], self.zeta[ok])
        except ValueError as err:
            return err

    def interval(self, zeta: np.ndarray, non_mono_tol: float = 1e-2) -> tuple[np.ndarray, str | None]:
        """φ where ζ takes the values ``zeta`` (lme4's ``confint.thpr``), and a warning if any.

        Outside the profiled range a variance parameter gets its bound and a
        fixed effect NaN; a non-monotonic profile gives NaN.
        """
        inv, note = self._inverse, None
        if not isinstance(inv, ValueError):
            p = _predict_poly(inv, zeta)
        else:
            ok = ~np.isnan(self.zeta)
            if not ok.any():
                return np.full(len(zeta), np.nan), f"bad profile for {self.name}"
            # lme4 tests min(diff(ζ) < −tol): non-monotonic only when every step decreases
            if np.all(np.diff(self.zeta[ok]) < -non_mono_tol):
                return np.full(len(zeta), np.nan), f"non-monotonic profile for {self.name}"
            note = f"bad spline fit for {self.name}: falling back to linear interpolation"
            p = _approx_inverse(self.zeta[ok], self.value[ok], zeta)
        p = np.where(np.isnan(p) & (np.asarray(zeta) < 0), self.lower, p)
        p = np.where(np.isnan(p) & (np.asarray(zeta) > 0), self.upper, p)
        return p, note


@dataclass(frozen=True, eq=False)
class Profile:
    """Likelihood profiles of a fitted model's parameters (lme4's ``thpr``).

    ``model`` is the ML fit that was profiled (the refit of a REML fit);
    ``parameters`` one :class:`ParameterProfile` per profiled parameter, in
    lme4's order (``.sig01``, ..., ``.sigma``, then the fixed effects).
    """

    model: object
    parameters: tuple[ParameterProfile, ...]
    cutoff: float
    base: float  # the ML deviance at the estimates
    profiler: "_Profiler" = field(repr=False)

    def __getitem__(self, name: str) -> ParameterProfile:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"no profile for {name!r}; profiled: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def zeta_at(self, name: str, value: float) -> float:
        """ζ at ``value`` of parameter ``name`` from a fresh optimisation: no interpolation.

        A check on an interval end: ``zeta_at(".sigma", upper)`` is close to z.
        """
        i = self.profiler.names.index(name)
        return float(self.profiler.zeta_function(i)(value, np.concatenate([[0.0], self.profiler.opt]))[0])

    @cached_property
    def table(self) -> pd.DataFrame:
        """Tidy profiles for plotting: one row per point, columns parameter, value, zeta."""
        return pd.concat(
            [pd.DataFrame({"parameter": p.name, "value": p.value, "zeta": p.zeta}) for p in self.parameters],
            ignore_index=True,
        )

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Profile confidence intervals: where ζ = ±z_{(1+level)/2} (lme4's ``confint.thpr``)."""
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, got {level}")
        a = (1 - level) / 2
        import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
        zeta = scipy.stats.norm.ppf([a, 1 - a])
        rows, notes = [], []
        for p in self.parameters:
            ends, note = p.interval(zeta)
            rows.append(ends)
            notes += [note] if note else []
        if notes:
            warnings.warn("; ".join(notes), UserWarning, stacklevel=2)
        return pd.DataFrame(rows, index=self.names, columns=interval_labels(level))

    def __repr__(self) -> str:
        return (f"<Profile of {len(self.parameters)} parameters of {self.model.formula!r} "
                f"({len(self.table)} points, ML deviance {fmt_lik(self.base)})>")


def _select(which, names: list[str], nvp: int) -> list[int]:
    """Indices of the parameters to profile (lme4's ``get.which``)."""
    if which is None:
        return list(range(len(names)))
    out = set()
    for w in [which] if isinstance(which, str) else which:
        if w == "theta_":
            out |= set(range(nvp))
        elif w == "beta_":
            out |= set(range(nvp, len(names)))
        elif w in names:
            out.add(names.index(w))
        else:
            raise KeyError(f"{w!r} is not a parameter of the model; parameters: {', '.join(names)}")
    return sorted(out)


class _Profiler:
    """Everything a profile point needs: the ML fit, d(s, σ), the estimates and their bounds."""

    def __init__(self, ml, settings: _Settings):
        self.ml, self.s = ml, settings
        self.dd = SdcorDeviance(ml)
        vp = varpar(ml).to_numpy()
        self.nvp = len(vp)
        self.names = varpar_names(ml) + list(ml.frame.x_names)
        self.opt = np.concatenate([vp, ml.fixef.to_numpy()])
        self.base = ml.objective
        self.lower, self.upper = _varpar_bounds(ml)
        if abs(self.dd(vp) - self.base) > 1e-5 * abs(self.base):
            raise RuntimeError("the deviance on the sd/correlation scale does not reproduce "
                               "the fit's deviance")

    def zeta_function(self, i: int):
        """``f(x, start) -> [ζ, all parameters]`` with parameter ``i`` held at x."""
        return self._varpar_zeta(i) if i < self.nvp else self._fixef_zeta(i - self.nvp)

    def _check(self, dev: float, i: int) -> float:
        diff = dev - self.base
        if diff < -self.s.devtol:
            raise RuntimeError(
                f"profiling {self.names[i]} found a deviance {-diff:.3g} below the fit's: the fit is "
                "not at the optimum (lme4: 'profiling detected new, lower deviance'); refit the model"
            )
        return max(diff, 0.0)

    def _varpar_zeta(self, w: int):
        """Variance parameter ``w`` held: the others (sd/correlation scale) and σ re-optimised."""
        dd, pw, others = self.dd, self.opt[w], np.arange(self.nvp) != w

        def zeta_at(x: float, start: np.ndarray) -> np.ndarray:
            v, _ = _bobyqa(lambda v: dd(np.insert(v, w, x)), start[1 : self.nvp + 1][others],
                           self.lower[others], self.upper[others])
            par = np.insert(v, w, x)
            dev, beta = dd.solve(par)
            return np.concatenate([[np.sign(x - pw) * np.sqrt(self._check(dev, w))], par, beta])

        return zeta_at

    def _fixef_zeta(self, j: int):
        """Fixed effect ``j`` held: θ re-optimised, σ and the other β profiled."""
        ml, n, i = self.ml, self.ml.frame.n, self.nvp + j
        ells, lower = [t.ell for t in ml.frame.terms], ml.optsum.lower

        def zeta_at(x: float, start: np.ndarray) -> np.ndarray:  # lme4 starts each at θ̂
            theta, _ = _bobyqa(lambda th: _fixef_deviance(ml.devfun.solve(th), j, x, n)[0],
                               ml.theta, lower, np.full(len(lower), np.inf))
            dev, sigma, beta = _fixef_deviance(ml.devfun.solve(theta), j, x, n)
            z = np.sign(x - self.opt[i]) * np.sqrt(self._check(dev, i))
            return np.concatenate([[z], sdcor_from_theta(theta, ells, sigma), beta])

        return zeta_at

    def trace(self, i: int) -> ParameterProfile:
        """Step out from the estimate in both directions (lme4: ``pres`` and ``nres``)."""
        notes: list[str] = []
        centre, zeta_at, est = np.concatenate([[0.0], self.opt]), self.zeta_function(i), self.opt[i]
        if i < self.nvp:  # bounded: sd ≥ 0, −1 ≤ correlation ≤ 1
            low, up = bounds = self.lower[i], self.upper[i]
            first = _first_step(est, low, up)
        else:  # a fixed effect: first step δ standard errors
            low, up, bounds = -np.inf, np.inf, (np.nan, np.nan)
            j = i - self.nvp
            first = est + self.s.delta * np.sqrt(self.ml.vcov.iloc[j, j])
        shifted = zeta_at(first, centre)
        rows = _walk([centre, shifted], i + 1, zeta_at, self.s, low, up, notes)
        if low < est < up:
            rows += _walk([shifted, centre], i + 1, zeta_at, self.s, low, up, notes)[2:]
        points = pd.DataFrame(np.array(rows), columns=[".zeta"] + self.names)
        name = self.names[i]
        points = points.drop_duplicates(subset=[name]).sort_values(name, kind="stable").reset_index(drop=True)
        return ParameterProfile(name, points, *bounds, notes=tuple(notes))


def profile(
    m,
    which=None,
    alpha_max: float = 0.01,
    max_points: int = 100,
    delta_cutoff: float = 1 / 8,
    max_mult: float = 10,
    devtol: float = 1e-6,
) -> Profile:
    """Likelihood profiles of the parameters of ``m`` (lme4's ``profile(m)``).

    ``which`` picks parameters by name (``".sig01"``, ``".sigma"``,
    ``"math3"``) or as ``"theta_"`` (all variance parameters) and ``"beta_"``
    (all fixed effects); default all.  Each profile reaches |ζ| beyond
    √χ²_k(1 − ``alpha_max``), k the number of parameters, or the parameter's
    bound; ``max_points`` caps the points per direction.  A REML fit is refitted
    by ML and the ML deviance profiled, as lme4 does.
    """
    require_iid_residuals(m, "profile")
    ml = m.refit(False) if m.reml else m
    k = len(m.theta) + 1 + m.frame.p
    import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
    cutoff = float(np.sqrt(scipy.stats.chi2.ppf(1 - alpha_max, k)))
    profiler = _Profiler(ml, _Settings(cutoff, cutoff * delta_cutoff, max_points, max_mult, devtol))
    profiles = tuple(profiler.trace(i) for i in _select(which, profiler.names, profiler.nvp))
    if any(p.notes for p in profiles):
        detail = "; ".join(f"{p.name}: {', '.join(sorted(set(p.notes)))}" for p in profiles if p.notes)
        warnings.warn(f"irregular profiles ({detail})", UserWarning, stacklevel=2)
    return Profile(ml, profiles, cutoff, profiler.base, profiler)


def _fixef_deviance(sol, j: int, x: float, n: int) -> tuple[float, float, np.ndarray]:
    """ML deviance at θ with βj = x, σ and the other β profiled: (deviance, σ, β).

    lme4 refits with xj x as an offset; the PLS solution at θ gives the same
    without a refit.  Since r²(θ, β) = r²θ + ‖RX(β − β̂θ)‖² (the pwrss identity
    of Bates et al. 2015, section 3), the other β move to their conditional
    optimum and

        r²(θ | βj = x) = r²θ + (x − β̂θ,j)² / vjj,   V = (RXᵀRX)⁻¹,

    which enters the profiled deviance (eqn. 34) in place of r²θ.
    """
    Rinv = np.linalg.inv(sol.RX)  # p × p, upper triangular
    V = Rinv @ Rinv.T
    shift = x - sol.beta[j]
    pwrss = sol.pwrss + shift**2 / V[j, j]
    dev = objective(sol.ldL2, 0.0, pwrss, n, 0, reml=False)
    return float(dev), float(np.sqrt(pwrss / n)), sol.beta + shift * V[:, j] / V[j, j]


# ------------------------------------------------- splines, as R's splines


def _back_spline(x: np.ndarray, zeta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's ``backSpline(interpSpline(ζ ~ x))``: φ as a piecewise cubic in ζ.

    The forward spline is the natural cubic interpolating spline of ζ on φ;
    the inverse matches φ and dφ/dζ = 1/ζ'(φ) at each knot (Hermite cubics),
    with R's quadratic end pieces.  Returns (knots in ζ, 4 polynomial
    coefficients per knot); raises ValueError where R's functions stop.
    """
    nk = len(x)
    if nk < 4:
        raise ValueError("an interpolation spline needs at least 4 points")
    if np.any(np.diff(x) <= 0):
        raise ValueError("values of the parameter must be distinct")
    slope = scipy.interpolate.CubicSpline(x, zeta, bc_type="natural")(x, 1)
    kdiff, adiff = np.diff(x), np.diff(zeta)
    if np.all(adiff < 0):
        reverse = True
    elif np.all(adiff > 0):
        reverse = False
    else:
        raise ValueError("spline must be monotone")
    b = np.zeros((nk, 4))
    b[:, 0], b[:, 1] = x, 1 / slope
    for i in range(nk - 1):
        a = adiff[i]
        b[i, 2:] = np.linalg.solve([[a**2, a**3], [2 * a, 3 * a**2]],
                                   [kdiff[i] - a * b[i, 1], b[i + 1, 1] - b[i, 1]])
    b[-1, 1:] = np.nan
    b[0, 3] = b[-2, 3] = 0.0  # quadratic end pieces
    b[0, 1:3] = np.linalg.solve([[adiff[0], adiff[0] ** 2], [1, 2 * adiff[0]]], [kdiff[0], 1 / slope[1]])
    b[-2, 2] = (kdiff[-1] - adiff[-1] * b[-2, 1]) / adiff[-1] ** 2
    if b[0, 2] > 0:
        b[0, 2], b[0, 1] = 0.0, kdiff[0] / adiff[0]
    if b[-2, 2] < 0:
        b[-2, 2], b[-2, 1] = 0.0, kdiff[-1] / adiff[-1]
    knots = zeta.astype(float)
    return (knots[::-1], b[::-1]) if reverse else (knots, b)


def _predict_poly(spline: tuple[np.ndarray, np.ndarray], v) -> np.ndarray:
    """R's ``predict.polySpline``: NaN outside the knots, intervals closed on the right."""
    knots, coef = spline
    v = np.atleast_1d(np.asarray(v, dtype=float))
    i = np.searchsorted(knots, v, side="left") - 1
    i[v == knots[0]] = 0
    ok = (i >= 0) & (i < len(knots) - 1)
    i = np.where(ok, i, 0)
    dx = v - knots[i]
    c = coef[i]
    y = c[:, 0] + dx * (c[:, 1] + dx * (c[:, 2] + dx * c[:, 3]))
    return np.where(ok, y, np.nan)


def _approx_inverse(zeta: np.ndarray, value: np.ndarray, at) -> np.ndarray:
    """R's ``approxfun(ζ, φ)(at)``: linear, ties in ζ averaged, NaN outside the range."""
    z, inv = np.unique(zeta, return_inverse=True)
    v = np.bincount(inv, weights=value) / np.bincount(inv)
    at = np.asarray(at, dtype=float)
    return np.where((at < z[0]) | (at > z[-1]), np.nan, np.interp(at, z, v))
