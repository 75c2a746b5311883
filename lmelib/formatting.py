"""How lmelib prints numbers: one policy for summaries, tables, reprs and the book.

A fit is determined to about 1e-8 relative whatever the BLAS kernel, the
thread count or the order of the rows (optimize.py polishes the optimum), so a
number printed with a few significant digits is the same on every machine,
while the 16 digits of a raw float repr are not.  The policy:

* estimates, standard errors, variance components, t and z values, and
  anything else on the scale of the data: ``DIGITS`` (4) significant digits,
  as lme4's ``summary`` prints them;
* numbers on the log-likelihood scale (objective, deviance, log-likelihood,
  AIC, BIC, χ² statistics), where differences matter: ``LIK_DECIMALS`` (2)
  decimals;
* p-values: ``P_DIGITS`` (3) significant digits, and "<2e-16" below that, as R;
* a value that rounds to zero prints without a sign (never "-0.000");
* a row of numbers printed side by side (the quantiles of the residuals):
  one number of decimals for all, as R prints a vector, chosen so that the
  largest gets ``DIGITS`` significant digits and none gets more (``fmt_fixed``);
* correlations: ``CORR_DECIMALS`` (2) decimals in the random effects and
  ``FIXEF_CORR_DECIMALS`` (3) in the correlation of the fixed effects, as lme4.

``set_display()`` makes pandas and numpy print through the same policy in a
notebook.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["DIGITS", "LIK_DECIMALS", "P_DIGITS", "CORR_DECIMALS", "FIXEF_CORR_DECIMALS", "fmt",
           "fmt_lik", "fmt_p", "fmt_fixed", "fmt_corr", "set_display"]

DIGITS = 4
LIK_DECIMALS = 2
P_DIGITS = 3
P_FLOOR = 2e-16
CORR_DECIMALS = 2  # lme4's VarCorr in summary(): max(2, digits - 2) with digits = 4
FIXEF_CORR_DECIMALS = 3  # lme4's Correlation of Fixed Effects: round(x, 3)

_NEG_ZERO = re.compile(r"^-(?=0*(?:\.0*)?(?:[eE][-+]?\d+)?%?$)")


def _unsigned_zero(text: str) -> str:
    return _NEG_ZERO.sub("", text)


def fmt(x, spec: str | None = None) -> str:
    """``x`` with ``DIGITS`` significant digits, or with a format ``spec`` such as ``".2f"``."""
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)) and spec is None:
        return str(int(x))
    x = float(x)
    if not np.isfinite(x):
        return "NA" if np.isnan(x) else ("Inf" if x > 0 else "-Inf")
    if spec is None:
        if x == 0:
            return "0"
        spec = f".{DIGITS}g" if 1e-4 <= abs(x) < 1e6 else f".{DIGITS - 1}e"
    return _unsigned_zero(format(x, spec))


def fmt_lik(x) -> str:
    """A number on the log-likelihood scale (objective, AIC, χ², ...), with ``LIK_DECIMALS`` decimals."""
    return fmt(x, f".{LIK_DECIMALS}f")


def fmt_p(p) -> str:
    """A p-value as R prints it: ``P_DIGITS`` significant digits, "<2e-16" below that."""
    p = float(p)
    if not np.isfinite(p):
        return "NA"
    return "<2e-16" if p < P_FLOOR else fmt(p, f".{P_DIGITS}g")


def fmt_fixed(values) -> list[str]:
    """Numbers printed side by side with one number of decimals: ``DIGITS`` significant digits
    for the largest in absolute value, as many decimals for the others (never more digits)."""
    values = np.asarray(values, dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    top = finite.max() if finite.size else 0.0
    decimals = DIGITS - 1 - int(np.floor(np.log10(top))) if top > 0 else DIGITS - 1
    return [fmt(v, f".{max(decimals, 0)}f") for v in values]


def fmt_corr(x, decimals: int = CORR_DECIMALS) -> str:
    """A correlation with a fixed number of decimals, as R's ``format(round(x, d), nsmall = d)``."""
    return "NaN" if not np.isfinite(x) else fmt(x, f".{decimals}f")


def set_display() -> None:
    """Make pandas tables and numpy arrays in a notebook print through this policy."""
    import pandas as pd  # only for notebooks

    pd.set_option("display.float_format", fmt)
    np.set_printoptions(formatter={"float_kind": fmt})
