"""Residual error structures: R = σ² S C S instead of σ² I (nlme's ``weights=`` and ``correlation=``).

S = diag(s) holds each observation's standard-deviation multiplier (a variance
function) and C is block diagonal with one correlation matrix per group (a
correlation structure) (Pinheiro & Bates 2000, ch. 5).  With C_g = L_g L_gᵀ
the transform T = L⁻¹ S⁻¹ whitens the errors, so the model for T y is an
ordinary mixed model with R = σ² I, and

    −2 log L(y) = −2 log L(T y) + log |S C S| .

Every structure works on an unconstrained parameter vector ψ (what the
optimiser sees) and reports its parameters on the natural scale (φ, ratios,
powers) as nlme's ``coef(..., unconstrained = FALSE)``.

Variance functions: :class:`VarIdent` (one standard deviation per stratum),
:class:`VarPower` (|v|^δ), :class:`VarExp` (exp(δ v)).  Correlation
structures: :class:`AR1` (integer times), :class:`CAR1` (continuous times),
:class:`CompSymm` and :class:`ARMA`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from .derivatives import hessian

__all__ = ["VarIdent", "VarPower", "VarExp", "AR1", "CAR1", "CompSymm", "ARMA", "ErrorModel",
           "structure_intervals", "plot_acf", "require_iid_residuals", "structure_columns",
           "check_structures"]

COLUMN = {"column": True}  # field metadata: this argument names a column of the data


def _column_field(**kwargs):
    """A structure's argument that names a data column (see ``columns``)."""
    return field(metadata=COLUMN, **kwargs)


class _Structure:
    """What every structure declares: the data columns it reads."""

    @property
    def columns(self) -> dict[str, str]:
        """The data columns this structure reads, each with the argument that named it."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("column") and isinstance(value, str):
                out.setdefault(value, f.name)
        return out


def structure_columns(*structures) -> dict[str, str]:
    """The data columns the structures read, each with where it was named (for a KeyError)."""
    cols = {}
    for s in structures:
        for column, arg in getattr(s, "columns", {}).items():
            cols.setdefault(column, f"{type(s).__name__}({arg}=...)")
    return cols


def check_structures(correlation, weights) -> None:
    """``correlation=`` and ``weights=`` take nlme's structures, not columns or numbers."""
    for arg, value, examples in (("correlation", correlation, "lmelib.AR1('year', 'firm'), lmelib.CompSymm('g')"),
                                 ("weights", weights, "lmelib.VarIdent('g'), lmelib.VarPower('x')")):
        if value is not None and not hasattr(value, "bind"):
            raise TypeError(f"{arg}= takes an nlme structure such as {examples}, not {value!r}; "
                            "prior weights given as a column (lme4's weights=) are not supported")


# ------------------------------------------------------------- variance functions


@dataclass(frozen=True)
class VarIdent(_Structure):
    """A separate residual standard deviation per level of ``by`` (nlme's varIdent(~ 1 | by)).

    Parameters: the ratio of each level's standard deviation to the first level's.
    """

    by: str = _column_field()

    def bind(self, data: pd.DataFrame) -> "_BoundVar":
        col = _column(data, self.by, "VarIdent")
        codes, levels = _codes(col)
        counts = np.bincount(codes, minlength=len(levels))
        if len(levels) < 2:
            raise ValueError(f"VarIdent by {self.by!r}: it has a single level, so there is nothing to vary")
        if np.any(counts < 2):
            bad = levels[int(np.flatnonzero(counts < 2)[0])]
            raise ValueError(f"VarIdent by {self.by!r}: stratum {bad!r} has a single observation, "
                             "so its variance cannot be estimated")
        names = [f"{self.by}={lev}" for lev in levels[1:]]

        def multipliers(psi):
            return np.exp(np.concatenate([[0.0], psi]))[codes]

        return _BoundVar(names, np.zeros(len(levels) - 1), multipliers, np.exp, f"varIdent(~ 1 | {self.by})")


@dataclass(frozen=True)
class VarPower(_Structure):
    """Standard deviation proportional to |v|^δ for a covariate v (nlme's varPower(form = ~ v))."""

    covariate: str = _column_field()

    def bind(self, data: pd.DataFrame) -> "_BoundVar":
        v = np.abs(_numeric(data, self.covariate, "VarPower"))
        if np.any(v == 0):
            raise ValueError(f"VarPower: covariate {self.covariate!r} has zeros (row "
                             f"{int(np.flatnonzero(v == 0)[0])}); |v|^δ would give those rows zero variance")
        logv = np.log(v)
        scale = _scale(logv)  # ψ = δ · sd(log|v|): a unit step in ψ is a sensible change
        return _BoundVar(["power"], np.zeros(1), lambda psi: np.exp(psi[0] / scale * logv),
                         lambda psi: psi / scale, f"varPower(form = ~ {self.covariate})")


