"""Names as lme4 prints them (issue 15): fixed effects, random-effect columns, VarCorr, confint.

Reference: the "names" and "abbreviate" entries of
tests/reference/interface_reference.json, written by
tests/reference/make_interface_reference.R: lme4's (lm's, nlme's gls')
names for formulas on the repository's data sets, and R's ``abbreviate()``.
The data are read as R reads them: the columns listed under "factors" become
categories with sorted levels (R's ``factor()``).  ``python`` is the formula
text lmelib is given where it differs from R's (``I(age**2)``): the names must
still be R's.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import lmelib
from lmelib.names import abbreviate, r_deparse
from conftest import load_reference

REF = load_reference("interface_reference.json")
NAMES = {e["id"]: e for e in REF["names"]}


def r_data(entry) -> pd.DataFrame:
    """data/<file> with R's factor() columns, and contraception's 0/1 response use01."""
    d = pd.read_csv(lmelib.datasets.data_path(entry["data"]))
    for col in entry["factors"]:
        d[col] = pd.Categorical(d[col], categories=sorted(d[col].dropna().unique()))
    if "use01" in entry["formula"]:
        d["use01"] = (d["use"] == "Y").astype(int)
    return d


def fit(entry, data=None):
    data = r_data(entry) if data is None else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if entry["kind"] == "lmer":
            return lmelib.lmer(entry["python"], data, reml=False)
        if entry["kind"] == "glmer":
            return lmelib.glmer(entry["python"], data, family=entry["family"])
        if entry["kind"] == "gls":  # corCompSymm(form = ~ 1 | Subject)
            return lmelib.gls(entry["python"], data, correlation=lmelib.CompSymm("Subject"))
        return lmelib.lm(entry["python"], data)


@pytest.fixture(scope="module")
def fits():
    return {k: fit(e) for k, e in NAMES.items()}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_fixed_effect_names(fits, name):
    ref, m = NAMES[name], fits[name]
    assert list(m.fixef.index) == ref["fixef"]
    assert list(m.vcov.index) == list(m.vcov.columns) == ref["vcov"]
    assert list(m.coef_table.index) == ref.get("coef_table", ref["fixef"])
    text = "\n".join(line for line in str(m.summary()).splitlines() if not line.startswith("Formula:"))
    assert all(n in text for n in ref["fixef"])
    assert "[T." not in text and "**" not in text  # the formula line shows the formula as given


RANDOM = sorted(k for k, e in NAMES.items() if "ranef" in e)


@pytest.mark.parametrize("name", RANDOM)
def test_random_effect_columns(fits, name):
    ref, m = NAMES[name], fits[name]
    assert {g: list(df.columns) for g, df in m.ranef.items()} == ref["ranef"]


@pytest.mark.parametrize("name", RANDOM)
def test_varcorr_names_and_na(fits, name):
    """as.data.frame(VarCorr(m)): R's names in var1/var2, NA (not None) where R has NA."""
    ref, vc = NAMES[name]["varcorr"], fits[name].varcorr
    assert [g if g != "Residual" else g for g in vc["grp"]] == ref["grp"]
    for col in ("var1", "var2"):
        assert vc[col].isna().tolist() == [v is None for v in ref[col]]
        assert vc[col].dropna().tolist() == [v for v in ref[col] if v is not None]
    text = str(vc)
    assert "None" not in text
    assert ("<NA>" in text) == any(v is None for v in ref["var1"] + ref["var2"])


@pytest.mark.parametrize("name", [k for k in RANDOM if NAMES[k]["kind"] == "lmer"])
def test_confint_rows(fits, name):
    """lme4's .sig01, ..., .sigma rows, then the fixed effects by name."""
    ci = fits[name].confint(method="Wald")
    assert list(ci.index) == NAMES[name]["confint_wald"]


def test_names_do_not_depend_on_how_the_power_is_written():
    ref = NAMES["contraception_ri"]
    assert ref["python"] != ref["formula"]
    m = fit(dict(ref, python=ref["formula"]))
    assert list(m.fixef.index) == ref["fixef"]


