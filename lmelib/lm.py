"""Ordinary least squares, for the lecture's baselines: ``lm(formula, data)``.

The single-mean model ``math5 ~ 1`` and the school fixed-effects model
``math5 ~ C(school) - 1`` are linear models; fitting them with the same
formula handling and summary layout as ``lmer`` lets the book compare them with
mixed models directly (log-likelihood, AIC, BIC as R's ``logLik.lm``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.linalg

from .formatting import fmt_lik
from .design import ModelFrame, model_frame
from . import summary as _summary
from .fitted import FittedModel

__all__ = ["LinearModel", "lm"]


def lm(formula: str, data: pd.DataFrame, na_action: str = "omit") -> "LinearModel":
    """Fit a linear model by least squares; the formula has no random-effects terms.

    ``fitted()`` and ``residuals()`` are indexed by the data's rows used, or with
    ``na_action="exclude"`` padded with NaN to every row (R's na.exclude).
    """
    frame = model_frame(formula, data, require_random=False, na_action=na_action)
    if frame.formula.random:
        raise ValueError(f"lm() fits no random effects, but {formula!r} has "
                         f"{', '.join(map(str, frame.formula.random))}; use lmelib.lmer")
    return LinearModel.fit(frame)


@dataclass(frozen=True, eq=False)
class LinearModel(FittedModel):
    """A fitted linear model (R's ``lm``)."""

    frame: ModelFrame
    beta: np.ndarray
    rss: float

    reml = False  # least squares is maximum likelihood (anova compares it with ML fits)
    errors = None  # no residual error structure

    def simulator(self):
        """``draw(rng)``: a new response Xβ̂ + ε, ε ~ N(0, σ̂² I) (R's ``simulate.lm``)."""
        mu = self.frame.X @ self.beta + self.frame.eta_offset
        return lambda rng: mu + self.sigma * rng.standard_normal(self.frame.n)

    def refit_response(self, y: np.ndarray) -> "LinearModel":
        """The same model fitted to the response ``y`` (offset included)."""
        return type(self).fit(dataclasses.replace(self.frame, y=y - self.frame.eta_offset))

    @classmethod
    def fit(cls, frame: ModelFrame) -> "LinearModel":
        beta, *_ = scipy.linalg.lstsq(frame.X, frame.y, lapack_driver="gelsy")
        resid = frame.y - frame.X @ beta
        return cls(frame, beta, float(resid @ resid))

    @property
    def df_resid(self) -> int:
        return self.nobs - self.frame.p

    @property
    def npar(self) -> int:
        """β and σ, as R's logLik.lm counts them."""
        return self.frame.p + 1

    @property
    def sigma(self) -> float:
        """√(RSS / (n − p)); NaN when no residual degrees of freedom are left, as R."""
        return float(np.sqrt(self.rss / self.df_resid)) if self.df_resid > 0 else np.nan

    @property
    def loglik(self) -> float:
        """Maximised Gaussian log-likelihood, σ² estimated by RSS / n."""
        n = self.nobs
        return -0.5 * n * (np.log(2 * np.pi) + np.log(self.rss / n) + 1.0)

    @property
    def deviance(self) -> float:
        return -2.0 * self.loglik

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.beta, index=list(self.frame.x_names), name="Estimate")

    coef = fixef

    @cached_property
    def vcov(self) -> pd.DataFrame:
        names = list(self.frame.x_names)
        XtX_inv = scipy.linalg.pinvh(self.frame.X.T @ self.frame.X)
        return pd.DataFrame(self.sigma**2 * XtX_inv, index=names, columns=names)

    @property
    def coef_table(self) -> pd.DataFrame:
        t = self.fixef / self.se
        import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
        p = 2 * scipy.stats.t.sf(np.abs(t), self.df_resid)
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se, "t value": t, "Pr(>|t|)": p})

    @property
    def r_squared(self) -> float:
        """R², about the mean when the model has an intercept (else about zero), as R."""
        y = self.frame.y
        centre = y.mean() if "(Intercept)" in self.frame.x_names else 0.0
        return 1.0 - self.rss / float(((y - centre) ** 2).sum())

    def fitted(self) -> pd.Series:
        """Xβ̂, indexed by the data's rows used (``na_action="exclude"``: every row, NaN where dropped)."""
        return self.frame.by_row(self.frame.X @ self.beta + self.frame.eta_offset, "fitted")

    def residuals(self) -> pd.Series:
        """y − Xβ̂, indexed as :meth:`fitted`."""
        return self.frame.by_row(self.frame.y - self.frame.X @ self.beta, "residuals")

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.Series:
        """Xβ̂ for new data, indexed by newdata's index; categorical columns encoded with the fitted
        levels (an unseen level is an error, as R's ``factor x has new level``)."""
        if newdata is None:
            return self.fitted()
        eta = self.frame.new_X(newdata) @ self.beta + self.frame.new_offset(newdata)
        return pd.Series(eta, index=newdata.index, name="predicted")

    def summary(self) -> "_summary.Summary":
        return _summary.lm_summary(self)

    def __repr__(self) -> str:
        return f"<LinearModel {self.formula!r}: logLik {fmt_lik(self.loglik)}, n = {self.nobs}>"

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
