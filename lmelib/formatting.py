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
* a value that rounds to zero prints without a sign (never "-0.000").

``set_display()`` makes pandas and numpy print through the same policy in a
notebook.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["DIGITS", "LIK_DECIMALS", "P_DIGITS", "fmt", "fmt_lik", "fmt_p", "set_display"]

DIGITS = 4
LIK_DECIMALS = 2
P_DIGITS = 3
P_FLOOR = 2e-16

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


def set_display() -> None:
    """Make pandas tables and numpy arrays in a notebook print through this policy."""
    import pandas as pd  # only for notebooks

    pd.set_option("display.float_format", fmt)
    np.set_printoptions(formatter={"float_kind": fmt})
