"""Linear mixed models: the fitted result of ``lmer(formula, data, reml=True)`` (entry.py).

The fit is lme4's (Bates et al. 2015): minimise the profiled deviance or REML
criterion over θ (deviance.py, optimize.py), then read β, σ, the conditional
modes b = Λθ u and everything else from the PLS solution at θ̂.  The result is
built once and never changes; derived values are computed on first use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from .formatting import fmt_lik
from .design import ModelFrame
from .deviance import PLSSolution, ProfiledDeviance, dense_rows, objective
from .structured import StructuredDeviance, split
from .structures import ErrorModel, residual_acf, structure_intervals
from .gradient import objective_and_gradient
from .optimize import OptSummary, minimize
from .ranef import new_codes_values, zb
from . import summary as _summary
from .fitted import MixedModel
from .confint import confint
from .newdata import newdata_columns
from .prediction import predict_interval
from .profile import profile
from .threads import fit_threads

__all__ = ["LinearMixedModel", "check_reml"]



def check_reml(reml) -> None:
    """``reml`` must be True or False (R's REML = TRUE / FALSE), not a string or a number."""
    if not isinstance(reml, (bool, np.bool_)):
        raise TypeError(f"reml must be True or False, not {reml!r} ({type(reml).__name__})")


GRADIENT_ROWS = 300  # rows of L's dense block from which the polish uses the analytic gradient


def _gradient_pays(f: ProfiledDeviance) -> bool:
    """Whether the polish should use the analytic gradient (gradient.py) rather than finite differences.

    Where an evaluation is dominated by the factorisation of the dense block (r rows, r³/3
    multiply-adds) and the gradient's product of L22⁻¹ with A_R1 (r per stored entry) is at most
    a quarter of that, a gradient costs about two evaluations and the polish needs a few of them
    instead of 16-26 evaluations (InstEval).  On small models the gradient's array overhead costs
    4-9 evaluations, and on dense crossed designs (10,000 × 1,000 levels) its product 3.
    """
    r = f.cp.ARR.shape[0]
    stored = f.cp.AR1.nnz if scipy.sparse.issparse(f.cp.AR1) else f.cp.AR1.size
    return r >= GRADIENT_ROWS and stored <= r * r / 4


@dataclass(frozen=True, eq=False)
class LinearMixedModel(MixedModel):
    """A fitted linear mixed model (lme4's ``merMod``)."""

    frame: ModelFrame
    reml: bool
    optsum: OptSummary
    solution: PLSSolution
    errors: ErrorModel | None = None

    @classmethod
    def fit(cls, frame: ModelFrame, reml: bool = True, errors: ErrorModel | None = None) -> "LinearMixedModel":
        with fit_threads(dense_rows(frame)):
            return cls._fit(frame, reml, errors)

    @classmethod
    def _fit(cls, frame: ModelFrame, reml: bool, errors: ErrorModel | None) -> "LinearMixedModel":
        if errors is None:
            f = ProfiledDeviance(frame, reml)
            fg = partial(objective_and_gradient, f) if _gradient_pays(f) else None
            optsum = minimize(f, f.start, f.lower, gradient=fg)
        else:
            f = StructuredDeviance(frame, reml, errors)
            optsum = minimize(f, f.start, f.lower)
        return cls(frame, bool(reml), optsum, f.solve(optsum.final), errors)

    # ---------------------------------------------------- simulation (simulate.py)

    def simulator(self):
        """``draw(rng)``: one response y = Xβ̂ + Zb + ε with new b and ε (unconditional).

        b = σ Λθ u with spherical u ~ N(0, I) (eqns. 10-11); with an error structure
        ε = T⁻¹ e, e ~ N(0, σ² I), so that Var(ε) = R (see simulate.py).
        """
        frame, lambdas, sigma = self.frame, self.lambdas, self.sigma
        mu, unwhiten = frame.X @ self.solution.beta + frame.eta_offset, self._unwhiten()

        def draw(rng: np.random.Generator) -> np.ndarray:
            y = mu.copy()
            for term, lam in zip(frame.terms, lambdas):
                u = rng.standard_normal((term.n_levels, term.ell))
                y += np.einsum("ij,ij->i", term.values, (sigma * u @ lam.T)[term.codes])  # Z b
            return y + unwhiten(sigma * rng.standard_normal(frame.n))

        return draw

    def _unwhiten(self):
        """e ↦ T⁻¹ e: independent errors to errors with the model's structure (identity if none)."""
        if self.errors is None:
            return lambda e: e
        T, _ = self.errors.transform(self.psi)
        return scipy.sparse.linalg.splu(scipy.sparse.csc_matrix(T)).solve

    def refit_response(self, y: np.ndarray) -> "LinearMixedModel":
        """The same model (X, Z, error structure, REML or ML) fitted to the response ``y``."""
        frame = dataclasses.replace(self.frame, y=y - self.frame.eta_offset)  # the fit explains y − offset
        return type(self).fit(frame, self.reml, self.errors)

    def refit(self, reml: bool) -> "LinearMixedModel":
        """The same model fitted by REML (``reml=True``) or ML."""
        check_reml(reml)
        return self if reml == self.reml else type(self).fit(self.frame, reml, self.errors)

    @cached_property
    def devfun(self) -> ProfiledDeviance:
        """The objective as a function of θ, for plots and profiles (R = σ²I models)."""
        if self.errors is not None:
            raise NotImplementedError("devfun is a function of θ alone; with an error structure use "
                                      "lmelib.structured.StructuredDeviance(frame, reml, errors), a function of (θ, ψ)")
        return ProfiledDeviance(self.frame, self.reml)

    # ------------------------------------------------------------ basics

    @property
    def theta(self) -> np.ndarray:
        return split(self.optsum.final, self.frame)[0]

    @property
    def _theta_lower(self) -> np.ndarray:
        return split(self.optsum.lower, self.frame)[0]

    @property
    def _pls(self) -> PLSSolution:
        return self.solution

    @property
    def _u(self) -> np.ndarray:
        return self.solution.u

    @property
    def _beta(self) -> np.ndarray:
        return self.solution.beta

    _residual_row = True  # varcorr lists σ

    @property
    def psi(self) -> np.ndarray:
        """Unconstrained parameters of the error structure (empty when R = σ²I)."""
        return split(self.optsum.final, self.frame)[1]

    @cached_property
    def _ld_R(self) -> float:
        """log |R / σ²| at the estimates (0 when R = σ²I)."""
        return 0.0 if self.errors is None else self.errors.transform(self.psi)[1]

    @property
    def structure(self) -> pd.Series:
        """The error structure's parameters on the natural scale (φ, ratios, powers)."""
        return pd.Series(dtype=float) if self.errors is None else self.errors.natural(self.psi)

    @property
    def objective(self) -> float:
        """The REML criterion (REML fits) or the deviance −2 log L (ML fits)."""
        s = self.solution
        return objective(s.ldL2, s.ldRX2, s.pwrss, self.nobs, self.frame.p, self.reml) + self._ld_R

    @property
    def sigma(self) -> float:
        """Residual standard deviation σ̂: σ̂² = r²θ / n (eqn. 33), r²θ / (n − p) for REML (eqn. 40)."""
        dof = self.nobs - self.frame.p if self.reml else self.nobs
        return float(np.sqrt(self.solution.pwrss / dof))

    @property
    def npar(self) -> int:
        """Number of parameters: β, θ, the error structure's and σ."""
        return self.frame.p + len(self.theta) + len(self.psi) + 1

    @property
    def loglik(self) -> float:
        """Log-likelihood at the optimum: the REML log-likelihood for a REML fit, as R's logLik."""
        return -0.5 * self.objective

    @property
    def deviance(self) -> float:
        """The ML deviance −2 log L at the estimates (for REML fits: at θ̂_REML, as lme4)."""
        s = self.solution
        return objective(s.ldL2, s.ldRX2, s.pwrss, self.nobs, self.frame.p, False) + self._ld_R

    @property
    def reml_criterion(self) -> float | None:
        return self.objective if self.reml else None

    # ------------------------------------------------------ fixed effects

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """σ² (R_Xᵀ R_X)⁻¹, the covariance of β̂."""
        RXinv = scipy.linalg.solve_triangular(self.solution.RX, np.eye(self.frame.p))
        names = list(self.frame.x_names)
        return pd.DataFrame(self.sigma**2 * RXinv @ RXinv.T, index=names, columns=names)

    @property
    def coef_table(self) -> pd.DataFrame:
        """Estimate, standard error and t value of each fixed effect."""
        est, se = self.fixef, self.se
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": est / se})

    # -------------------------------------------------- fitted and predicted

    def fitted(self, conditional: bool = True) -> pd.Series:
        """Xβ̂ + Zb̂ (conditional, the default) or Xβ̂ (marginal), indexed by the data's rows used.

        With ``na_action="exclude"`` the Series has every row of the data, NaN where one was dropped.
        """
        return self.frame.by_row(self._fitted(conditional), "fitted")

    def _fitted(self, conditional: bool = True) -> np.ndarray:
        eta = self.frame.X @ self.solution.beta + self.frame.eta_offset
        if conditional:
            eta = eta + zb(self._b, [(t.codes, t.values) for t in self.frame.terms])
        return eta

    def residuals(self, conditional: bool = True, scaled: bool = False, type: str = "response") -> pd.Series:
        """y − fitted; ``scaled`` divides by σ̂ (the "scaled residuals" of the summary).

        ``type="normalized"`` gives nlme's normalized residuals T (y − fitted) / σ̂,
        whitened by the error structure (the conditional residuals of an R = σ²I
        model divided by σ̂ when there is none); ``"pearson"`` divides by each
        observation's standard deviation only.  Indexed as :meth:`fitted`.
        """
        name = {"normalized": "normalized residuals", "pearson": "pearson residuals"}.get(type, "residuals")
        return self.frame.by_row(self._residuals(conditional, scaled, type), name)

    def _residuals(self, conditional: bool = True, scaled: bool = False, type: str = "response") -> np.ndarray:
        r = self.frame.response - self._fitted(conditional)
        if type == "normalized":
            T = self.errors.transform(self.psi)[0] if self.errors is not None else None
            return (T @ r if T is not None else r) / self.sigma
        if type == "pearson":
            s = self.errors.var.multipliers(self.errors.split(self.psi)[-1]) \
                if self.errors is not None and self.errors.var is not None else 1.0
            return r / (self.sigma * s)
        if type != "response":
            raise ValueError(f"residual type {type!r}: use 'response', 'pearson' or 'normalized'")
        return r / self.sigma if scaled else r

    def scaled_residual_quantiles(self) -> tuple[str, np.ndarray]:
        """The summary's title and Min, 1Q, Median, 3Q and Max of the scaled residuals."""
        r = self.residuals(scaled=True).dropna().to_numpy()
        return "Scaled residuals", np.quantile(r, [0, 0.25, 0.5, 0.75, 1])

    def structure_intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals for the error structure's parameters (φ, ratios), natural scale."""
        if self.errors is None:
            raise ValueError("this model has no error structure (fit it with correlation= or weights=)")
        return structure_intervals(StructuredDeviance(self.frame, self.reml, self.errors),
                                   self.theta, self.psi, self.errors, level)

    def acf(self, maxlag: int | None = None) -> pd.Series:
        """Autocorrelation of the normalized residuals within groups, by lag (nlme's ACF)."""
        if self.errors is None or self.errors.groups() is None:
            raise ValueError("acf needs a correlation structure, whose groups and time order it uses")
        return residual_acf(self._residuals(type="normalized"), self.errors.groups(), maxlag)

    def predict(self, newdata: pd.DataFrame | None = None, re: bool = True,
                interval: str | None = None, level: float = 0.95) -> pd.Series | pd.DataFrame:
        """Predictions for new data, indexed by newdata's index (without newdata: :meth:`fitted`).

        Categorical fixed effects are encoded with the fitted levels whatever
        newdata's dtype; a level the fit never saw is an error (R's ``factor
        period has new level 5``).  Grouping levels are matched by value as the
        fitted data typed them (308 finds 308.0).  A grouping level not seen in
        fitting, and a missing grouping value (with a warning), get the
        population prediction for that term, as lme4's ``allow.new.levels = TRUE``.

        ``interval="confidence"`` or ``"prediction"`` returns a DataFrame with
        columns fit, lwr, upr at the given ``level`` (normal quantiles; without
        newdata, for the fitted rows).  For a level seen in fitting (a new pupil
        in a known school) the variance is Henderson's (1975) prediction error
        variance of x β̂ + z b̂, σ² [x zΛ] C⁻¹ [x zΛ]ᵀ with C the coefficient
        matrix of the mixed-model equations, read from the PLS factor L; for a
        level not seen (a pupil in a new school) it is x Var(β̂) xᵀ + z G zᵀ.
        ``"prediction"`` adds σ² for the new observation.  ``re=False`` treats
        every level as new, except that its ``"confidence"`` interval is for
        x β alone.  As the intervals of the GLMM FAQ (Bolker et al., "Predictions
        and/or confidence (or prediction) intervals on predictions"), these treat
        θ̂ and σ̂ as known: their uncertainty is ignored, as is usual.  Only for
        fits with R = σ²I; see :mod:`lmelib.prediction`.
        """
        if interval is not None:
            return predict_interval(self, newdata, re, interval, level)
        if newdata is None:
            return self.fitted(conditional=re)
        needed = [c for c in newdata_columns(self.frame, re) if c not in newdata.columns]
        if needed:
            raise KeyError(f"newdata lacks column(s) {', '.join(map(repr, needed))} that the model uses")
        eta = self.frame.new_X(newdata) @ self.solution.beta + self.frame.new_offset(newdata)
        if re:
            eta = eta + zb(self._b, [new_codes_values(t, newdata) for t in self.frame.terms])
        return pd.Series(eta, index=newdata.index, name="predicted")

    # ---------------------------------------------------------- printing

    # ---------------------------------------------------------- inference

    def profile(self, which=None, **kwargs):
        """Likelihood profiles of the parameters (lme4's ``profile``); see :mod:`lmelib.profile`."""
        return profile(self, which, **kwargs)

    def confint(self, parm=None, level: float = 0.95, method: str = "profile", **kwargs) -> pd.DataFrame:
        """Confidence intervals as lme4's ``confint``: "profile" (default), "Wald" or "boot"."""
        return confint(self, parm, level, method, **kwargs)

    def summary(self, ddf: str | None = None) -> "_summary.Summary":
        """lme4's summary; ``ddf="Satterthwaite"`` or ``"Kenward-Roger"`` adds lmerTest's df and p values."""
        return _summary.lmm_summary(self, ddf)

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return (f"<LinearMixedModel {self.formula!r} fit by {kind}: "
                f"{'REML criterion' if self.reml else 'deviance'} {fmt_lik(self.objective)}, n = {self.nobs}>")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
