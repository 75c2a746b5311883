"""Clear errors instead of library tracebacks (issue 15): each names the column, level or value at fault.

Where R answers (a constant response, lm with no residual degrees of freedom),
the answer is in tests/reference/interface_reference.json.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import lmelib
from conftest import load_reference

ERRORS = load_reference("interface_reference.json")["errors"]


def sleep():
    return lmelib.datasets.load_sleepstudy()


def cbpp():
    return lmelib.datasets.load_cbpp()


def duplicated_days():
    s = sleep()
    return pd.concat([s, s[["Days"]]], axis=1)


# (call, exception, message pattern)
CASES = {
    "formula column missing": (
        lambda: lmelib.lmer("Reaction ~ day + (1 | Subject)", sleep()),
        KeyError, "column 'day' named in the formula 'Reaction ~ day \\+ \\(1 \\| Subject\\)' is not in the data"),
    "weights= column missing": (
        lambda: lmelib.glmer("incidence ~ period + (1 | herd)", cbpp(), family="poisson", weights="w"),
        KeyError, "column 'w' named in weights= is not in the data"),
    "offset= column missing": (
        lambda: lmelib.glmer("incidence ~ period + (1 | herd)", cbpp(), family="poisson", offset="lsize"),
        KeyError, "column 'lsize' named in offset= is not in the data"),
    "cbind() column missing": (
        lambda: lmelib.glmer("cbind(incidence, sz - incidence) ~ period + (1 | herd)", cbpp()),
        KeyError, "column 'sz' named in the formula 'cbind\\(incidence, sz - incidence\\) ~ period"),
    "VarIdent column missing": (
        lambda: lmelib.lmer("Reaction ~ Days + (1 | Subject)", sleep(), weights=lmelib.VarIdent("group")),
        KeyError, "column 'group' named in VarIdent\\(by=...\\) is not in the data"),
    "AR1 column missing": (
        lambda: lmelib.gls("Reaction ~ Days", sleep(), correlation=lmelib.AR1("day", "Subject")),
        KeyError, "column 'day' named in AR1\\(time=...\\) is not in the data"),
    "duplicated column names": (
        lambda: lmelib.lmer("Reaction ~ Days + (1 | Subject)", duplicated_days()),
        ValueError, "more than one column named 'Days'"),
    "reml a string": (
        lambda: lmelib.lmer("Reaction ~ Days + (1 | Subject)", sleep(), reml="FALSE"),
        TypeError, "reml must be True or False, not 'FALSE'"),
    "reml an int": (
        lambda: lmelib.gls("Reaction ~ Days", sleep(), correlation=lmelib.AR1("Days", "Subject"), reml=0),
        TypeError, "reml must be True or False, not 0"),
    "refit reml a string": (
        lambda: lmelib.lmer("Reaction ~ Days + (1 | Subject)", sleep()).refit("ML"),
        TypeError, "reml must be True or False, not 'ML'"),
    "lmer weights= a column name": (
        lambda: lmelib.lmer("Reaction ~ Days + (1 | Subject)", sleep().assign(w=1.0), weights="w"),
        TypeError, "weights= takes an nlme structure such as lmelib.VarIdent"),
    "gls correlation= a number": (
        lambda: lmelib.gls("Reaction ~ Days", sleep(), correlation=0.5),
        TypeError, "correlation= takes an nlme structure such as lmelib.AR1"),
    "constant response": (
        lambda: lmelib.lmer("Reaction ~ Days + (1 | Subject)", sleep().assign(Reaction=300.0)),
        ValueError, "response 'Reaction' is constant \\(300 in all 180 rows\\)"),
    "constant response, gls": (
        lambda: lmelib.gls("Reaction ~ Days", sleep().assign(Reaction=1),
                           correlation=lmelib.AR1("Days", "Subject")),
        ValueError, "response 'Reaction' is constant"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_clear_error(case):
    call, exc, pattern = CASES[case]
    with pytest.raises(exc, match=pattern) as err:
        call()
    if "named in the formula" not in pattern:  # a weights= or structure column is not in the formula
        assert "named in the formula" not in str(err.value)


def test_lme4_fits_a_constant_response_only_with_warnings():
    """What lme4 does instead (σ ≈ 0 and two convergence warnings): lmelib's error says so."""
    ref = ERRORS["constant_response"]
    assert ref["error"] is None and ref["sigma"] < 1e-10
    assert any("failed to converge" in w for w in ref["warnings"])


def test_lm_with_zero_residual_df_has_sigma_nan():
    ref = ERRORS["lm_zero_df"]
    assert ref["sigma"] is None and ref["df_residual"] == 0  # R: sigma NaN
    m = lmelib.lm(ref["formula"], pd.DataFrame(ref["data"], dtype=float))
    assert m.df_resid == 0 and np.isnan(m.sigma)
    assert np.isnan(m.se).all() and np.isnan(m.coef_table["t value"]).all()
    np.testing.assert_allclose(m.fitted(), ref["data"]["y"], atol=1e-12)
    assert "0 degrees of freedom" in str(m.summary())


def test_grouping_column_mixing_ints_and_strings_fits_as_labels():
    s = sleep()
    s["Subject"] = [("s" + str(v)) if v % 2 else int(v) for v in s["Subject"].astype(int)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = lmelib.lmer("Reaction ~ Days + (1 | Subject)", s)
    assert m.ngrps == {"Subject": 18}
    assert {"308", "s309"} <= set(m.ranef["Subject"].index)