def test_a_name_selects_the_coefficient_that_encodes_its_level(fits):
    """fixef["social2"] is the effect of social == 2 in predictions on new data."""
    m = fits["jsp_social_lm"]
    nd = pd.DataFrame({"math3": [20, 20, 20], "social": [1, 2, 9]})
    p = m.predict(nd)
    assert p.iloc[1] - p.iloc[0] == pytest.approx(m.fixef["social2"], rel=1e-10)
    assert p.iloc[2] - p.iloc[0] == pytest.approx(m.fixef["social9"], rel=1e-10)
    g = fits["cbpp_period"]
    eta = g.predict(pd.DataFrame({"period": [1, 4], "herd": [1, 1]}), re=False)
    assert eta.iloc[1] - eta.iloc[0] == pytest.approx(g.fixef["period4"], rel=1e-10)


def test_anova_names_the_added_fixed_effect():
    ref = NAMES["jsp_interaction"]
    data = r_data(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m0 = lmelib.lmer("math5 ~ math3 + (1 | school)", data, reml=False)
        m1 = lmelib.lmer("math5 ~ math3 + gender + (1 | school)", data, reml=False)
    notes = " ".join(lmelib.anova(m0, m1).notes)
    assert "gendergirl" in notes and "[T." not in notes


def test_dask_fit_has_the_same_names():
    dd = pytest.importorskip("dask.dataframe")
    ref = NAMES["jsp_interaction"]
    data = r_data(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lmelib.lmer(ref["python"], dd.from_pandas(data, npartitions=2), reml=False)
    assert list(m.fixef.index) == ref["fixef"]


ABBR = REF["abbreviate"]


@pytest.mark.parametrize("minlength", [6, 11])
def test_abbreviate_as_r(minlength):
    assert abbreviate(ABBR["names"], minlength) == ABBR[f"minlength{minlength}"]


@pytest.mark.parametrize("python, r", [
    ("I(age ** 2)", "I(age^2)"),  # R's deparse: ^ and / without spaces
    ("log(base / 4)", "log(base/4)"),
    ("I((x + 1) ** 2)", "I((x + 1)^2)"),
    ("I(x - (y - z))", "I(x - (y - z))"),
    ("I(2 ** -x)", "I(2^-x)"),
    ("poly(x, degree=2)", "poly(x, degree = 2)"),
    ("C(g, contr.treatment('2'))", 'C(g, contr.treatment("2"))'),
    ("I(x == True)", "I(x == TRUE)"),
])
def test_deparse_table(python, r):
    assert r_deparse(python) == r


def test_contrast_columns_named_as_r():
    """R: C(g, sum)1..3 and C(g, helmert)1..3 are numbered; poly contrasts are .L, .Q, .C."""
    d = pd.DataFrame({"y": np.arange(40.0) % 7, "g": pd.Categorical(np.array(list("abcd"))[np.arange(40) % 4])})
    assert list(lmelib.lm("y ~ C(g, Sum)", d).fixef.index)[1:] == ["C(g, Sum)1", "C(g, Sum)2", "C(g, Sum)3"]
    assert list(lmelib.lm("y ~ C(g, Helmert)", d).fixef.index)[1:] == [f"C(g, Helmert){k}" for k in (1, 2, 3)]
    assert list(lmelib.lm("y ~ C(g, Poly)", d).fixef.index)[1:] == ["C(g, Poly).L", "C(g, Poly).Q", "C(g, Poly).C"]


def test_factor_of_numbers_logical_and_float_levels():
    """R's names for a logical column (xTRUE) and a factor of whole floats (g2, not g2.0)."""
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"y": rng.normal(size=40), "flag": np.arange(40) % 2 == 0,
                      "g": pd.Categorical(np.arange(40) % 3 + 1.0)})
    m = lmelib.lm("y ~ flag + g", d)
    assert list(m.fixef.index) == ["(Intercept)", "flagTRUE", "g2", "g3"]
