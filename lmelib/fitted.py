"""What every fitted model derives in the same way from its frame, log-likelihood and vcov."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FittedModel"]


class FittedModel:
    """Shared read-outs; a subclass provides ``frame``, ``loglik``, ``npar`` and ``vcov``."""

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
