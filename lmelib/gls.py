"""Generalized least squares with an error structure and no random effects: ``gls()``.

nlme's ``gls``: y = Xβ + ε, ε ~ N(0, σ² S C S) (see structures.py).  With the
whitening T(ψ), β̂ is the least-squares fit of T y on T X and, profiling out β
and σ²,

    ML:   −2 log L = n (1 + log(2π r²/n)) + log |S C S|,
    REML: −2 log L = (n − p)(1 + log(2π r²/(n − p))) + log |XᵀTᵀTX| + log |S C S|,

r² the residual sum of squares of the whitened fit: the same criteria as
deviance.py's with no random effects.  The optimiser works over ψ alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.linalg

from .formatting import fmt_lik
from .design import ModelFrame, check_varying_response, model_frame
from .fitted import FittedModel
from .deviance import objective
from .optimize import OptSummary, minimize
from .structures import (ErrorModel, check_structures, residual_acf, structure_columns,
                         structure_intervals)
from .lmm import check_reml
from . import summary as _summary
from .threads import fit_threads

__all__ = ["gls", "GLSModel"]


def gls(formula: str, data: pd.DataFrame, correlation=None, weights=None, reml: bool = True,
        na_action: str = "omit") -> "GLSModel":
    """Fit a linear model with correlated and/or heteroskedastic errors (nlme's ``gls``).

    ``fitted()`` and ``residuals()`` are indexed by the data's rows used, or with
    ``na_action="exclude"`` padded with NaN to every row (R's na.exclude).
    """
    check_reml(reml)
    check_structures(correlation, weights)
    frame = model_frame(formula, data, require_random=False, na_action=na_action,
                        extra_columns=structure_columns(correlation, weights))
    if frame.formula.random:
        raise ValueError("gls() has no random effects; use lmelib.lmer with correlation= / weights=")
    check_varying_response(frame)
    errors = ErrorModel.of(frame.data, correlation, weights)
    if errors is None:
        raise ValueError("gls() needs a correlation structure or a variance function; "
                         "for independent errors with equal variance use lmelib.lm")
    return GLSModel.fit(frame, errors, reml)


@dataclass(frozen=True, eq=False)
class _WLS:
    beta: np.ndarray
    R: np.ndarray  # upper-triangular factor of (TX)ᵀ(TX)
    rss: float
    logdet: float

    @classmethod
    def at(cls, frame: ModelFrame, errors: ErrorModel, psi) -> "_WLS":
        T, logdet = errors.transform(psi)
        X, y = T @ frame.X, T @ frame.y
        Q, R = np.linalg.qr(X)
        beta = scipy.linalg.solve_triangular(R, Q.T @ y)
        r = y - X @ beta
        return cls(beta, R, float(r @ r), logdet)

    def criterion(self, n: int, p: int, reml: bool) -> float:
        ldRX2 = 2.0 * np.log(np.abs(np.diag(self.R))).sum()
        return objective(0.0, ldRX2, self.rss, n, p, reml) + self.logdet


@dataclass(frozen=True, eq=False)
class GLSModel(FittedModel):
    """A fitted generalized least-squares model (nlme's ``gls``)."""

    frame: ModelFrame
    errors: ErrorModel
    reml: bool
    optsum: OptSummary
    wls: _WLS

    @classmethod
    def fit(cls, frame: ModelFrame, errors: ErrorModel, reml: bool = True) -> "GLSModel":
        n, p = frame.n, frame.p
        f = lambda psi: _WLS.at(frame, errors, psi).criterion(n, p, reml)
        with fit_threads(p + 1):
            optsum = minimize(f, errors.start, np.full(len(errors.start), -np.inf))
        return cls(frame, errors, bool(reml), optsum, _WLS.at(frame, errors, optsum.final))

    def refit(self, reml: bool) -> "GLSModel":
        check_reml(reml)
        return self if reml == self.reml else GLSModel.fit(self.frame, self.errors, reml)

    @property
    def psi(self) -> np.ndarray:
        return self.optsum.final

    @property
    def theta(self) -> np.ndarray:
        return np.zeros(0)

    @property
    def structure(self) -> pd.Series:
        return self.errors.natural(self.psi)

    @property
    def objective(self) -> float:
        return self.wls.criterion(self.nobs, self.frame.p, self.reml)

    @property
    def loglik(self) -> float:
        return -0.5 * self.objective

    @property
    def deviance(self) -> float:
        return self.wls.criterion(self.nobs, self.frame.p, False)

    @property
    def npar(self) -> int:
        return self.frame.p + len(self.psi) + 1

    @property
    def bic(self) -> float:
        n = self.nobs - self.frame.p if self.reml else self.nobs  # nlme's BIC for REML fits uses n − p
        return -2.0 * self.loglik + np.log(n) * self.npar

    @property
    def sigma(self) -> float:
        dof = self.nobs - self.frame.p if self.reml else self.nobs
        return float(np.sqrt(self.wls.rss / dof))

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.wls.beta, index=list(self.frame.x_names), name="Estimate")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """σ̃² (XᵀTᵀTX)⁻¹ with σ̃² = r²/(n − p) for ML and REML fits alike, as nlme's gls."""
        Rinv = scipy.linalg.solve_triangular(self.wls.R, np.eye(self.frame.p))
        names = list(self.frame.x_names)
        s2 = self.wls.rss / (self.nobs - self.frame.p)
        return pd.DataFrame(s2 * Rinv @ Rinv.T, index=names, columns=names)

    @property
    def coef_table(self) -> pd.DataFrame:
        t = self.fixef / self.se
        df = self.nobs - self.frame.p
        import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se, "t value": t,
                             "Pr(>|t|)": 2 * scipy.stats.t.sf(np.abs(t), df)})

    def fitted(self) -> pd.Series:
        """Xβ̂, indexed by the data's rows used (``na_action="exclude"``: every row, NaN where dropped)."""
        return self.frame.by_row(self.frame.X @ self.wls.beta + self.frame.eta_offset, "fitted")

    def residuals(self, type: str = "response") -> pd.Series:
        """Response residuals y − Xβ̂, or ``"normalized"``: T(y − Xβ̂)/σ̂ (nlme's); indexed as fitted()."""
        name = "normalized residuals" if type == "normalized" else "residuals"
        return self.frame.by_row(self._residuals(type), name)

    def _residuals(self, type: str = "response") -> np.ndarray:
        r = self.frame.y - self.frame.X @ self.wls.beta
        if type == "normalized":
            return self.errors.transform(self.psi)[0] @ r / self.sigma
        if type != "response":
            raise ValueError(f"residual type {type!r}: use 'response' or 'normalized'")
        return r

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.Series:
        """Xβ̂ for new data, indexed by newdata's index (without newdata: :meth:`fitted`)."""
        if newdata is None:
            return self.fitted()
        eta = self.frame.new_X(newdata) @ self.wls.beta + self.frame.new_offset(newdata)
        return pd.Series(eta, index=newdata.index, name="predicted")

    def structure_intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals for the error structure's parameters (φ, ratios), natural scale."""
        n, p = self.nobs, self.frame.p
        f = lambda psi: _WLS.at(self.frame, self.errors, psi).criterion(n, p, self.reml)
        return structure_intervals(f, self.theta, self.psi, self.errors, level)

    def acf(self, maxlag: int | None = None) -> pd.Series:
        if self.errors.groups() is None:
            raise ValueError("acf needs a correlation structure, whose groups and time order it uses")
        return residual_acf(self._residuals("normalized"), self.errors.groups(), maxlag)

    def summary(self):
        return _summary.gls_summary(self)

    def __repr__(self) -> str:
        return f"<GLSModel {self.formula!r} with {self.errors.label}: logLik {fmt_lik(self.loglik)}, n = {self.nobs}>"

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
