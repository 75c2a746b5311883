"""Simulating responses from a fitted model, and the parametric bootstrap.

A fitted linear mixed model is a recipe for new data (Bates et al. 2015,
eqns. 2-4, with b = Λθ u as in eqns. 10-11):

    u ~ N(0, I_q),   b = σ Λθ u,   ε ~ N(0, σ² I_n),   y = X β + Z b + ε,

with β, θ and σ at their estimates.  With a residual error structure
(structures.py: R = σ² S C S, whitened by T = L⁻¹ S⁻¹) the errors are
ε = T⁻¹ e with e ~ N(0, σ² I_n), so that Var(ε) = σ² T⁻¹ T⁻ᵀ = R.  ``simulate`` follows it unconditionally,
as lme4's ``simulate(m, use.u = FALSE)``: every level of every grouping factor
gets a new random effect, so a simulated data set varies as a new sample of
schools (or subjects) would, not only as new pupils in the same schools.  For a
linear model (``lm``) there is no b and σ is the residual standard error with
n − p degrees of freedom, as R's ``simulate.lm``.

The parametric bootstrap (Davison & Hinkley 1997, ch. 2; lme4's ``bootMer``)
refits the model to each simulated response and collects a statistic of each
refit.  The spread of the collected statistics estimates their sampling
distribution under the fitted model; its percentiles give confidence
intervals, and the same machinery gives the null distribution of a
likelihood-ratio statistic (``lmelib.anova(..., nsim=...)``).

Random numbers come from ``numpy.random.default_rng(seed)``: the same seed
gives the same draws, and the k-th response of ``bootstrap(m, nsim, seed)`` is
column k of ``simulate(m, nsim, seed)``.

References: Bates, Mächler, Bolker & Walker (2015), J. Stat. Softw. 67(1);
Davison & Hinkley (1997), Bootstrap Methods and their Application.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import nlopt
import numpy as np
import pandas as pd

__all__ = ["simulate", "refit", "bootstrap", "BootstrapResult", "theta_names"]

# Errors a refit to a simulated response can raise; such a draw is counted as
# failed and dropped (lme4's bootMer keeps it as NA and warns).
FIT_ERRORS = (
    FloatingPointError,
    np.linalg.LinAlgError,
    nlopt.RoundoffLimited,
    nlopt.ForcedStop,
    RuntimeError,
)


# ------------------------------------------------------------- simulation


def _check_model(m) -> None:
    """A model simulates if it provides ``simulator()`` and ``refit_response(y)`` (lmer, glmer, lm fits)."""
    if not (hasattr(m, "simulator") and hasattr(m, "refit_response")):
        raise TypeError(f"expected a model fitted by lmelib.lmer, glmer or lm, got {type(m).__name__}")


def simulate(m, nsim: int = 1, seed=None) -> pd.DataFrame:
    """``nsim`` responses simulated from the fitted model ``m``, one column each.

    New random effects and new errors for every simulation (lme4's
    ``simulate(m, nsim, seed, use.u = FALSE)``); columns are named ``sim_1``,
    ``sim_2``, ... as in R, and ``attrs["seed"]`` records the seed.
    """
    _check_model(m)
    if int(nsim) < 1:
        raise ValueError(f"nsim must be at least 1, got {nsim}")
    rng, draw = np.random.default_rng(seed), m.simulator()
    sims = {f"sim_{i + 1}": draw(rng) for i in range(int(nsim))}
    out = pd.DataFrame(sims)
    out.attrs["seed"] = seed
    return out


def refit(m, newresp):
    """The model ``m`` fitted again, to a new response (lme4's ``refit(m, newresp)``).

    Formula, X, Z, the error structure and the REML/ML choice are kept; only y changes.
    """
    _check_model(m)
    y = np.asarray(newresp, dtype=float).ravel()
    if y.shape != (m.nobs,):
        raise ValueError(f"the new response has {y.size} values, the model {m.nobs} observations")
    if not np.all(np.isfinite(y)):
        raise ValueError("the new response has missing or infinite values")
    return m.refit_response(y)


# -------------------------------------------------------------- bootstrap


def theta_names(m) -> list[str]:
    """lme4's names for θ: ``school.(Intercept)``, ``school.math3.(Intercept)``, ..."""
    names = []
    for term in m.frame.terms:
        cols = term.columns
        for j in range(term.ell):  # column-major lower triangle, as θ is stored
            for i in range(j, term.ell):
                pair = cols[i] if i == j else f"{cols[i]}.{cols[j]}"
                names.append(f"{term.name}.{pair}")
    return names


def _default_statistics(m) -> pd.Series:
    """β̂, θ̂, the error structure's parameters and σ̂ of a fit (θ only for a mixed model)."""
    parts = [m.fixef]
    if hasattr(m, "theta"):
        parts.append(pd.Series(m.theta, index=theta_names(m)))
    if hasattr(m, "structure"):
        parts.append(m.structure)
    if not hasattr(m, "family"):  # a GLMM's σ is 1, not a parameter
        parts.append(pd.Series({"sigma": m.sigma}))
    return pd.concat(parts)


def _as_row(value) -> pd.Series:
    """A statistic as a row of the draws table (a scalar becomes column ``value``)."""
    if isinstance(value, pd.Series):
        return value.astype(float)
    if isinstance(value, dict):
        return pd.Series(value, dtype=float)
    arr = np.asarray(value, dtype=float)
    return pd.Series({"value": float(arr)}) if arr.ndim == 0 else pd.Series(arr.ravel())


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Draws of a statistic over parametric-bootstrap refits (lme4's ``bootMer``).

    ``draws`` has one row per successful refit; ``t0`` is the statistic of the
    original fit; ``failed`` counts refits that raised an error and were dropped;
    ``nsim_done`` (successful plus failed) is less than ``nsim_requested`` when
    the run was interrupted.  ``seed`` reproduces the draws.
    """

    draws: pd.DataFrame
    t0: pd.Series
    nsim_requested: int
    seed: object
    failed: int = 0

    @property
    def nsim_done(self) -> int:
        return len(self.draws) + self.failed

    @property
    def complete(self) -> bool:
        return self.nsim_done == self.nsim_requested

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals: the (1 − level)/2 and (1 + level)/2 quantiles of the draws."""
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, got {level}")
        if len(self.draws) == 0:
            raise ValueError("no bootstrap draws to compute an interval from")
        a = (1 - level) / 2
        q = self.draws.quantile([a, 1 - a]).T
        q.columns = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
        return q

    def __repr__(self) -> str:
        return (f"<BootstrapResult: {len(self.draws)} draws of {self.draws.shape[1]} statistic(s), "
                f"{self.failed} failed, {self.nsim_done} of {self.nsim_requested} done, seed={self.seed}>")


def _resolve_seed(seed):
    """A seed that reproduces the run: the given one, or fresh entropy recorded."""
    return np.random.SeedSequence().entropy if seed is None else seed


def bootstrap(
    m,
    nsim: int,
    seed=None,
    func: Callable | None = None,
    progress: bool = True,
) -> BootstrapResult:
    """Parametric bootstrap: simulate from ``m``, refit, apply ``func`` to each refit.

    ``func(fitted_model)`` returns a number, a dict or a Series (default: β̂,
    θ̂ and σ̂).  Refits use the same REML/ML choice as ``m``.  A progress bar
    appears for runs longer than a second.  Interrupting (Ctrl-C, or a
    ``KeyboardInterrupt`` raised by ``func``) keeps the draws made so far.
    """
    _check_model(m)
    if int(nsim) < 1:
        raise ValueError(f"nsim must be at least 1, got {nsim}")
    nsim, seed = int(nsim), _resolve_seed(seed)
    func = func or _default_statistics
    t0 = _as_row(func(m))
    rng, draw = np.random.default_rng(seed), m.simulator()
    rows, failed, first_error = [], 0, None
    if progress:  # tqdm.auto only when a bar is wanted (in Jupyter it needs ipywidgets)
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    bar = tqdm(range(nsim), desc="bootstrap", disable=not progress, delay=1.0)
    try:
        for _ in bar:
            y = draw(rng)
            try:
                rows.append(_as_row(func(refit(m, y))))
            except FIT_ERRORS as err:
                failed, first_error = failed + 1, first_error or err
    except KeyboardInterrupt:
        warnings.warn(f"bootstrap interrupted after {len(rows) + failed} of {nsim} simulations; "
                      f"returning the {len(rows)} draws made so far", UserWarning, stacklevel=2)
    finally:
        bar.close()
    if failed:
        warnings.warn(f"{failed} of {len(rows) + failed} bootstrap refits failed and were dropped "
                      f"(first error: {first_error})", UserWarning, stacklevel=2)
    draws = pd.DataFrame(rows, columns=t0.index).reset_index(drop=True)
    return BootstrapResult(draws, t0, nsim, seed, failed)
