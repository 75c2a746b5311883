"""New data encoded as the fit encoded its data: factor levels matched by value.

R's ``predict(m, newdata)`` rebuilds the model frame with the fitted levels
(``xlev``): a factor given as numbers, text or a factor with its levels in
another order gives the same columns, and a level the fit never saw is an error
(``factor period has new level 5``).  Grouping levels are matched the same way,
by value as the fitted data typed them, so an id fitted as 308.0 is found by
308 and by "308".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from formulaic import Formula

__all__ = ["match_levels", "encode_newdata", "newdata_columns"]


def match_levels(values: pd.Series, levels: pd.Index) -> np.ndarray:
    """Index of each value in ``levels`` (−1 if absent): by value, then as a number, then as text.

    So 308 finds the level 308.0, "308" finds 308, 1 and 1.0 find "1"; NaN finds nothing.
    """
    raw = pd.Index(values.to_numpy(dtype=object) if isinstance(values.dtype, pd.CategoricalDtype)
                   else values.to_numpy())
    codes = np.asarray(levels.get_indexer(raw), dtype=np.intp)
    attempts = [(lambda v: pd.to_numeric(v, errors="coerce"), levels),
                (lambda v: v.map(_r_text), levels.map(_r_text))]
    for convert, typed in attempts:
        todo = (codes < 0) & ~pd.isna(raw)
        if not todo.any() or not typed.is_unique:
            continue
        try:
            codes[todo] = typed.get_indexer(pd.Index(convert(raw[todo])))
        except (TypeError, ValueError):
            continue
    return codes


def _r_text(value) -> str:
    """A value as R's as.character writes it: a whole number without ".0"."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _fixed_factor_column(expr: str) -> str | None:
    """The data column behind a categorical factor: ``period``, ``C(period)``, ``factor(period)``."""
    expr = expr.strip()
    for call in ("C(", "factor("):
        if expr.startswith(call) and expr.endswith(")"):
            expr = expr[len(call):-1].split(",")[0].strip()
    expr = expr.strip("`")
    return expr if expr and "(" not in expr else None


def encode_newdata(spec, newdata: pd.DataFrame) -> pd.DataFrame:
    """newdata with each categorical column typed as in the fit: the fitted levels, matched by value.

    An unseen level raises ValueError as R's ``factor period has new level 5``.
    """
    out = newdata
    for expr, (_, state) in getattr(spec, "encoder_state", {}).items():
        levels = state.get("categories") if isinstance(state, dict) else None
        col = _fixed_factor_column(expr)
        if levels is None or col is None or col not in newdata.columns:
            continue
        values = newdata[col]
        codes = match_levels(values, pd.Index(levels))
        new = (codes < 0) & values.notna().to_numpy()
        if new.any():
            unseen = list(dict.fromkeys(values[new].tolist()))
            raise ValueError(f"factor {col} has new level{'s' if len(unseen) > 1 else ''} "
                             f"{', '.join(map(str, unseen))} (the fitted levels are "
                             f"{', '.join(map(str, levels))})")
        if out is newdata:
            out = newdata.copy()
        out[col] = _typed_as_fitted(codes, levels, plain=expr.strip("` ") == col, index=newdata.index)
    return out


def _typed_as_fitted(codes: np.ndarray, levels, plain: bool, index: pd.Index):
    """A column of the fitted levels by code (−1: missing): a category for a plain factor
    column, the level values themselves for ``C(x)`` / ``factor(x)``, which re-encode them."""
    if plain:
        return pd.Categorical.from_codes(codes, categories=levels)
    values = np.asarray(levels, dtype=object)[codes]
    values[codes < 0] = np.nan
    return pd.Series(values, index=index)


def newdata_columns(frame, re: bool) -> list[str]:
    """The data columns a prediction needs: the fixed part's and, with ``re``, the random terms'."""
    cols = set(Formula(frame.formula.fixed).required_variables)
    if re:
        for t in frame.terms:
            cols |= set(Formula(t.term.expr).required_variables) | set(t.term.factors)
    return sorted(cols)
