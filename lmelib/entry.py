"""``lmer(formula, data)``: where a linear mixed model's data go in.

A pandas DataFrame becomes a model frame in memory (design.py); a Dask DataFrame is
reduced to the same cross-products partition by partition (outofcore.py).  Both are
then fitted by ``LinearMixedModel.fit`` (lmm.py).  This module sits above both, so
that neither imports the other's entry point.
"""

from __future__ import annotations

import pandas as pd

from .design import check_varying_response, model_frame
from .lmm import LinearMixedModel, check_reml
from .outofcore import lmer_dask
from .structures import ErrorModel, check_structures, structure_columns

__all__ = ["lmer", "is_dask_frame"]


def lmer(formula: str, data: pd.DataFrame, reml: bool = True, correlation=None,
         weights=None, na_action: str = "omit") -> "LinearMixedModel":
    """Fit a linear mixed model by REML (default) or maximum likelihood.

    ``formula`` is written as in lme4, e.g. ``"math5 ~ math3 + (math3 | school)"``;
    see :mod:`lmelib.formula` for the random-effects syntax.  ``correlation``
    (e.g. ``lmelib.AR1(time="year", group="firm")``) and ``weights`` (a variance
    function, e.g. ``lmelib.VarIdent("region")``) give the residuals nlme's
    error structures; see :mod:`lmelib.structures`.  Rows with missing values
    are dropped; ``fitted()`` and ``residuals()`` are indexed by the rows used
    (``na_action="omit"``) or padded with NaN to every row of ``data``
    (``"exclude"``, R's na.exclude).
    """
    check_reml(reml)
    check_structures(correlation, weights)
    if is_dask_frame(data):  # out of core (outofcore.py imports dask only when it is used)
        return lmer_dask(formula, data, reml=reml, correlation=correlation, weights=weights,
                         na_action=na_action)
    frame = model_frame(formula, data, extra_columns=structure_columns(correlation, weights),
                        na_action=na_action)
    check_varying_response(frame)
    return LinearMixedModel.fit(frame, reml=reml, errors=ErrorModel.of(frame.data, correlation, weights))


def is_dask_frame(data) -> bool:
    """Whether ``data`` is a Dask DataFrame (checked without importing dask)."""
    return type(data).__module__.split(".")[0] == "dask"
