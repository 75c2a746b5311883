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

__all__ = ["OptSummary", "minimize", "hessian"]

_RESULTS = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maximum number of evaluations reached",
    nlopt.MAXTIME_REACHED: "maximum time reached",
    nlopt.ROUNDOFF_LIMITED: "roundoff limited",
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
        return self.returnvalue in ("success", "ftol reached", "xtol reached", "stopval reached",
                                    "roundoff limited")

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
    best = [start.copy(), np.inf]  # the best point evaluated, for a roundoff-limited stop

    def objective(x, grad):  # NLopt's signature; BOBYQA uses no gradient
        count[0] += 1
        fx = float(f(x))
        if fx < best[1]:
            best[0], best[1] = np.array(x, dtype=float), fx
        return fx

    opt = nlopt.opt(nlopt.LN_BOBYQA, len(start))
    opt.set_min_objective(objective)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_ftol_rel(ftol_rel)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(maxeval)
    def run(x0):
        try:
            x = np.asarray(opt.optimize(x0), dtype=float)
            return x, opt.last_optimum_value(), opt.last_optimize_result()
        except nlopt.RoundoffLimited:
            # BOBYQA stops when rounding errors swamp the decrease it can still make, typically
            # with a variance at its bound 0; the best point evaluated is the optimum to working
            # precision (lme4's nloptwrap reports this code, -4, as a warning only).
            return best[0].copy(), best[1], nlopt.ROUNDOFF_LIMITED

    x, fx, code = run(start)
    x, fx, moves = _boundary_check(lambda t: objective(t, None), x, fx, lower)
    if np.any(x[np.isfinite(lower)] == lower[np.isfinite(lower)]):
        # on the boundary (a singular fit) the remaining parameters lie on a flat ridge:
        # one more run from there, with a fresh trust region, settles them
        x2, fx2, code2 = run(x)
        if fx2 < fx:
            x, fx, code = x2, fx2, code2
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


def hessian(f, x, rel=1e-4, floor=1e-2) -> np.ndarray:
    """Central finite-difference Hessian, steps ``rel`` × max(|x|, ``floor``)."""
    k = len(x)
    h = rel * np.maximum(np.abs(x), floor)
    H = np.zeros((k, k))
    f0 = f(x)
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            if i == j:
                H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
            else:
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
    return H
