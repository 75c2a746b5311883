"""Linear mixed models: ``lmer(formula, data, reml=True)`` and its fitted result.

The fit is lme4's (Bates et al. 2015): minimise the profiled deviance or REML
criterion over θ (deviance.py, optimize.py), then read β, σ, the conditional
modes b = Λθ u and everything else from the PLS solution at θ̂.  The result is
built once and never changes; derived values are computed on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.linalg

from .covariance import lambda_of, theta_slices
from .design import ModelFrame, model_frame
from .deviance import PLSSolution, ProfiledDeviance, objective
from .optimize import OptSummary, minimize
from . import summary as _summary

__all__ = ["LinearMixedModel", "lmer"]

SINGULAR_TOL = 1e-4  # lme4's isSingular(tol = 1e-4)


def lmer(formula: str, data: pd.DataFrame, reml: bool = True) -> "LinearMixedModel":
    """Fit a linear mixed model by REML (default) or maximum likelihood.

    ``formula`` is written as in lme4, e.g. ``"math5 ~ math3 + (math3 | school)"``;
    see :mod:`lmelib.formula` for the random-effects syntax.
    """
    frame = model_frame(formula, data)
    return LinearMixedModel.fit(frame, reml=reml)


@dataclass(frozen=True, eq=False)
class LinearMixedModel:
    """A fitted linear mixed model (lme4's ``merMod``)."""

    frame: ModelFrame
    reml: bool
    optsum: OptSummary
    solution: PLSSolution

    @classmethod
    def fit(cls, frame: ModelFrame, reml: bool = True) -> "LinearMixedModel":
        devfun = ProfiledDeviance(frame, reml)
        optsum = minimize(devfun, devfun.start, devfun.lower)
        return cls(frame, bool(reml), optsum, devfun.solve(optsum.final))

    def refit(self, reml: bool) -> "LinearMixedModel":
        """The same model fitted by REML (``reml=True``) or ML."""
        return self if reml == self.reml else LinearMixedModel.fit(self.frame, reml)

    @cached_property
    def devfun(self) -> ProfiledDeviance:
        """The objective as a function of θ, for plots and profiles."""
        return ProfiledDeviance(self.frame, self.reml)

    # ------------------------------------------------------------ basics

    @property
    def formula(self) -> str:
        return self.frame.formula.text

    @property
    def nobs(self) -> int:
        return self.frame.n

    @property
    def theta(self) -> np.ndarray:
        return self.optsum.final

    @property
    def objective(self) -> float:
        """The REML criterion (REML fits) or the deviance −2 log L (ML fits)."""
        s = self.solution
        return objective(s.ldL2, s.ldRX2, s.pwrss, self.nobs, self.frame.p, self.reml)

    @property
    def sigma(self) -> float:
        """Residual standard deviation σ̂ (eqn. 35; n − p in place of n for REML)."""
        dof = self.nobs - self.frame.p if self.reml else self.nobs
        return float(np.sqrt(self.solution.pwrss / dof))

    @property
    def npar(self) -> int:
        """Number of parameters: β, θ and σ."""
        return self.frame.p + len(self.theta) + 1

    @property
    def loglik(self) -> float:
        """Log-likelihood at the optimum: the REML log-likelihood for a REML fit, as R's logLik."""
        return -0.5 * self.objective

    @property
    def deviance(self) -> float:
        """The ML deviance −2 log L at the estimates (for REML fits: at θ̂_REML, as lme4)."""
        s = self.solution
        return objective(s.ldL2, s.ldRX2, s.pwrss, self.nobs, self.frame.p, False)

    @property
    def reml_criterion(self) -> float | None:
        return self.objective if self.reml else None

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + np.log(self.nobs) * self.npar

    @property
    def df_resid(self) -> int:
        return self.nobs - self.npar

    @property
    def singular(self) -> bool:
        """True when a variance is 0 or a correlation ±1: θ on its boundary (lme4's isSingular)."""
        bounded = self.optsum.lower == 0
        return bool(np.any(self.theta[bounded] < SINGULAR_TOL))

    @property
    def ngrps(self) -> dict[str, int]:
        return {t.name: t.n_levels for t in self.frame.terms}

    # ------------------------------------------------------ fixed effects

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.solution.beta, index=list(self.frame.x_names), name="Estimate")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """σ² (R_Xᵀ R_X)⁻¹, the covariance of β̂."""
        RXinv = scipy.linalg.solve_triangular(self.solution.RX, np.eye(self.frame.p))
        names = list(self.frame.x_names)
        return pd.DataFrame(self.sigma**2 * RXinv @ RXinv.T, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.vcov.index, name="Std. Error")

    @property
    def coef_table(self) -> pd.DataFrame:
        """Estimate, standard error and t value of each fixed effect."""
        est, se = self.fixef, self.se
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": est / se})

    # ----------------------------------------------------- random effects

    @property
    def lambdas(self) -> list[np.ndarray]:
        """λ of each random-effects term at θ̂ (terms in fitting order)."""
        ells = [t.ell for t in self.frame.terms]
        return [lambda_of(self.theta[s], e) for s, e in zip(theta_slices(ells), ells)]

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variances and correlations, as R's ``as.data.frame(VarCorr(m))``."""
        rows, names = [], _unique_names([t.name for t in self.frame.terms])
        for name, term, lam in zip(names, self.frame.terms, self.lambdas):
            cov = self.sigma**2 * lam @ lam.T
            sd = np.sqrt(np.diag(cov))
            for i, col in enumerate(term.columns):
                rows.append((name, col, None, cov[i, i], sd[i]))
            for j in range(term.ell):
                for i in range(j + 1, term.ell):
                    cor = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                    rows.append((name, term.columns[j], term.columns[i], cov[i, j], cor))
        rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    @cached_property
    def _b(self) -> list[np.ndarray]:
        """Conditional modes b = Λ u of each term, as levels × ℓ arrays."""
        u, out, start = self.solution.u, [], 0
        for term, lam in zip(self.frame.terms, self.lambdas):
            ut = u[start : start + term.q].reshape(term.n_levels, term.ell)
            out.append(ut @ lam.T)
            start += term.q
        return out

    @cached_property
    def _condvar(self) -> list[np.ndarray]:
        """Conditional covariance of each level's b: σ² λ [(LLᵀ)⁻¹]_gg λᵀ, conditional on β̂."""
        return _conditional_variances(self)

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor."""
        out: dict[str, pd.DataFrame] = {}
        for term, b in zip(self.frame.terms, self._b):
            df = pd.DataFrame(b, index=term.levels, columns=list(term.columns))
            df.index.name = term.name
            out[term.name] = pd.concat([out[term.name], df], axis=1) if term.name in out else df
        return out

    @cached_property
    def ranef_frame(self) -> pd.DataFrame:
        """Tidy conditional modes with conditional standard deviations (R's ``as.data.frame(ranef(m))``)."""
        parts = []
        for term, b, V in zip(self.frame.terms, self._b, self._condvar):
            sd = np.sqrt(np.diagonal(V, axis1=1, axis2=2))
            for j, col in enumerate(term.columns):
                parts.append(pd.DataFrame({
                    "grpvar": term.name, "term": col, "grp": term.levels,
                    "condval": b[:, j], "condsd": sd[:, j],
                }))
        return pd.concat(parts, ignore_index=True)

    # -------------------------------------------------- fitted and predicted

    def _Zb(self, terms_codes_values) -> np.ndarray:
        total = 0.0
        for b, (codes, values) in zip(self._b, terms_codes_values):
            known = codes >= 0
            contrib = np.einsum("ij,ij->i", values, b[np.where(known, codes, 0)])
            total = total + np.where(known, contrib, 0.0)
        return total

    def fitted(self, conditional: bool = True) -> pd.Series:
        """Xβ̂ + Zb̂ (conditional, the default) or Xβ̂ (marginal)."""
        eta = self.frame.X @ self.solution.beta
        if conditional:
            eta = eta + self._Zb([(t.codes, t.values) for t in self.frame.terms])
        return pd.Series(eta, name="fitted")

    def residuals(self, conditional: bool = True, scaled: bool = False) -> pd.Series:
        """y − fitted; ``scaled`` divides by σ̂ (the "scaled residuals" of the summary)."""
        r = self.frame.y - self.fitted(conditional).to_numpy()
        return pd.Series(r / self.sigma if scaled else r, name="residuals")

    def predict(self, newdata: pd.DataFrame | None = None, re: bool = True) -> pd.Series:
        """Predictions for new data; a level not seen in fitting gets the population value."""
        if newdata is None:
            return self.fitted(conditional=re)
        needed = [c for c in _newdata_columns(self.frame, re) if c not in newdata.columns]
        if needed:
            raise KeyError(f"newdata lacks column(s) {', '.join(map(repr, needed))} that the model uses")
        eta = self.frame.new_X(newdata) @ self.solution.beta
        if re:
            eta = eta + self._Zb([_new_codes_values(t, newdata) for t in self.frame.terms])
        return pd.Series(eta, index=newdata.index, name="predicted")

    # ---------------------------------------------------------- printing

    def summary(self) -> "_summary.Summary":
        return _summary.lmm_summary(self)

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return (f"<LinearMixedModel {self.formula!r} fit by {kind}: "
                f"{'REML criterion' if self.reml else 'deviance'} {self.objective:.4f}, n = {self.nobs}>")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def _unique_names(names: list[str]) -> list[str]:
    """R's make.unique: a repeated grouping name gets .1, .2 (``(x || g)`` -> g, g.1)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        out.append(name if k == 0 else f"{name}.{k}")
        seen[name] = k + 1
    return out


def _conditional_variances(m: LinearMixedModel) -> list[np.ndarray]:
    """Diagonal blocks of σ² Λ (LLᵀ)⁻¹ Λᵀ, by term and level, from the blocked factor.

    With L = [[L11, 0], [L21, L22]] (Z rows only), (LLᵀ)⁻¹ has the blocks
    L11⁻ᵀL11⁻¹ + MᵀM (M = L22⁻¹ L21 L11⁻¹) for the first term and L22⁻ᵀL22⁻¹
    for the others.
    """
    sol, terms, lams = m.solution, m.frame.terms, m.lambdas
    q = sol.q_rest
    blocked = sol.L11.shape[0] > 0
    L22inv = scipy.linalg.solve_triangular(sol.L22[:q, :q], np.eye(q), lower=True)
    out = []
    if blocked:
        L11inv = np.linalg.inv(sol.L11)  # m1 × ℓ1 × ℓ1
        V1 = np.swapaxes(L11inv, 1, 2) @ L11inv
        if q:
            m1, ell1, _ = sol.L11.shape
            L21z = sol.L21[:q, :].toarray().reshape(q, m1, ell1)
            M = (L22inv @ np.einsum("rgk,gkl->rgl", L21z, L11inv).reshape(q, -1)).reshape(q, m1, ell1)
            V1 = V1 + np.einsum("rgk,rgl->gkl", M, M)
        out.append(m.sigma**2 * lams[0] @ V1 @ lams[0].T)
    W = L22inv.T @ L22inv
    start = 0
    for term, lam in zip(terms[1:] if blocked else terms, lams[1:] if blocked else lams):
        idx = start + np.arange(term.q).reshape(term.n_levels, term.ell)
        out.append(m.sigma**2 * lam @ W[idx[:, :, None], idx[:, None, :]] @ lam.T)
        start += term.q
    return out


def _newdata_columns(frame: ModelFrame, re: bool) -> list[str]:
    from formulaic import Formula

    cols = set(Formula(frame.formula.fixed).required_variables)
    if re:
        for t in frame.terms:
            cols |= set(Formula(t.term.expr).required_variables) | set(t.term.factors)
    return sorted(cols)


def _new_codes_values(term, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(term.spec.get_model_matrix(newdata, na_action="raise"), dtype=float)
    labels = newdata[list(term.term.factors)].astype(str).agg(":".join, axis=1)
    return term.levels.get_indexer(labels), values
