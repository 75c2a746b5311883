"""What every fitted model derives in the same way from its frame, log-likelihood and vcov."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from .covariance import lambdas_of
from .ranef import conditional_variances, ranef_frames, split_b, tidy_ranef, varcorr_table

__all__ = ["FittedModel", "MixedModel", "SINGULAR_TOL"]

SINGULAR_TOL = 1e-4  # lme4's isSingular(tol = 1e-4)


class FittedModel:
    """Shared read-outs; a subclass provides ``frame``, ``loglik``, ``npar`` and ``vcov``.

    What ``anova`` asks every model (lmer, glmer, gls, lm): ``loglik``, ``npar``,
    ``aic``, ``bic``, ``nobs``, ``frame``, ``singular``, and from the subclass
    ``reml`` (with ``refit(reml)`` where it can be True) and ``errors`` (the
    residual error structure, structures.ErrorModel, or None).  Those two are
    fields of some subclasses, so the base cannot give them defaults (a
    dataclass would take a base attribute as its field's default).
    """

    @property
    def singular(self) -> bool:
        """Whether a variance parameter sits on its boundary: never without random effects."""
        return False

    @property
    def formula(self) -> str:
        return self.frame.formula.text

    @property
    def nobs(self) -> int:
        return self.frame.n

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + np.log(self.nobs) * self.npar

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects, from ``vcov``."""
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.vcov.index, name="Std. Error")


class MixedModel(FittedModel):
    """Read-outs shared by the linear and the generalized mixed model.

    A subclass provides, besides FittedModel's needs, ``theta`` and ``sigma``
    (1 for a GLMM), ``_theta_lower`` (θ's bounds), ``_u`` and ``_beta`` (the
    spherical conditional modes u and β̂), ``_pls`` (the penalized least-squares
    solution at the estimates, lme4's ``pp``) and ``_residual_row`` (whether
    ``varcorr`` lists σ).
    """

    @property
    def ngrps(self) -> dict[str, int]:
        return {t.name: t.n_levels for t in self.frame.terms}

    @property
    def df_resid(self) -> int:
        return self.nobs - self.npar

    @property
    def singular(self) -> bool:
        """True when a variance is 0 or a correlation ±1: θ on its boundary (lme4's isSingular)."""
        return bool(np.any(self.theta[self._theta_lower == 0] < SINGULAR_TOL))

    @property
    def lambdas(self) -> list[np.ndarray]:
        """λ of each random-effects term at θ̂ (terms in fitting order)."""
        return lambdas_of(self.theta, [t.ell for t in self.frame.terms])

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self._beta, index=list(self.frame.x_names), name="Estimate")

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variances and correlations, as R's ``as.data.frame(VarCorr(m))``."""
        return varcorr_table(self.frame.terms, self.lambdas, self.sigma, residual=self._residual_row)

    @cached_property
    def _b(self) -> list[np.ndarray]:
        """Conditional modes b = Λθ u of each term, as levels × ℓ arrays."""
        return split_b(self.frame.terms, self.lambdas, self._u)

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor."""
        return ranef_frames(self.frame.terms, self._b)

    @cached_property
    def ranef_frame(self) -> pd.DataFrame:
        """Tidy conditional modes with conditional standard deviations (R's ``as.data.frame(ranef(m))``).

        The conditional covariance is σ² λ [(LLᵀ)⁻¹]_gg λᵀ for each level, given β̂ (as lme4).
        """
        V = conditional_variances(self._pls, self.frame.terms, self.lambdas, self.sigma)
        return tidy_ranef(self.frame.terms, self._b, V)
