"""Bound-constrained minimisation of the profiled deviance, and its record.

lme4 minimises over θ with Powell's BOBYQA through NLopt (``nloptwrap``);
lmelib does the same with the ``nlopt`` package, with tighter tolerances, and
then checks the boundary: a diagonal element of λ that ends near zero is set to
exactly zero when that does not increase the objective, so that a singular fit
is reported as singular (MixedModels.jl does the same check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import nlopt
import numpy as np

__all__ = ["OptSummary", "minimize"]

_RESULTS = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maximum number of evaluations reached",
    nlopt.MAXTIME_REACHED: "maximum time reached",
}


@dataclass(frozen=True)
class OptSummary:
    """Optimiser settings and results in one record (MixedModels.jl's OptSummary)."""

    optimizer: str
    initial: np.ndarray
    lower: np.ndarray
    final: np.ndarray
    fmin: float
    feval: int
    ftol_rel: float
    ftol_abs: float
    xtol_abs: float
    maxeval: int
    returnvalue: str
    boundary_moves: int  # elements of θ set to their bound after the optimiser stopped

    @property
    def converged(self) -> bool:
        return self.returnvalue in ("success", "ftol reached", "xtol reached", "stopval reached")

    def __str__(self) -> str:
        rows = [
            ("optimizer", self.optimizer),
            ("initial", np.array2string(self.initial, precision=5)),
            ("final", np.array2string(self.final, precision=5)),
            ("objective", f"{self.fmin:.6f}"),
            ("evaluations", str(self.feval)),
            ("tolerances", f"ftol_rel={self.ftol_rel:g}, ftol_abs={self.ftol_abs:g}, xtol_abs={self.xtol_abs:g}"),
            ("returned", self.returnvalue),
        ]
        return "\n".join(f"{k:<12} {v}" for k, v in rows)


def _boundary_check(f: Callable, x: np.ndarray, fx: float, lower: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Move near-zero bounded elements onto the bound when that is no worse."""
    moves = 0
    for i in np.flatnonzero(np.isfinite(lower)):
        if 0 < x[i] - lower[i] < 1e-4:
            trial = x.copy()
            trial[i] = lower[i]
            ft = f(trial)
            if ft <= fx:
                x, fx, moves = trial, ft, moves + 1
    return x, fx, moves


def minimize(
    f: Callable[[np.ndarray], float],
    start: np.ndarray,
    lower: np.ndarray,
    *,
    ftol_rel: float = 1e-12,
    ftol_abs: float = 1e-10,
    xtol_abs: float = 1e-10,
    maxeval: int = 100_000,
) -> OptSummary:
    """Minimise ``f`` over θ ≥ lower with BOBYQA; returns the record of the run."""
    start = np.asarray(start, dtype=float)
    count = [0]

    def objective(x, grad):  # NLopt's signature; BOBYQA uses no gradient
        count[0] += 1
        return float(f(x))

    opt = nlopt.opt(nlopt.LN_BOBYQA, len(start))
    opt.set_min_objective(objective)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_ftol_rel(ftol_rel)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(maxeval)
    x = np.asarray(opt.optimize(start), dtype=float)
    fx, code = opt.last_optimum_value(), opt.last_optimize_result()
    x, fx, moves = _boundary_check(lambda t: objective(t, None), x, fx, lower)
    return OptSummary(
        optimizer="NLOPT_LN_BOBYQA",
        initial=start,
        lower=np.asarray(lower, dtype=float),
        final=x,
        fmin=float(fx),
        feval=count[0],
        ftol_rel=ftol_rel,
        ftol_abs=ftol_abs,
        xtol_abs=xtol_abs,
        maxeval=maxeval,
        returnvalue=_RESULTS.get(code, f"nlopt code {code}"),
        boundary_moves=moves,
    )
