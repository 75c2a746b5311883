"""Bound-constrained minimisation of the profiled deviance, and its record.

lme4 minimises over θ with Powell's BOBYQA through NLopt (``nloptwrap``);
lmelib does the same with the ``nlopt`` package, at lme4's strict tolerances, and
then checks the boundary: a diagonal element of λ that ends near zero is set to
exactly zero when that does not increase the objective beyond rounding error,
so that a singular fit is reported as singular (MixedModels.jl does the same
check).  Finally a few Newton steps with finite-difference derivatives, or with
the analytic gradient where it is cheaper (gradient.py), polish the optimum, so
that every digit the book prints is the same on any machine, whatever its BLAS
kernel, thread count or the order of the data's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import nlopt
import numpy as np

# the polish's finite differences
from .derivatives import central_differences, hessian_offdiagonal

__all__ = ["OptSummary", "minimize", "polish_and_settle"]

_RESULTS = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maximum number of evaluations reached",
    nlopt.MAXTIME_REACHED: "maximum time reached",
    nlopt.ROUNDOFF_LIMITED: "roundoff limited",
}


# The polish after BOBYQA (see ``polish``): three-point differences with steps
# FD_REL × max(|x|, FD_FLOOR) for the Hessian and the first step, five-point ones with steps
# FD_WIDE times longer for the steps after it; steps below LOCAL_STEP relative are taken without
# a line search; at most POLISH_MAXIT steps.  The polish stops when the distance left to the zero
# of the gradient, predicted from the contraction rate of the chord iteration, is below STEP_TOL
# relative; a rate above SLOW_RATE is not trusted.
FD_REL = 2e-4
FD_FLOOR = 0.1
STEP_TOL = 1e-9
LOCAL_STEP = 1e-4
POLISH_MAXIT = 10
SLOW_RATE = 0.5
FD_WIDE = 10.0
# A bounded element within BOUNDARY_ZONE of its bound is put on it when the objective rises by
# no more than rounding error, BOUNDARY_RTOL × max(1, |f|): at a variance of zero the profiled
# deviance is flat to first order (it depends on θᵢ²), so 1e-7 and 0 differ by ~1e-14 in f.
BOUNDARY_ZONE = 1e-4
BOUNDARY_RTOL = 1e-12
# The polish with an analytic gradient (``gradient_polish``): the Hessian from forward differences
# of the gradient, steps GRAD_FD_REL × max(|x|, FD_FLOOR), made again after a step longer than
# LONG_STEP relative; at most GRAD_MAXIT steps.
GRAD_FD_REL = 1e-6
LONG_STEP = 1e-3
GRAD_MAXIT = 30


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
    returnvalue: str  # BOBYQA's own stopping message
    boundary_moves: int  # elements of θ set to their bound after the optimiser stopped
    polish_feval: int = 0  # evaluations spent by the Newton polish (included in feval)
    polish_gradients: int = 0  # of them, evaluations with the analytic gradient
    polish_steps: int = 0  # Newton steps taken
    grad_norm: float = float("nan")  # max |∂f/∂x| over the free elements at the final point

    @property
    def converged(self) -> bool:
        return self.returnvalue in ("success", "ftol reached", "xtol reached", "stopval reached",
                                    "roundoff limited")

    def __str__(self) -> str:
        rows = [
            ("optimizer", f"{self.optimizer}, then Newton polish"),
            ("initial", np.array2string(self.initial, precision=5)),
            ("final", np.array2string(self.final, precision=5)),
            ("objective", f"{self.fmin:.6f}"),
            ("evaluations", f"{self.feval} ({self.polish_feval} in the polish, {self.polish_gradients} of them "
                            f"with the gradient; {self.polish_steps} Newton steps)"),
            ("gradient", f"max |grad| {self.grad_norm:.1e} over the free parameters"),
            ("tolerances", f"ftol_rel={self.ftol_rel:g}, ftol_abs={self.ftol_abs:g}, xtol_abs={self.xtol_abs:g}"),
            ("returned", self.returnvalue),
        ]
        return "\n".join(f"{k:<12} {v}" for k, v in rows)

    def brief(self) -> str:
        """What a summary shows: how the fit converged, without the counts and messages that
        differ between machines."""
        rows = [("optimizer", f"{self.optimizer}, then Newton polish"),
                ("converged", "yes" if self.converged else f"no ({self.returnvalue})")]
        on_bound = int(np.sum(np.isfinite(self.lower) & (self.final == self.lower)))
        if on_bound:
            rows.append(("on bound", f"{on_bound} element(s) of θ at their lower bound 0 (singular fit)"))
        return "\n".join(f"{k:<12} {v}" for k, v in rows)


def _settle_boundary(f: Callable, x: np.ndarray, fx: float, lower: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Put near-zero bounded elements on their bound when that is no worse (to rounding error)."""
    moves = 0
    for i in np.flatnonzero(np.isfinite(lower)):
        if 0 < x[i] - lower[i] < BOUNDARY_ZONE:
            trial = x.copy()
            trial[i] = lower[i]
            ft = f(trial)
            if ft <= fx + BOUNDARY_RTOL * max(1.0, abs(fx)):
                x, fx, moves = trial, ft, moves + 1
    return x, fx, moves