@dataclass(frozen=True)
class VarExp(_Structure):
    """Standard deviation proportional to exp(δ v) (nlme's varExp(form = ~ v))."""

    covariate: str = _column_field()

    def bind(self, data: pd.DataFrame) -> "_BoundVar":
        v = _numeric(data, self.covariate, "VarExp")
        scale = _scale(v)  # ψ = δ · sd(v)
        return _BoundVar(["expon"], np.zeros(1), lambda psi: np.exp(psi[0] / scale * v),
                         lambda psi: psi / scale, f"varExp(form = ~ {self.covariate})")


@dataclass(frozen=True)
class _BoundVar:
    names: list[str]
    start: np.ndarray
    multipliers: object  # ψ -> s (length n)
    natural: object  # ψ -> natural-scale parameters
    label: str


# ---------------------------------------------------------- correlation structures


@dataclass(frozen=True)
class AR1(_Structure):
    """First-order autoregressive errors within ``group``, ordered by the integer ``time``.

    cor(ε_t, ε_s) = φ^|t − s| (nlme's corAR1(form = ~ time | group)); gaps in
    time are allowed.
    """

    time: str = _column_field()
    group: str | None = _column_field(default=None)
    continuous = False

    def bind(self, data):
        return _bind_serial(self, data, "corAR1", self.continuous)


@dataclass(frozen=True)
class CAR1(_Structure):
    """Continuous-time AR(1): cor(ε_t, ε_s) = φ^|t − s| for real times (nlme's corCAR1)."""

    time: str = _column_field()
    group: str | None = _column_field(default=None)
    continuous = True

    def bind(self, data):
        return _bind_serial(self, data, "corCAR1", self.continuous)


@dataclass(frozen=True)
class CompSymm(_Structure):
    """Equal correlation ρ between any two errors of the same group (nlme's corCompSymm)."""

    group: str = _column_field()

    def bind(self, data):
        groups = _groups(data, self.group)
        sizes = [len(g) for g in groups]

        def corr(psi, k):
            rho = _rho_from(psi[0], min_rho=-1.0 / (max(sizes) - 1) if max(sizes) > 1 else -1.0)
            m = sizes[k]
            return (1 - rho) * np.eye(m) + rho * np.ones((m, m))

        natural = lambda psi: np.array([_rho_from(psi[0], -1.0 / (max(sizes) - 1) if max(sizes) > 1 else -1.0)])
        return _BoundCor(["Rho"], np.zeros(1), groups, corr, natural, f"corCompSymm(form = ~ 1 | {self.group})")


@dataclass(frozen=True)
class ARMA(_Structure):
    """ARMA(p, q) errors within ``group`` in the order of ``time`` (nlme's corARMA).

    Stationarity and invertibility are kept by optimising over partial
    autocorrelations in (−1, 1) (Jones 1980; as nlme does).
    """

    time: str = _column_field()
    group: str | None = _column_field(default=None)
    p: int = 1
    q: int = 0

    def bind(self, data):
        if self.p + self.q == 0:
            raise ValueError("ARMA needs p > 0 or q > 0")
        groups = _ordered_groups(data, self.time, self.group, continuous=False)

        def coefs(psi):
            return _pacf_to_ar(np.tanh(psi[: self.p])), -_pacf_to_ar(np.tanh(psi[self.p :]))

        longest = max(len(g) for g in groups)
        last = {}  # the autocorrelations at the last ψ, shared by all groups

        def corr(psi, k):
            key = np.asarray(psi, float).tobytes()
            if key not in last:
                last.clear()
                last[key] = _arma_acf(*coefs(psi), longest)
            return scipy.linalg.toeplitz(last[key][: len(groups[k])])

        names = [f"Phi{i + 1}" for i in range(self.p)] + [f"Theta{i + 1}" for i in range(self.q)]
        return _BoundCor(names, np.zeros(self.p + self.q), groups, corr,
                         lambda psi: np.concatenate(coefs(psi)),
                         f"corARMA(form = ~ {self.time}{' | ' + self.group if self.group else ''}, p = {self.p}, q = {self.q})")


