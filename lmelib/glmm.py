"""Generalized linear mixed models: ``glmer`` for binary, binomial and Poisson responses.

As lme4 (Bates et al. 2015, section 6 of the lme4 vignette; Bates' "lme4:
mixed-effects modeling with R", ch. 6): for given θ and β the conditional
modes u of the spherical random effects come from penalized iteratively
reweighted least squares (PIRLS), each step a weighted penalized least-squares
solve done by the LMM machinery (deviance.py) on the working response and
weights.  The Laplace approximation to −2 log L is then

    −2 Σ log p(y | μ̂) + ‖û‖² + log |L|²,   L Lᵀ = ΛᵀZᵀWZΛ + I,

and adaptive Gauss–Hermite quadrature refines it (``nagq > 1``) for a single
scalar random-effects term.  The fit runs in lme4's two stages: first θ alone
with β updated inside PIRLS, then θ and β together.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.linalg

from .formatting import fmt_lik
from .covariance import theta_bounds
from .deviance import PLSSolution, dense_rows
from .pirls import PIRLS, Mode, agq_correction
from .design import ModelFrame, model_frame
from .entry import is_dask_frame
from .family import Family, family as make_family
from .derivatives import hessian
from .optimize import OptSummary, minimize, polish_and_settle
from .ranef import new_codes_values, zb
from .fitted import MixedModel
from . import summary as _summary
from .threads import fit_threads

__all__ = ["glmer", "GeneralizedLinearMixedModel"]

# Steps of the Hessian behind vcov: each raises the deviance by about this much, far above its
# rounding error (1e-10 to 1e-9 on the reference models) and small enough for the truncation error
# (the deviance is close to quadratic over a few hundredths of a standard error).  Standard errors
# then agree to about 1e-9 across BLAS kernels and row orders (1e-5 with steps relative to |x|).
HESSIAN_RISE = 1e-3

# ------------------------------------------------------------------ response


def _as_numeric_binary(y: pd.Series, name: str) -> pd.Series:
    """A two-level category, string or boolean response as 0/1; as R, the first level is failure."""
    if pd.api.types.is_bool_dtype(y):
        return y.astype(float)
    if isinstance(y.dtype, pd.CategoricalDtype) or y.dtype == object or pd.api.types.is_string_dtype(y):
        cat = y.astype("category")
        levels = list(cat.cat.remove_unused_categories().cat.categories)
        if len(levels) != 2:
            raise ValueError(f"binomial response {name!r} must have exactly two levels, it has {levels}")
        return (y == levels[1]).astype(float).where(y.notna())
    return y


def _binomial_response(y: np.ndarray, weights: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(y, dtype=float)
    bad = (v < 0) | (v > 1)
    if bad.any():
        raise ValueError(f"binomial response {name!r} must lie in [0, 1] (a 0/1 outcome or a proportion "
                         f"with weights = trials); row {int(np.flatnonzero(bad)[0])} has {v[bad][0]:g}")
    k = v * weights
    off = np.abs(k - np.round(k)) > 1e-7
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(f"binomial response {name!r} times the weights must be whole numbers of successes; "
                         f"row {i} has {v[i]:g} × {weights[i]:g} = {k[i]:g}")
    return v


def _poisson_response(y: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(y, dtype=float)
    bad = (v < 0) | (np.abs(v - np.round(v)) > 1e-9)
    if bad.any():
        raise ValueError(f"Poisson response {name!r} must be non-negative whole counts; "
                         f"row {int(np.flatnonzero(bad)[0])} has {v[bad][0]:g}")
    return v


# ------------------------------------------------------------------ fit


def glmer(formula: str, data: pd.DataFrame, family: str = "binomial", link: str | None = None,
          weights=None, offset=None, nagq: int = 1, na_action: str = "omit") -> "GeneralizedLinearMixedModel":
    """Fit a GLMM by the Laplace approximation (``nagq=1``) or adaptive quadrature.

    ``family`` "binomial" (links logit, probit, cloglog) or "poisson" (log).  A
    binomial response is 0/1, boolean, a two-level category (the first level is
    failure, as R), a proportion with ``weights`` = number of trials, or
    ``cbind(successes, failures)`` as in lme4.  ``weights`` and ``offset`` are
    column names or arrays.  ``fitted()`` and ``residuals()`` are indexed by the
    data's rows used, or with ``na_action="exclude"`` padded with NaN to every
    row (R's na.exclude).
    """
    if is_dask_frame(data):
        raise NotImplementedError(
            "glmer cannot fit a Dask DataFrame out of core: PIRLS re-weights every row at each "
            "evaluation of the Laplace deviance, so each optimizer step would need a full pass over "
            "the data (hundreds of passes), unlike a linear mixed model whose cross-products are "
            "formed in one pass.  Fit a sample or an aggregate (e.g. binomial counts per group and "
            "covariate pattern, with weights=) with glmer on a pandas DataFrame instead.")
    fam = make_family(family, link)
    response = formula.split("~", 1)[0].strip() if isinstance(formula, str) else None
    if fam.name == "binomial" and response in getattr(data, "columns", ()):
        data = data.assign(**{response: _as_numeric_binary(data[response], response)})
    frame = model_frame(formula, data, residual=False, na_action=na_action, weights=weights, offset=offset)
    return GeneralizedLinearMixedModel.fit(frame, fam, nagq)


def _check_nagq(frame: ModelFrame, nagq: int) -> None:
    if nagq < 1:
        raise ValueError("nagq must be at least 1 (1 is the Laplace approximation)")
    if nagq > 1 and (len(frame.terms) != 1 or frame.terms[0].ell != 1):
        raise ValueError("adaptive Gauss-Hermite quadrature (nagq > 1) needs a single scalar "
                         "random-effects term, such as (1 | g)")


@dataclass(frozen=True, eq=False)
class GeneralizedLinearMixedModel(MixedModel):
    """A fitted GLMM (lme4's ``glmerMod``)."""

    frame: ModelFrame
    family: Family
    nagq: int
    y: np.ndarray
    prior_weights: np.ndarray
    offset: np.ndarray
    optsum: OptSummary
    mode: Mode
    pirls_iterations: int = 0  # inner PIRLS steps over the whole fit

    @classmethod
    def fit(cls, frame, fam: Family, nagq: int):
        _check_nagq(frame, nagq)
        pw, off = frame.prior_weights, (np.zeros(frame.n) if frame.offset is None else frame.offset)
        name = frame.formula.response
        y = (_binomial_response(frame.y, pw, name) if fam.name == "binomial"
             else _poisson_response(frame.y, name))
        pirls = PIRLS(frame, fam, y, pw, off)
        with fit_threads(dense_rows(frame)):
            optsum, mode = _optimize(pirls, frame, nagq)
        m = cls(frame, fam, nagq, y, pw, off, optsum, mode, pirls.iterations)
        m._warn_if_degenerate()
        return m

    # ------------------------------------------------------------ basics

    def simulator(self):
        """``draw(rng)`` for a GLMM: new b, η = offset + Xβ̂ + Zb, μ = g⁻¹(η), y from the family.

        Binomial responses are drawn as counts of successes out of the prior
        weights (trials) and returned as proportions, as the fit takes them.
        """
        frame, fam, w = self.frame, self.family, self.prior_weights
        eta0, lambdas = self.offset + frame.X @ self.mode.beta, self.lambdas

        def draw(rng: np.random.Generator) -> np.ndarray:
            eta = eta0.copy()
            for term, lam in zip(frame.terms, lambdas):
                b = rng.standard_normal((term.n_levels, term.ell)) @ lam.T
                eta += np.einsum("ij,ij->i", term.values, b[term.codes])
            mu = fam.link.linkinv(eta)
            if fam.name == "poisson":
                return rng.poisson(mu * w) / w
            trials = np.round(w).astype(int)
            return rng.binomial(trials, mu) / np.maximum(trials, 1)

        return draw

    def refit_response(self, y: np.ndarray) -> "GeneralizedLinearMixedModel":
        """The same model fitted to the response ``y`` (proportions for binomial counts)."""
        return type(self).fit(dataclasses.replace(self.frame, y=np.asarray(y, dtype=float)), self.family, self.nagq)

    @property
    def _pls(self) -> PLSSolution:
        return self.mode.solution

    @property
    def _u(self) -> np.ndarray:
        return self.mode.u

    @property
    def _beta(self) -> np.ndarray:
        return self.mode.beta

    _residual_row = False  # no σ in a GLMM's varcorr
    errors = None  # no residual error structure

    @property
    def theta(self) -> np.ndarray:
        return self.optsum.final[: len(self._theta_lower)]

    @cached_property
    def _theta_lower(self) -> np.ndarray:
        return theta_bounds([t.ell for t in self.frame.terms])[1]

    @property
    def objective(self) -> float:
        """The Laplace (or quadrature) approximation to −2 log L at the optimum."""
        return self.optsum.fmin

    @property
    def loglik(self) -> float:
        """log L by the Laplace approximation or, for ``nagq > 1``, adaptive quadrature.

        The full log-likelihood at every ``nagq``, so fits with different
        ``nagq`` compare directly.  lme4 (1.1.31) reports for ``nAGQ > 1`` a
        log-likelihood relative to the saturated model: its ``logLik`` is this
        one minus the saturated model's log-likelihood, Σ log p(yᵢ | μᵢ = yᵢ)
        (0 for 0/1 responses; lme4 issues #161, #567).
        """
        return -0.5 * self.objective

    @property
    def deviance(self) -> float:
        """lme4's ``deviance()`` of a GLMM: the sum of squared deviance residuals at the conditional modes.

        Not −2 log L (that is ``-2 * loglik``, which ``summary()`` and ``anova`` show as "deviance").
        """
        return float(self.family.unit_deviance(self.y, self.mode.mu, self.prior_weights).sum())

    @property
    def npar(self) -> int:
        return self.frame.p + len(self.theta)

    @property
    def sigma(self) -> float:
        return 1.0

    @property
    def reml(self) -> bool:
        return False

    # ----------------------------------------------------- fixed effects

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance of β̂ from the Hessian of the deviance in (θ, β), as lme4's default.

        Falls back to (R_Xᵀ R_X)⁻¹ of the final PIRLS system when that Hessian is
        not positive definite (as at a boundary).
        """
        names = list(self.frame.x_names)
        p, k = self.frame.p, len(self.theta)
        H = hessian(lambda x: _deviance_at(self, x), self.optsum.final, rise=HESSIAN_RISE)
        try:
            V = 2.0 * np.linalg.inv(H)[k:, k:]
            if np.all(np.linalg.eigvalsh(H) > 0):
                return pd.DataFrame(V, index=names, columns=names)
        except np.linalg.LinAlgError:
            pass
        sol = self._pirls._solve(self.theta, self.mode.eta, self.mode.mu, self.mode.beta, True)[0]
        RXinv = scipy.linalg.solve_triangular(sol.RX, np.eye(p))
        return pd.DataFrame(RXinv @ RXinv.T, index=names, columns=names)

    @cached_property
    def _pirls(self) -> PIRLS:
        """A PIRLS solver for this model's data (for the Hessian and vcov)."""
        return PIRLS(self.frame, self.family, self.y, self.prior_weights, self.offset)

    @property
    def coef_table(self) -> pd.DataFrame:
        z = self.fixef / self.se
        import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se, "z value": z,
                             "Pr(>|z|)": 2 * scipy.stats.norm.sf(np.abs(z))})

    # ---------------------------------------------------- random effects

    # --------------------------------------------------------- fitted

    def fitted(self) -> pd.Series:
        """Fitted means μ̂ on the response scale (probabilities or rates), indexed by the data's rows used.

        With ``na_action="exclude"`` the Series has every row of the data, NaN where one was dropped.
        """
        return self.frame.by_row(self.mode.mu, "fitted")

    def residuals(self, type: str = "deviance") -> pd.Series:
        """Deviance (default), Pearson or response residuals, indexed as :meth:`fitted`."""
        return self.frame.by_row(self._residuals(type), "residuals")

    def _residuals(self, type: str = "deviance") -> np.ndarray:
        y, mu, w = self.y, self.mode.mu, self.prior_weights
        if type == "response":
            r = y - mu
        elif type == "pearson":
            r = (y - mu) * np.sqrt(w / self.family.variance(mu))
        elif type == "deviance":
            r = np.sign(y - mu) * np.sqrt(np.maximum(self.family.unit_deviance(y, mu, w), 0))
        else:
            raise ValueError(f"residual type {type!r}: use 'deviance', 'pearson' or 'response'")
        return r

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "link", re: bool = True,
                offset=None) -> pd.Series:
        """Predictions on the link scale (``type="link"``) or as means (``"response"``).

        Without newdata, indexed as :meth:`fitted`; with newdata, by its index.
        Categorical fixed effects are encoded with the fitted levels whatever
        newdata's dtype (an unseen level is an error, as R's ``factor period has
        new level 5``); grouping levels are matched by value as the fitted data
        typed them.  A grouping level not seen in fitting, and a missing
        grouping value (with a warning), get the population prediction for that
        term (lme4's ``allow.new.levels = TRUE``).  The formula's ``offset()``
        terms are evaluated on newdata; ``offset=`` adds to them.
        """
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        if newdata is None:
            eta = self.mode.eta if re else self.offset + self.frame.X @ self.mode.beta
        else:
            eta = self._new_eta(newdata, re, offset)
        out = self.family.link.linkinv(np.asarray(eta)) if type == "response" else np.asarray(eta)
        if newdata is None:
            return self.frame.by_row(out, "predicted")
        return pd.Series(out, index=newdata.index, name="predicted")

    def _new_eta(self, newdata: pd.DataFrame, re: bool, offset) -> np.ndarray:
        """Xβ̂ (+ Zb̂) + offsets for new data."""
        eta = self.frame.new_X(newdata) @ self.mode.beta + self.frame.new_offset(newdata)
        if offset is not None:
            eta = eta + np.asarray(newdata[offset] if isinstance(offset, str) else offset, dtype=float)
        if re:
            eta = eta + zb(self._b, [new_codes_values(t, newdata) for t in self.frame.terms])
        return eta

    # ------------------------------------------------------ diagnostics

    @property
    def overdispersion(self) -> float:
        """Pearson χ² / residual degrees of freedom (about 1 without overdispersion)."""
        return float((self._residuals("pearson") ** 2).sum() / self.df_resid)

    def _warn_if_degenerate(self) -> None:
        if not self.optsum.converged:
            warnings.warn(f"the optimizer did not converge ({self.optsum.returnvalue}); "
                          "the estimates may be unreliable", RuntimeWarning, stacklevel=3)
        if self.family.name == "binomial" and np.any(np.abs(self.mode.eta) > 15):
            warnings.warn("fitted probabilities numerically 0 or 1 occurred: the data may be completely "
                          "or quasi-completely separated, and the coefficients of the separating "
                          "variables drift to ±infinity", RuntimeWarning, stacklevel=3)

    # ---------------------------------------------------------- printing

    def summary(self) -> "_summary.Summary":
        return _summary.glmm_summary(self)

    def __repr__(self) -> str:
        return (f"<GeneralizedLinearMixedModel {self.formula!r} {self.family}: "
                f"-2 log L {fmt_lik(self.objective)}, n = {self.nobs}>")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


