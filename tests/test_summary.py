"""summary() contents (lmelib/summary.py): what each section says, against lme4 and closed forms.

The layout cell by cell against lme4's printout is tests/test_summary_layout.py; here the numbers
and notes.  References: tests/reference/lmer_reference.json (lme4's logLik, AIC, BIC, deviance,
isSingular) and its "lm" entries (R's lm).  Printed numbers are compared as printed: lme4's
values rounded to the decimals the summary shows.
"""

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import lmelib
from conftest import fit_lmer, load_reference
from lmelib.formatting import fmt, fmt_lik
from lmelib.ranef import varcorr_table
from lmelib.summary import Summary, format_fixef_correlation, format_varcorr

REF = load_reference("lmer_reference.json")
MODELS = {r["name"]: r for r in REF["models"]}
LM = {r["name"]: r for r in REF["lm"]}


def fit(name):
    ref = MODELS[name]
    return ref, fit_lmer(ref["data"], ref["formula"], ref["reml"])


def section(summary: Summary, title: str):
    return dict(summary.sections)[title]


def test_ml_fit_criteria_as_lme4():
    ref, m = fit("sleepstudy_rs_ml")
    s = m.summary()
    assert s.header == ("Linear mixed model fit by maximum likelihood",
                        "Formula: Reaction ~ Days + (Days | Subject)")
    names, values = (line.split() for line in section(s, "").splitlines())
    assert names == ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    want = [f"{ref[k]:.1f}" for k in ("aic", "bic", "loglik", "objective")] + [str(ref["nobs"] - ref["df"])]
    assert values == want


def test_reml_criterion_as_lme4():
    ref, m = fit("sleepstudy_rs_reml")
    s = m.summary()
    assert s.header[0] == "Linear mixed model fit by REML"
    assert section(s, "") == f"REML criterion at convergence: {fmt_lik(ref['objective'])}"


def test_random_effects_section_counts_groups():
    ref, m = fit("penicillin_crossed_reml")
    text = section(m.summary(), "Random effects")
    groups = "; ".join(f"{g}, {k}" for g, k in ref["ngrps"].items())
    assert text.splitlines()[-1] == f"Number of obs: {ref['nobs']}, groups:  {groups}"
    assert text.splitlines()[-2].split()[0] == "Residual"


@pytest.mark.parametrize("name", ["dyestuff2_ri_reml", "sleepstudy_rs_reml"])
def test_singular_note_when_lme4_says_singular(name):
    ref, m = fit(name)
    noted = any(n.startswith("boundary (singular) fit") for n in m.summary().notes)
    assert noted == ref["singular"]


def test_fixed_effects_and_satterthwaite_header():
    ref, m = fit("sleepstudy_rs_reml")
    plain = section(m.summary(), "Fixed effects")
    assert list(plain.columns) == ["Estimate", "Std. Error", "t value"]
    np.testing.assert_allclose(plain["Estimate"], ref["fixef"]["values"], rtol=1e-5)
    np.testing.assert_allclose(plain["Std. Error"], ref["se"], rtol=1e-4)
    s = m.summary(ddf="Satterthwaite")
    assert s.header[0] == "Linear mixed model fit by REML. t-tests use Satterthwaite's method"
    table = section(s, "Fixed effects")
    assert "df" in table.columns and table["Pr(>|t|)"].map(type).eq(str).all()


def test_fixef_correlation_from_vcov():
    """corr = D^-1/2 V D^-1/2: lower triangle, three decimals, abbreviated names."""
    names = ["(Intercept)", "x", "z"]
    sd = np.array([2.0, 1.0, 0.5])
    corr = np.array([[1.0, -0.5, 0.25], [-0.5, 1.0, 0.0], [0.25, 0.0, 1.0]])
    vcov = pd.DataFrame(corr * np.outer(sd, sd), index=names, columns=names)
    lines = format_fixef_correlation(vcov).splitlines()
    assert lines[0].split() == ["(Intr)", "x"]
    assert lines[1].split() == ["x", "-0.500"]
    assert lines[2].split() == ["z", "0.250", "0.000"]


def test_fixef_correlation_absent_or_withheld():
    one = pd.DataFrame([[1.0]], index=["a"], columns=["a"])
    assert format_fixef_correlation(one) is None
    names = [f"x{i}" for i in range(13)]
    big = pd.DataFrame(np.eye(13), index=names, columns=names)
    assert format_fixef_correlation(big).startswith("Correlation matrix not shown by default, as p = 13 > 12")


def test_varcorr_block_variances_and_correlation():
    """σ² λλᵀ for λ = [[2, 0], [1, 1]], σ = 0.5: variances 1 and 0.5, sd 1 and 0.7071, corr 0.71."""
    term = SimpleNamespace(name="g", columns=("(Intercept)", "x"), ell=2)
    lines = format_varcorr(varcorr_table([term], [np.array([[2.0, 0.0], [1.0, 1.0]])], 0.5)).splitlines()
    assert lines[0].split() == ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]
    assert lines[1].split() == ["g", "(Intercept)", fmt(1.0), fmt(1.0)]
    assert lines[2].split() == ["x", fmt(0.5), fmt(np.sqrt(0.5)), "0.71"]
    assert lines[3].split() == ["Residual", fmt(0.25), fmt(0.5)]


def test_summary_text_and_html():
    s = Summary(("Title <a>", "Formula: y ~ x"), (("", "plain line"), ("Table", pd.DataFrame({"v": [1.5]}))),
                ("a note",))
    text = str(s)
    assert text.splitlines()[:4] == ["Title <a>", "Formula: y ~ x", "", "plain line"]
    assert "Table:" in text and text.rstrip().endswith("a note")
    html = s._repr_html_()
    assert "Title &lt;a&gt;" in html and "<pre>plain line</pre>" in html and "<i>Table</i>" in html


def test_lm_summary_as_r():
    ref = LM["jsp_single_mean"]
    m = lmelib.lm(ref["formula_py"], lmelib.datasets.load(ref["data"].removesuffix(".csv")))
    s = m.summary()
    assert s.header[0] == "Linear model fit by least squares"
    last = section(s, "")
    assert f"Residual standard error: {fmt(ref['sigma'])} on {ref['df_residual']} degrees of freedom" in last
    assert re.search(rf"logLik: {re.escape(fmt_lik(ref['loglik']))} \(df={ref['df']}\)", last)


def test_gls_summary_has_structure_and_sigma():
    d = lmelib.datasets.load("orthodont")
    m = lmelib.gls("distance ~ age + Sex", d, correlation=lmelib.CompSymm("Subject"))
    s = m.summary()
    assert s.header[0] == "Generalized least squares fit by REML"
    table = section(s, "Error structure: corCompSymm(form = ~ 1 | Subject) (95% Wald intervals)")
    assert list(table.columns) == ["lower", "est.", "upper"]
    assert (table["lower"] < table["est."]).all() and (table["est."] < table["upper"]).all()
    assert f"Residual standard error: {fmt(m.sigma)}" in dict(s.sections).values()