@dataclass(frozen=True)
class _BoundCor:
    names: list[str]
    start: np.ndarray
    groups: list[np.ndarray]  # row indices of each group, in time order
    corr: object  # (ψ, k) -> correlation matrix of group k
    natural: object
    label: str
    lags: list[np.ndarray] = field(default_factory=list)


def _bind_serial(spec, data, name, continuous):
    groups = _ordered_groups(data, spec.time, spec.group, continuous)
    t = _numeric(data, spec.time, name)
    lags = [np.abs(t[g][:, None] - t[g][None, :]) for g in groups]
    # AR(1): φ in (−1, 1) as tanh ψ; CAR(1): φ^Δt needs φ in (0, 1), the logistic of ψ
    phi = (lambda psi: 1.0 / (1.0 + np.exp(-psi[:1]))) if continuous else (lambda psi: np.tanh(psi[:1]))

    def corr(psi, k):
        return phi(psi)[0] ** lags[k]

    label = f"{name}(form = ~ {spec.time}{' | ' + spec.group if spec.group else ''})"
    return _BoundCor(["Phi"], np.zeros(1), groups, corr, phi, label, lags)


# ------------------------------------------------------------------ the combination


@dataclass(frozen=True, eq=False)
class ErrorModel:
    """Variance function and correlation structure bound to the rows of one data set."""

    var: _BoundVar | None
    cor: _BoundCor | None
    n: int

    @classmethod
    def of(cls, data: pd.DataFrame, correlation=None, weights=None) -> "ErrorModel | None":
        if correlation is None and weights is None:
            return None
        return cls(weights.bind(data) if weights is not None else None,
                   correlation.bind(data) if correlation is not None else None, len(data))

    @property
    def _parts(self):
        return [p for p in (self.cor, self.var) if p is not None]

    @property
    def start(self) -> np.ndarray:
        return np.concatenate([p.start for p in self._parts])

    def split(self, psi):
        out, k = [], 0
        for part in self._parts:
            out.append(psi[k : k + len(part.start)])
            k += len(part.start)
        return out

    def natural(self, psi) -> pd.Series:
        """Structure parameters on the natural scale (φ, standard-deviation ratios, powers)."""
        vals, names = [], []
        for part, sub in zip(self._parts, self.split(psi)):
            vals.append(np.atleast_1d(part.natural(sub)))
            names += part.names
        return pd.Series(np.concatenate(vals), index=names, dtype=float)

    @cached_property
    def _pattern(self) -> tuple[list, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """T's sparsity, made once: the groups by size (their correlation blocks are factored
        together), the lower-triangle positions in each, and the CSR order of all entries."""
        sizes: dict[int, list[int]] = {}
        for k, idx in enumerate(self.cor.groups):
            sizes.setdefault(len(idx), []).append(k)
        classes, rows, cols = [], [], []
        for size, ks in sizes.items():
            r, c = np.tril_indices(size)
            idx = np.stack([self.cor.groups[k] for k in ks])  # groups × size, rows in time order
            classes.append((ks, r, c))
            rows.append(idx[:, r].ravel()), cols.append(idx[:, c].ravel())
        covered = np.zeros(self.n, dtype=bool)
        covered[np.concatenate(self.cor.groups)] = True
        single = np.flatnonzero(~covered)
        rows, cols = np.concatenate(rows + [single]), np.concatenate(cols + [single])
        order = np.lexsort((cols, rows))
        indptr = np.searchsorted(rows[order], np.arange(self.n + 1))
        return classes, order, (cols[order], indptr, single)

    def transform(self, psi) -> tuple[sp.csr_array, float]:
        """T = L⁻¹ S⁻¹ and log |S C S| at ψ."""
        subs = dict(zip([id(p) for p in self._parts], self.split(psi)))
        s = self.var.multipliers(subs[id(self.var)]) if self.var is not None else np.ones(self.n)
        logdet = 2.0 * np.log(s).sum()
        if self.cor is None:
            return sp.diags_array(1.0 / s, format="csr"), logdet
        classes, order, (indices, indptr, single) = self._pattern
        vals = []
        for ks, r, c in classes:
            C = np.stack([self.cor.corr(subs[id(self.cor)], k) for k in ks])
            L = np.linalg.cholesky(C)  # one call for every group of this size
            logdet += 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
            vals.append(np.linalg.inv(L)[:, r, c].ravel())
        vals.append(np.ones(len(single)))
        data = np.concatenate(vals)[order] / s[indices]  # T = L⁻¹ S⁻¹: column j scaled by 1/s_j
        return sp.csr_array((data, indices, indptr), shape=(self.n, self.n)), logdet

    @property
    def label(self) -> str:
        return ", ".join(p.label for p in self._parts)

    def groups(self) -> list[np.ndarray] | None:
        return self.cor.groups if self.cor is not None else None


# ------------------------------------------------------------------------ helpers


def _column(data, name, who) -> pd.Series:
    if name not in data.columns:
        raise KeyError(f"{who}: column {name!r} is not in the data")
    return data[name]


def _numeric(data, name, who) -> np.ndarray:
    col = _column(data, name, who)
    if not pd.api.types.is_numeric_dtype(col):
        raise TypeError(f"{who}: column {name!r} must be numeric, it has dtype {col.dtype}")
    return col.to_numpy(dtype=float)


def _codes(col: pd.Series) -> tuple[np.ndarray, list]:
    cat = col.astype("category").cat.remove_unused_categories()
    return cat.cat.codes.to_numpy(), [str(c) for c in cat.cat.categories]


def _groups(data, group) -> list[np.ndarray]:
    if group is None:
        return [np.arange(len(data))]
    codes, _ = _codes(_column(data, group, "correlation structure"))
    return [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]


def _ordered_groups(data, time, group, continuous) -> list[np.ndarray]:
    t = _numeric(data, time, "correlation structure")
    if not continuous and np.any(np.abs(t - np.round(t)) > 1e-9):
        raise ValueError(f"AR1: time variable {time!r} must hold whole numbers (use CAR1 for continuous times)")
    out = []
    labels = _codes(data[group])[1] if group is not None else [None]
    for k, idx in enumerate(_groups(data, group)):
        idx = idx[np.argsort(t[idx], kind="stable")]
        dup = np.flatnonzero(np.diff(t[idx]) == 0)
        if dup.size:
            where = f" within {group} {labels[k]!r}" if group is not None else ""
            raise ValueError(f"time variable {time!r} has the duplicate value {t[idx][dup[0]]:g}{where}; "
                             "times must be unique within a group")
        out.append(idx)
    return out


def _scale(v: np.ndarray) -> float:
    sd = float(np.std(v))
    return sd if sd > 0 else 1.0


def _rho_from(a: float, min_rho: float) -> float:
    # map the real line onto (min_rho, 1)
    return min_rho + (1 - min_rho) / (1 + np.exp(-a))


def _pacf_to_ar(pacf: np.ndarray) -> np.ndarray:
    """Durbin–Levinson: partial autocorrelations in (−1, 1) -> stationary AR coefficients."""
    phi = np.zeros(0)
    for r in pacf:
        phi = np.concatenate([phi - r * phi[::-1], [r]])
    return phi


def _arma_acf(ar: np.ndarray, ma: np.ndarray, nlags: int) -> np.ndarray:
    """Autocorrelations 0..nlags−1 of ARMA(ar, ma) (ε_t = Σ ar_i ε_{t−i} + a_t + Σ ma_j a_{t−j}).

    Exact (Brockwell & Davis 1991, section 3.3): with ψ_j the MA(∞) weights, the
    autocovariances satisfy γ(k) − Σ ar_i γ(|k − i|) = Σ_{j ≥ k} ma_j ψ_{j−k}
    (ma_0 = 1); k = 0..p is a linear system for γ(0..p), larger k a recursion.
    """
    p, q = len(ar), len(ma)
    theta = np.concatenate([[1.0], ma])
    psi = np.zeros(q + 1)
    psi[0] = 1.0
    for j in range(1, q + 1):
        psi[j] = theta[j] + sum(ar[i - 1] * psi[j - i] for i in range(1, min(j, p) + 1))
    top = max(nlags, p + 1, q + 1)
    rhs = np.array([theta[k:] @ psi[: q + 1 - k] if k <= q else 0.0 for k in range(top)])
    A = np.eye(p + 1)
    for k in range(p + 1):
        for i in range(1, p + 1):
            A[k, abs(k - i)] -= ar[i - 1]
    gamma = np.zeros(top)
    gamma[: p + 1] = np.linalg.solve(A, rhs[: p + 1])
    for k in range(p + 1, top):
        gamma[k] = sum(ar[i - 1] * gamma[k - i] for i in range(1, p + 1)) + rhs[k]
    return gamma[:nlags] / gamma[0]


def residual_acf(r: np.ndarray, groups: list[np.ndarray], maxlag: int | None = None) -> pd.Series:
    """Empirical autocorrelation of residuals within groups (time-ordered), lag 0..maxlag.

    As nlme's ACF: at lag k, the mean of r_t r_{t+k} over all within-group
    pairs, divided by the mean of r_t² over all observations.
    """
    longest = max(len(g) for g in groups)
    maxlag = longest - 1 if maxlag is None else min(maxlag, longest - 1)
    denom = np.mean(np.concatenate([r[g] ** 2 for g in groups]))
    out, used = [], []
    for k in range(maxlag + 1):
        prods = np.concatenate([r[g][k:] * r[g][: len(g) - k] for g in groups if len(g) > k])
        out.append(prods.mean() / denom)
        used.append(len(prods))
    acf = pd.Series(out, index=pd.RangeIndex(maxlag + 1, name="lag"), name="ACF")
    acf.attrs["n_used"] = np.array(used)  # pairs behind each lag (nlme's attr "n.used")
    return acf


def require_iid_residuals(m, what: str, package: str = "lme4") -> None:
    """A NotImplementedError for methods that assume R = σ²I (lme4's, lmerTest's, pbkrtest's):
    an nlme error structure adds parameters they do not know."""
    if getattr(m, "errors", None) is not None:
        raise NotImplementedError(f"{what} is implemented for residuals with covariance σ²I, as in {package}; "
                                  "this model has an error structure (correlation= or weights=)")


def structure_intervals(f, theta: np.ndarray, psi: np.ndarray, errors: ErrorModel,
                        level: float = 0.95) -> pd.DataFrame:
    """Wald intervals for the structure's parameters, on the natural scale (as nlme's ``intervals``).

    ``f`` is −2 log L (ML) or the REML criterion as a function of x = (θ, ψ),
    profiled over β and σ (θ empty for a model without random effects), at
    the estimates ``theta`` and ``psi``.  The covariance of x̂ is 2 H⁻¹ (H the
    Hessian of f; the ψ block of the inverse of a profiled Hessian is that of
    the full one).  Intervals are ψ̂ ± z·se on the unconstrained scale, mapped
    through the same monotone transforms as the estimates (tanh for φ, exp for
    ratios).
    """
    from scipy.stats import norm

    k, x = len(psi), np.concatenate([theta, psi]).astype(float)
    H = hessian(f, x, rel=1e-3, floor=1.0)  # steps well above the noise of f
    est = errors.natural(psi)
    try:
        V = 2.0 * np.linalg.inv(H)
        se = np.sqrt(np.diag(V)[-k:])
    except np.linalg.LinAlgError:
        se = np.full(k, np.nan)
    z = norm.ppf(0.5 + level / 2)
    lower, upper = [], []
    for j in range(k):
        bounds = []
        for sign in (-1, 1):
            moved = np.array(psi, dtype=float)
            moved[j] += sign * z * se[j]
            bounds.append(errors.natural(moved).iloc[j])
        lower.append(min(bounds)), upper.append(max(bounds))
    return pd.DataFrame({"lower": lower, "est.": est.to_numpy(), "upper": upper}, index=est.index)


def plot_acf(acf: pd.Series, nobs: int | None = None, ax=None, level: float = 0.95):
    """Bar plot of a residual autocorrelation function with ±z/√N(k) bounds, as nlme's plot(ACF(m)).

    N(k) is the number of within-group pairs at lag k, which ``acf()`` records;
    for a Series without that record, ``nobs`` gives constant bounds ±z/√nobs.
    """
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    lags = acf.index.to_numpy()
    ax.vlines(lags, 0, acf.to_numpy(), colors="C0", lw=3)
    ax.axhline(0, color="black", lw=0.8)
    n_used = acf.attrs.get("n_used")
    n = np.asarray(n_used, float) if n_used is not None else np.full(len(lags), float(nobs))
    bound = norm.ppf(0.5 + level / 2) / np.sqrt(n)
    ax.step(lags, bound, where="mid", color="grey", ls="--", lw=0.8)
    ax.step(lags, -bound, where="mid", color="grey", ls="--", lw=0.8)
    ax.set_xlabel("lag")
    ax.set_ylabel("autocorrelation")
    return ax