# ----------------------------------------------------------- optimisation


def _deviance_at(m, x) -> float:
    """The objective at x = (θ, β) for a fitted model (used for the Hessian)."""
    pirls = m._pirls
    k = len(m.theta)
    theta, beta = x[:k], x[k:]
    mode = pirls.mode(theta, beta, u0=m.mode.u)
    dev = mode.laplace
    if m.nagq > 1:
        dev += agq_correction(pirls, theta, mode, m.nagq)
    return dev


def _optimize(pirls: PIRLS, frame: ModelFrame, nagq: int) -> tuple[OptSummary, Mode]:
    start, lower = theta_bounds([t.ell for t in frame.terms])
    k, p = len(start), frame.p
    state = {"u": None, "beta": _glm_start(pirls)}

    # Stage 1: θ alone, β updated within PIRLS (lme4's nAGQ = 0 stage)
    def stage1(theta):
        mode = pirls.mode(theta, state["beta"], state["u"], with_beta=True)
        state["u"], state["beta"] = mode.u, mode.beta
        return mode.laplace

    # only a start for stage 2, whose search in whitened β and Newton polish do the rest: loose
    # tolerances (stage 1 to 1e-8 cost up to 60 % more evaluations on the reference models, same optima)
    first = minimize(stage1, start, lower, ftol_rel=1e-5, ftol_abs=0.0, xtol_abs=1e-3,
                     polish_result=False)
    mode1 = pirls.mode(first.final, state["beta"], state["u"], with_beta=True)
    state["u"] = mode1.u

    # Stage 2: θ and β together, PIRLS over u only
    def stage2(x):
        mode = pirls.mode(x[:k], x[k:], state["u"])
        state["u"] = mode.u
        dev = mode.laplace
        return dev + (agq_correction(pirls, x[:k], mode, nagq) if nagq > 1 else 0.0)

    lower2 = np.concatenate([lower, np.full(p, -np.inf)])
    to_beta = _whitening(first.final, mode1)
    search = minimize(lambda y: stage2(to_beta(y)), np.concatenate([first.final, np.zeros(p)]), lower2,
                      ftol_rel=1e-10, ftol_abs=0.0, xtol_abs=1e-9, polish_result=False,
                      initial_step=np.concatenate([np.full(k, STEP_THETA), np.full(p, STEP_GAMMA)]))
    # the Newton polish in (θ, β) itself, its Hessian from one evaluation per pair of parameters
    count = [0]

    def counted(x):
        count[0] += 1
        return stage2(x)

    x, fx, moves, steps, gnorm = polish_and_settle(counted, to_beta(search.final), search.fmin, lower2,
                                                   pair_evals=1)
    final = dataclasses.replace(
        search, initial=np.concatenate([start, mode1.beta]), final=x, fmin=fx,
        feval=first.feval + search.feval + count[0], boundary_moves=search.boundary_moves + moves,
        polish_feval=count[0], polish_steps=steps, grad_norm=gnorm)
    mode = pirls.mode(final.final[:k], final.final[k:], state["u"])
    return final, mode


