"""lmelib's one formatting policy (lmelib/formatting.py), table-driven."""

import numpy as np
import pandas as pd
import pytest

import lmelib
from lmelib.formatting import fmt, fmt_lik, fmt_p, set_display


@pytest.mark.parametrize("x,spec,want", [
    (30.60599362262903, None, "30.61"),      # 4 significant digits, as lme4's summary
    (0.11936136496761655, None, "0.1194"),
    (5829.21288, None, "5829"),
    (-0.04244216, None, "-0.04244"),
    (1.234567e-5, None, "1.235e-05"),       # small but not noise: still 4 significant digits
    (2.5e7, None, "2.500e+07"),
    (0.0, None, "0"),
    (7, None, "7"),                          # integers as they are
    (np.int64(887), None, "887"),
    (True, None, "True"),
    (float("nan"), None, "NA"),
    (float("inf"), None, "Inf"),
    (0.6381505, ".3f", "0.638"),
    (-1e-12, ".3f", "0.000"),                # never a negative zero
    (-0.0004, ".1%", "0.0%"),
    (-2e-13, ".2e", "-2.00e-13"),            # not a zero once printed: the sign stays
    (0.9687248, ".1%", "96.9%"),
])
def test_fmt(x, spec, want):
    assert fmt(x, spec) == want


@pytest.mark.parametrize("x,want", [(5829.212888, "5829.21"), (-2914.61479, "-2914.61"), (-1e-9, "0.00"),
                                    (63.01234, "63.01")])
def test_fmt_lik(x, want):
    assert fmt_lik(x) == want


@pytest.mark.parametrize("p,want", [(1.5e-26, "<2e-16"), (0.04567, "0.0457"), (1e-10, "1e-10"),
                                    (0.5, "0.5"), (float("nan"), "NA")])
def test_fmt_p(p, want):
    assert fmt_p(p) == want


def test_set_display_formats_pandas_and_numpy():
    old_np = np.get_printoptions()
    try:
        set_display()
        df = pd.DataFrame({"est": [30.60599362262903, -1e-12]})
        assert "30.61" in df.to_string() and "30.606" not in df.to_string()
        assert "30.61" in df._repr_html_()
        assert np.array2string(np.array([1.571506, 0.0])) == "[1.572 0]"
    finally:
        pd.reset_option("display.float_format")
        np.set_printoptions(**old_np)


def test_summary_shows_policy_digits_and_no_machine_details():
    m = lmelib.lmer("math5 ~ math3 + (math3 | school)", lmelib.datasets.load("jsp"), reml=True)
    text = str(m.summary())
    assert f"REML criterion at convergence: {fmt_lik(m.objective)}" in text
    assert fmt(m.fixef["math3"]) in text
    for machine_dependent in ("evaluations", "ftol", "xtol", "success", "roundoff"):
        assert machine_dependent not in text
    assert "converged    yes" in text
    assert "on bound" in text  # this fit is singular: the slope's variance factor is exactly 0