def _fd_steps(x: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Steps FD_REL × max(|x|, FD_FLOOR), shortened to stay inside the bounds."""
    h = FD_REL * np.maximum(np.abs(x), FD_FLOOR)
    return np.where(x - lower < 2 * h, (x - lower) / 2, h)


def _newton_direction(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """−H⁻¹g with H made positive definite (eigenvalues floored at 1e-8 of the largest)."""
    w, V = np.linalg.eigh(H)
    w = np.maximum(np.abs(w), 1e-8 * max(np.abs(w).max(), 1e-300))
    return -V @ ((V.T @ g) / w)


def _sharper(H: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, float]:
    """H with the diagonal ``d2`` of the five-point differences, and a bound on the contraction
    rate of chord steps with it: twice ‖H⁻¹ΔH‖ for the change ΔH of the diagonal (the
    off-diagonal elements, from the same three-point evaluations, are taken as no better)."""
    new = H.copy()
    new[np.diag_indices_from(new)] = d2
    try:
        rate = 2 * float(np.linalg.norm(np.linalg.solve(new, np.diag(d2 - np.diag(H))), 2))
    except np.linalg.LinAlgError:
        rate = 1.0
    return new, rate


def polish(f: Callable, x: np.ndarray, fx: float, lower: np.ndarray,
           pair_evals: int = 2) -> tuple[np.ndarray, float, int, float]:
    """Newton steps on the elements not on their bound, from where BOBYQA stopped.

    BOBYQA stops where its tolerances say, which leaves the last digits of θ to the rounding of
    the particular machine (BLAS kernel, row order).  The polish finds the zero of the
    central-difference gradient instead, a point that does not depend on where it starts: one
    finite-difference Hessian, then chord Newton steps (the same Hessian, a new gradient each
    step).  The first step uses three-point differences, the same evaluations as the Hessian;
    the steps after it five-point differences with steps FD_WIDE times longer, whose rounding
    error is FD_WIDE times smaller and whose truncation error, O(h⁴), is negligible: their zero is the
    optimum to ~1e-10, the same from any start, row order or BLAS kernel.  The chord iteration
    contracts linearly, each step about r times the one before, so after a step p the zero is
    about |p| r/(1 − r) away; the polish stops once that is below STEP_TOL relative, without a
    further gradient to confirm it.  For the first five-point step, r is bounded from how much
    the five-point diagonal changes the Hessian (``_sharper``); after that it is the ratio of two
    steps, trusted up to SLOW_RATE (near the zero a ratio of rounding errors is no contraction).
    Far from the zero (a step over LOCAL_STEP relative) a step is halved until the objective does
    not rise; close to it the steps are taken as they come, since there the objective changes by
    less than its rounding error.  A polish that ends worse than it started, beyond rounding, is
    undone.
    The Hessian's off-diagonal elements cost two evaluations per pair (``pair_evals=2``), or one
    (``pair_evals=1``, from the first gradient and diagonal: O(h) accurate, enough for chord
    steps, whose end point does not depend on the Hessian), for objectives as costly as a GLMM's.
    Returns (x, f(x), steps, max |gradient|).
    """
    free = np.flatnonzero(~(x <= lower))
    if len(free) == 0:
        return x, fx, 0, 0.0
    x0, f0 = x, fx
    noise = 1e-13 * max(1.0, abs(fx))
    H, steps, gnorm, last, wide = None, 0, float("nan"), None, False
    for _ in range(POLISH_MAXIT):
        reached = x[free] <= lower[free]  # a step that ended on a bound: that element leaves
        if np.any(reached):
            free = free[~reached]
            H = None if H is None else H[np.ix_(~reached, ~reached)]
            if len(free) == 0:
                break
        h = _fd_steps(x, lower)
        if wide:  # five-point differences reach 2h: stay inside the bounds
            h = np.minimum(FD_WIDE * h, np.where(np.isfinite(lower), (x - lower) / 2, np.inf))
        g, d2 = central_differences(f, x, fx, free, h, wide)
        gnorm = float(np.max(np.abs(g)))
        if H is None:
            H = hessian_offdiagonal(f, x, free, h, d2, fx, g if pair_evals == 1 else None)
        if wide and last is None:  # the wide diagonal is the better one; the change bounds the rate
            H, rate = _sharper(H, d2)
        p = np.zeros_like(x)
        p[free] = _newton_direction(H, g)
        p = _inside(x, p, lower, free)
        size = np.max(np.abs(p) / np.maximum(np.abs(x), FD_FLOOR))
        if wide and last is not None:  # the ratio of two steps from wide differences
            rate = size / last if last > 0 else 0.0
        if size < LOCAL_STEP:
            x = np.maximum(x + p, lower)
            fx, steps = f(x), steps + 1
            if wide and (size < STEP_TOL or (rate < SLOW_RATE and size * rate / (1 - rate) < STEP_TOL)):
                break
            last, wide = (size if wide else None), True
            continue
        for _ in range(6):
            trial = np.maximum(x + p, lower)
            ft = f(trial)
            if ft <= fx + noise:
                x, fx, steps = trial, ft, steps + 1
                break
            p /= 2
        else:
            break
    if fx > f0 + 1e3 * noise:
        return x0, f0, 0, gnorm
    return x, fx, steps, gnorm


def gradient_polish(fg: Callable, x: np.ndarray, fx: float,
                    lower: np.ndarray) -> tuple[np.ndarray, float, int, float]:
    """``polish`` for an objective with an analytic gradient, ``fg(x) -> (f(x), ∇f(x))``.

    Newton steps on the elements not on their bound, with the Hessian from forward differences
    of the gradient (one gradient per free element; made again after a long step): the end point
    is the zero of the exact gradient to STEP_TOL relative, whatever the start, row order or BLAS
    kernel, for a few gradients instead of ``polish``'s finite differences of f.  A step goes at
    most half-way to a bound (``_settle_boundary`` puts an element on it afterwards); far from
    the zero (a step over LOCAL_STEP relative) it is halved until the objective does not rise.
    Returns (x, f(x), steps, max |gradient| over the free elements).
    """
    free = np.flatnonzero(~(x <= lower))
    if len(free) == 0:
        return x, fx, 0, 0.0
    x0, f0 = x, fx
    noise = 1e-13 * max(1.0, abs(fx))
    fx, g = fg(x)
    H, steps = None, 0
    for _ in range(GRAD_MAXIT):
        if H is None:
            H = _gradient_hessian(fg, x, g, free)
        p = np.zeros_like(x)
        p[free] = _newton_direction(H, g[free])
        p = _inside(x, p, lower, free, share=0.5)
        size = np.max(np.abs(p) / np.maximum(np.abs(x), FD_FLOOR))
        if size < STEP_TOL:  # the zero is within STEP_TOL: x is the optimum to that precision
            break
        for _ in range(10):
            trial = x + p
            ft, gt = fg(trial)
            if size < LOCAL_STEP or ft <= fx + noise:
                break
            p, size = p / 2, size / 2
        else:
            break
        x, fx, g, steps = trial, ft, gt, steps + 1
        if size > LONG_STEP:
            H = None
    gnorm = float(np.max(np.abs(g[free])))
    if fx > f0 + 1e3 * noise:
        return x0, f0, 0, gnorm
    return x, fx, steps, gnorm


def _gradient_hessian(fg: Callable, x: np.ndarray, g: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The Hessian over the free elements from forward differences of the gradient, symmetrised."""
    h = GRAD_FD_REL * np.maximum(np.abs(x), FD_FLOOR)
    H = np.empty((len(free), len(free)))
    for a, i in enumerate(free):
        step = np.zeros_like(x)
        step[i] = h[i]  # upwards: never below a bound
        H[:, a] = (fg(x + step)[1][free] - g[free]) / h[i]
    return (H + H.T) / 2


def polish_and_settle(f: Callable, x: np.ndarray, fx: float, lower: np.ndarray,
                      pair_evals: int = 2, fg: Callable | None = None) -> tuple[np.ndarray, float, int, int, float]:
    """``polish`` (or ``gradient_polish`` when ``fg`` gives the gradient), then the boundary
    settled; an element the polish brought near its bound is put on it and the others polished
    again.  Returns (x, f(x), boundary moves, steps, max |gradient|)."""
    run = (lambda x, fx: polish(f, x, fx, lower, pair_evals)) if fg is None else (
        lambda x, fx: gradient_polish(fg, x, fx, lower))
    x, fx, steps, gnorm = run(x, fx)
    x, fx, moves = _settle_boundary(f, x, fx, lower)
    if moves:
        x, fx, more, gnorm = run(x, fx)
        steps += more
    return x, fx, moves, steps, gnorm


def _inside(x, p, lower, free, share: float = 1.0) -> np.ndarray:
    """Shorten a step so that no free element goes further than ``share`` of the way to its bound."""
    room = share * (x - lower)[free]
    neg = p[free] < 0
    if np.any(neg & (-p[free] > room)):
        t = np.min(room[neg] / -p[free][neg])
        p = p * t
    return p


def minimize(
    f: Callable[[np.ndarray], float],
    start: np.ndarray,
    lower: np.ndarray,
    *,
    ftol_rel: float = 1e-10,
    ftol_abs: float = 1e-8,
    xtol_abs: float = 1e-8,
    maxeval: int = 100_000,
    polish_result: bool = True,
    initial_step: np.ndarray | None = None,
    gradient: Callable | None = None,
) -> OptSummary:
    """Minimise ``f`` over θ ≥ lower with BOBYQA, then settle the boundary and polish the rest.

    BOBYQA stops at lme4's stricter tolerances (``xtol_abs`` and ``ftol_abs`` 1e-8, the values
    lme4's ``?convergence`` suggests for checking a fit): the Newton polish after it settles
    the last digits, so tighter ones would only add evaluations.

    Returns the record of the run.  With ``polish_result=False`` (a first stage whose result is
    only a start) the Newton polish is skipped.  ``initial_step``: BOBYQA's initial steps per
    element (NLopt scales the variables by them; by default NLopt's own).  ``gradient``:
    ``x -> (f(x), ∇f(x))`` when the gradient is known (a linear mixed model's, gradient.py), for
    the polish only: BOBYQA, as lme4's, uses none.
    """
    start = np.asarray(start, dtype=float)
    lower = np.asarray(lower, dtype=float)
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
    if initial_step is not None:
        opt.set_initial_step(np.asarray(initial_step, dtype=float))

    def run(x0):
        try:
            x = np.asarray(opt.optimize(x0), dtype=float)
            return x, opt.last_optimum_value(), opt.last_optimize_result()
        except nlopt.RoundoffLimited:
            # BOBYQA stops when rounding errors swamp the decrease it can still make, typically
            # with a variance at its bound 0; the best point evaluated is the optimum to working
            # precision (lme4's nloptwrap reports this code, -4, as a warning only).
            return best[0].copy(), best[1], nlopt.ROUNDOFF_LIMITED

    fun = lambda t: objective(t, None)  # noqa: E731
    with_gradient = [0]

    def fg(x):  # an evaluation with the gradient counts as one evaluation
        count[0] += 1
        with_gradient[0] += 1
        return gradient(x)
    x, fx, code = run(start)
    x, fx, moves = _settle_boundary(fun, x, fx, lower)
    if np.any(x[np.isfinite(lower)] == lower[np.isfinite(lower)]):
        # on the boundary (a singular fit) the remaining parameters lie on a flat ridge:
        # one more run from there, with a fresh trust region, settles them
        x2, fx2, code2 = run(x)
        if fx2 < fx:
            x, fx, code = x2, fx2, code2
            x, fx, more = _settle_boundary(fun, x, fx, lower)
            moves += more
    before, steps, gnorm = count[0], 0, float("nan")
    if polish_result:
        x, fx, more, steps, gnorm = polish_and_settle(fun, x, fx, lower, fg=None if gradient is None else fg)
        moves += more
    return OptSummary(
        optimizer="NLOPT_LN_BOBYQA",
        initial=start,
        lower=lower,
        final=x,
        fmin=float(fx),
        feval=count[0],
        ftol_rel=ftol_rel,
        ftol_abs=ftol_abs,
        xtol_abs=xtol_abs,
        maxeval=maxeval,
        returnvalue=_RESULTS.get(code, f"nlopt code {code}"),
        boundary_moves=moves,
        polish_feval=count[0] - before,
        polish_gradients=with_gradient[0],
        polish_steps=steps,
        grad_norm=gnorm,
    )