# Stage 2's BOBYQA starts with steps of STEP_THETA in θ and STEP_GAMMA in γ = R_X (β − β₁), about
# 0.2 standard errors of β (lme4's Nelder-Mead stage 2 steps 0.2 × (0.1 for θ, the standard
# errors for β)).
STEP_THETA, STEP_GAMMA = 0.02, 0.2


def _whitening(theta1: np.ndarray, mode1: Mode):
    """(θ, γ) ↦ (θ, β₁ + R_X⁻¹ γ) with stage 1's β₁ and R_X (lme4's RX, vcov(β) ≈ (R_XᵀR_X)⁻¹).

    In γ the deviance's curvature in β is close to 2I: the standard errors' scales and the
    correlations between the coefficients (an intercept and an uncentred covariate) are taken
    out, so that BOBYQA does not crawl along a narrow valley.
    """
    k, beta1, p = len(theta1), mode1.beta.copy(), len(mode1.beta)
    RXinv = scipy.linalg.solve_triangular(mode1.solution.RX, np.eye(p)) if p else np.zeros((0, 0))
    return lambda y: np.concatenate([y[:k], beta1 + RXinv @ y[k:]])


def _glm_start(pirls: PIRLS) -> np.ndarray:
    """β from the GLM without random effects (IRLS), PIRLS's starting point."""
    fam, X, y, w0 = pirls.family, pirls.frame.X, pirls.y, pirls.prior_w
    mu = (w0 * y + 0.5) / (w0 + 1) if fam.name == "binomial" else y + 0.1
    eta = fam.link.linkfun(mu)
    beta = np.zeros(X.shape[1])
    for _ in range(25):
        d = fam.link.mu_eta(eta)
        w = w0 * d**2 / fam.variance(mu)
        z = eta - pirls.offset + (y - mu) / d
        sw = np.sqrt(w)
        new, *_ = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)
        eta = pirls.offset + X @ new
        mu = fam.link.linkinv(eta)
        if np.max(np.abs(new - beta)) < 1e-10:
            beta = new
            break
        beta = new
    return beta
