"""Confidence intervals for the parameters of a linear mixed model (lme4's ``confint.merMod``).

Rows are lme4's: the variance parameters on the sd/correlation scale
(``.sig01``, ``.sig02``, ..., ``.sigma``; see :mod:`lmelib.profile`), then the
fixed effects; columns the interval ends as R names them (``"2.5 %"``,
``"97.5 %"``).  Three methods:

* ``"profile"`` (the default): where the likelihood profile ζ crosses ±z
  (Bates et al. 2015, section 5.1); a REML fit is profiled on the ML deviance,
  as lme4 does.
* ``"Wald"``: β̂ ± z·se(β̂) for the fixed effects, NaN for the variance
  parameters, whose sampling distributions are too skewed for it (lme4 gives
  NA too).
* ``"boot"``: percentile intervals from a parametric bootstrap (lme4's
  ``bootMer`` with ``boot.ci``'s "perc", "basic" or "norm" intervals; Davison &
  Hinkley 1997, ch. 5).  The draws come from ``lmelib.simulate.bootstrap``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .profile import interval_labels, profile, varpar, varpar_names
from .simulate import bootstrap

__all__ = ["confint", "wald_confint", "boot_confint", "percentile_interval"]


def confint(
    m,
    parm=None,
    level: float = 0.95,
    method: str = "profile",
    nsim: int = 500,
    seed=None,
    boot_type: str = "perc",
    progress: bool = True,
    **profile_args,
) -> pd.DataFrame:
    """Confidence intervals for the parameters of ``m``, in lme4's layout.

    ``parm`` selects rows by name, or ``"theta_"`` (variance parameters) and
    ``"beta_"`` (fixed effects); default all.  ``nsim``, ``seed`` and
    ``boot_type`` are for ``method="boot"``; other keywords go to
    :func:`lmelib.profile.profile`.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if method == "profile":
        return profile(m, which=parm, **profile_args).confint(level)
    if method == "Wald":
        return _rows(wald_confint(m, level), parm, m)
    if method == "boot":
        return _rows(boot_confint(m, level, nsim, seed, boot_type, progress), parm, m)
    raise ValueError(f"method must be 'profile', 'Wald' or 'boot', got {method!r}")


def _rows(table: pd.DataFrame, parm, m) -> pd.DataFrame:
    """The rows ``parm`` names (lme4's ``get.which``), in the model's order."""
    if parm is None:
        return table
    names = list(table.index)
    nvp = len(varpar_names(m))
    wanted = set()
    for p in [parm] if isinstance(parm, str) else parm:
        if p == "theta_":
            wanted |= set(names[:nvp])
        elif p == "beta_":
            wanted |= set(names[nvp:])
        elif p in names:
            wanted.add(p)
        else:
            raise KeyError(f"{p!r} is not a parameter of the model; parameters: {', '.join(names)}")
    return table.loc[[n for n in names if n in wanted]]


def wald_confint(m, level: float = 0.95) -> pd.DataFrame:
    """β̂ ± z_{(1+level)/2} se(β̂); NaN rows for the variance parameters."""
    a = (1 - level) / 2
    import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
    z = scipy.stats.norm.ppf([a, 1 - a])
    fixed = m.fixef.to_numpy()[:, None] + np.sqrt(np.diag(m.vcov))[:, None] * z
    nan = np.full((len(varpar_names(m)), 2), np.nan)
    return pd.DataFrame(np.vstack([nan, fixed]), index=varpar_names(m) + list(m.frame.x_names),
                        columns=interval_labels(level))


def _statistics(fit) -> pd.Series:
    """What lme4's ``confint(method="boot")`` bootstraps: sd/correlation parameters, σ and β."""
    return pd.concat([varpar(fit), fit.fixef])


def boot_confint(m, level: float = 0.95, nsim: int = 500, seed=None, boot_type: str = "perc",
                 progress: bool = True) -> pd.DataFrame:
    """Parametric-bootstrap intervals: refit to ``nsim`` responses simulated from ``m``."""
    result = bootstrap(m, nsim, seed=seed, func=_statistics, progress=progress)
    t0 = result.t0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = [_boot_ci(result.draws[name].to_numpy(), t0[name], level, boot_type) for name in t0.index]
    for message in dict.fromkeys(str(w.message) for w in caught):  # once each, not once per row
        warnings.warn(f"{message} (only {len(result.draws)} draws for level {level})",
                      UserWarning, stacklevel=2)
    return pd.DataFrame(rows, index=list(t0.index), columns=interval_labels(level))


def _boot_ci(t: np.ndarray, t0: float, level: float, boot_type: str) -> np.ndarray:
    """One row of ``boot::boot.ci``: percentile, basic or normal interval."""
    t = t[np.isfinite(t)]
    if boot_type == "perc":
        return percentile_interval(t, [(1 - level) / 2, (1 + level) / 2])
    if boot_type == "basic":
        return 2 * t0 - percentile_interval(t, [(1 + level) / 2, (1 - level) / 2])
    if boot_type == "norm":
        import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
        bias, half = t.mean() - t0, np.std(t, ddof=1) * scipy.stats.norm.ppf((1 + level) / 2)
        return np.array([t0 - bias - half, t0 - bias + half])
    raise ValueError(f"boot_type must be 'perc', 'basic' or 'norm', got {boot_type!r}")


def percentile_interval(t: np.ndarray, alpha) -> np.ndarray:
    """Quantiles of the draws ``t`` as ``boot``'s ``norm.inter`` takes them.

    The α quantile is the (R + 1)α-th order statistic; between two order
    statistics it interpolates on the normal quantile scale (Davison & Hinkley
    1997, eqn. 5.8); beyond the extremes it takes the extreme.
    """
    t = np.sort(np.asarray(t, dtype=float)[np.isfinite(t)])
    R, alpha = len(t), np.asarray(alpha, dtype=float)
    rk = (R + 1) * alpha
    if not np.all((rk > 1) & (rk < R)):
        warnings.warn("extreme order statistics used as endpoints", UserWarning, stacklevel=3)
    k = np.trunc(rk).astype(int)
    out = np.empty(len(alpha))
    for i, (ki, ri, a) in enumerate(zip(k, rk, alpha)):
        if ki == 0:
            out[i] = t[0]
        elif ki >= R:
            out[i] = t[-1]
        elif ki == ri:
            out[i] = t[ki - 1]
        else:
            import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
            z, z0, z1 = scipy.stats.norm.ppf([a, ki / (R + 1), (ki + 1) / (R + 1)])
            out[i] = t[ki - 1] + (z - z0) / (z1 - z0) * (t[ki] - t[ki - 1])
    return out
