"""predict(newdata), fitted() and residuals() as R gives them (issue 15, "silent wrong results").

Reference: tests/reference/interface_reference.json (make_interface_reference.R).
R's newdata hold factors; here the same values are passed as str, int and a
category in another order, and every variant must give R's predictions.
Tolerances: 1e-6 relative for lm and gls (closed form), 1e-4 for lmer (the
optimum to ~1e-7 in θ), 1e-3 for glmer (lmelib's optimum lies 6e-4 below lme4's
in −2 log L, so μ̂ differs in the fourth digit).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import lmelib
from conftest import load_reference

REF = load_reference("interface_reference.json")
PREDICT = {p["id"]: p for p in REF["predict"]}
RTOL = {"lm": 1e-6, "gls": 1e-6, "lmer": 1e-4, "glmer": 1e-3}


def _fit(entry):
    data = lmelib.datasets.load(entry["data"].removesuffix(".csv"))
    kind, formula = entry["kind"], entry["formula"]
    if kind == "lmer":
        return lmelib.lmer(formula, data)
    if kind == "glmer":
        return lmelib.glmer(formula, data, family=entry["family"])
    if kind == "lm":
        return lmelib.lm(formula, data)
    return lmelib.gls(formula, data, correlation=lmelib.CompSymm("Subject"))


_FITS = {}


def fitted_model(name):
    if name not in _FITS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITS[name] = _fit(PREDICT[name])
    return _FITS[name]


def _as_int(values):
    return [int(v) for v in values]


def _as_category_reversed(values, fitted_levels):
    """A category whose categories run in the opposite order to the fit's (plus any new values)."""
    levels = [str(v) for v in fitted_levels][::-1]
    levels += [v for v in dict.fromkeys(values) if v not in levels]
    return pd.Categorical(values, categories=levels)


def newdata(entry, variant, model):
    """R's newdata with each factor column as str, int or a reordered category."""
    out = {}
    for col, values in entry["newdata"].items():
        if col not in entry["factors"]:
            out[col] = values
        elif variant == "int" and all(str(v).isdigit() for v in values):
            out[col] = _as_int(values)
        elif variant == "category":
            levels = model.frame.data[col].cat.categories
            out[col] = _as_category_reversed(values, levels)
        else:
            out[col] = [str(v) for v in values]
    return pd.DataFrame(out, index=[10 * i + 3 for i in range(len(entry["newdata"][col]))])


def _predict(model, nd, kind, re):
    if kind == "glmer":
        return model.predict(nd, type="response", re=re)
    if kind == "lmer":
        return model.predict(nd, re=re)
    return model.predict(nd)


@pytest.mark.parametrize("variant", ["str", "int", "category"])
@pytest.mark.parametrize("name", sorted(PREDICT))
def test_predictions_match_r_whatever_the_dtype(name, variant):
    entry = PREDICT[name]
    m = fitted_model(name)
    nd = newdata(entry, variant, m)
    rtol = RTOL[entry["kind"]]
    fixed = _predict(m, nd, entry["kind"], re=False)
    np.testing.assert_allclose(fixed.to_numpy(), entry["fixed_only"], rtol=rtol)
    assert fixed.index.equals(nd.index)
    if entry.get("re") is not None:
        cond = _predict(m, nd, entry["kind"], re=True)
        np.testing.assert_allclose(cond.to_numpy(), entry["re"], rtol=rtol)
        assert cond.index.equals(nd.index)


def test_cbpp_rows_of_the_issue():
    """cbpp herd 1 with period [1, 4, 2] as int: about [0.308, 0.084, 0.142], not [0.0109, 0.0, 0.0002]."""
    m = fitted_model("cbpp_period")
    p = m.predict(pd.DataFrame({"period": [1, 4, 2], "herd": [1, 1, 1]}), type="response")
    np.testing.assert_allclose(p, [0.3082, 0.0841, 0.1417], atol=1e-3)


@pytest.mark.parametrize("name, column, level", [
    ("cbpp_period", "period", 5),
    ("jsp_social_lm", "social", 10),
    ("jsp_social", "social", "10"),
    ("orthodont_gls_cs", "Sex", "Other"),
])
def test_new_level_of_a_fixed_factor_is_an_error(name, column, level):
    """R: 'factor social has new level 10' (recorded in the reference)."""
    assert REF["errors"]["new_factor_level"]["error"] == "factor social has new level 10"
    entry = PREDICT[name]
    m = fitted_model(name)
    nd = pd.DataFrame({c: [v[0]] for c, v in entry["newdata"].items()})
    nd[column] = [level]
    with pytest.raises(ValueError, match=f"factor {column} has new level {level}"):
        _predict(m, nd, entry["kind"], re=False)


def test_factor_call_new_level_is_an_error():
    s = lmelib.datasets.load_sleepstudy()
    m = lmelib.lm("Reaction ~ factor(Days)", s)
    np.testing.assert_allclose(m.predict(pd.DataFrame({"Days": [3.0, "3"]})), m.fixef.iloc[0] + m.fixef.iloc[3])
    with pytest.raises(ValueError, match="factor Days has new level 12"):
        m.predict(pd.DataFrame({"Days": [12]}))


# ------------------------------------------------------------ grouping levels

# (fitted levels, new values, expected codes): by value, then as a number, then as text
MATCHES = [
    ([308.0, 309.0], [308, 309.0, 310], [0, 1, -1]),
    ([308, 309], ["308", "309", "x"], [0, 1, -1]),
    (["1", "2", "a"], [1, 2.0, "a"], [0, 1, 2]),
    ([1, 2], [np.nan, 2], [-1, 1]),
    (["early", "late"], pd.Categorical(["late", "early"], categories=["late", "early"]), [1, 0]),
]


@pytest.mark.parametrize("levels, values, expected", MATCHES)
def test_match_levels(levels, values, expected):
    from lmelib.newdata import match_levels

    codes = match_levels(pd.Series(values, dtype=object if not isinstance(values, pd.Categorical) else None),
                         pd.Index(levels))
    assert codes.tolist() == expected



def test_grouping_levels_matched_by_value():
    """Fitted with ids as float (308.0), predicted with int 308 or str "308": the same level."""
    s = lmelib.datasets.load_sleepstudy()
    s["Subject"] = s["Subject"].astype(float)
    m = lmelib.lmer("Reaction ~ Days + (Days | Subject)", s)
    ref = PREDICT["sleepstudy_rs"]
    for ids in ([308, 309, 372, 999], ["308", "309", "372", "999"], [308.0, 309.0, 372.0, 999.0]):
        p = m.predict(pd.DataFrame({"Days": ref["newdata"]["Days"], "Subject": ids}))
        np.testing.assert_allclose(p, ref["re"], rtol=1e-4)


def test_missing_grouping_value_gets_population_prediction_with_warning():
    ref = REF["predict_na_group"]
    m = lmelib.lmer("Reaction ~ Days + (Days | Subject)", lmelib.datasets.load_sleepstudy())
    nd = pd.DataFrame({"Days": ref["newdata"]["Days"], "Subject": [308, np.nan]})
    with pytest.warns(UserWarning, match="1 row.*no value of grouping factor 'Subject'.*population"):
        p = m.predict(nd)
    np.testing.assert_allclose(p, ref["re"], rtol=1e-4)


def test_mixed_int_and_str_grouping_column_is_labels():
    s = lmelib.datasets.load_sleepstudy()
    ids = s["Subject"].astype(int).astype(object)
    ids[ids == 308] = "s308"
    s["Subject"] = ids
    m = lmelib.lmer("Reaction ~ Days + (Days | Subject)", s)
    assert "s308" in m.ranef["Subject"].index and "309" in m.ranef["Subject"].index
    ref = lmelib.lmer("Reaction ~ Days + (Days | Subject)", lmelib.datasets.load_sleepstudy())
    assert m.objective == pytest.approx(ref.objective, rel=1e-10)
    p = m.predict(pd.DataFrame({"Days": [0, 0], "Subject": ["s308", 309]}))
    np.testing.assert_allclose(p, ref.predict(pd.DataFrame({"Days": [0, 0], "Subject": [308, 309]})), rtol=1e-8)


# ------------------------------------------------------------- row labels


def _long(data):
    """A binary response for glmer: Reaction above 300 ms (missing where Reaction is)."""
    return (data["Reaction"] > 300).astype(float).where(data["Reaction"].notna())


def _fits_on(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "lm": lmelib.lm("Reaction ~ Days", data),
            "lmer": lmelib.lmer("Reaction ~ Days + (Days | Subject)", data),
            "glmer": lmelib.glmer("long ~ Days + (1 | Subject)", data.assign(long=_long(data))),
            "gls": lmelib.gls("Reaction ~ Days", data, correlation=lmelib.AR1("Days", "Subject")),
        }


@pytest.mark.parametrize("kind", ["lm", "lmer", "glmer", "gls"])
def test_fitted_residuals_keep_the_data_index(kind):
    s = lmelib.datasets.load_sleepstudy().iloc[10:]
    m = _fits_on(s)[kind]
    for series in (m.fitted(), m.residuals(), m.predict()):
        assert series.index.equals(s.index)
    d = s.copy()
    d["fit"] = m.fitted()
    assert d["fit"].notna().all()


@pytest.mark.parametrize("kind", ["lm", "lmer", "glmer", "gls"])
def test_na_omit_and_na_exclude(kind):
    """R: na.omit gives the rows used, named by the data's rows; na.exclude pads with NA."""
    ref = REF["na_exclude"]
    s = lmelib.datasets.load_sleepstudy()
    s.loc[[r - 1 for r in ref["rows_na"]], "Reaction"] = np.nan
    omit = _fits_on(s)[kind]
    assert list(omit.fitted().index[:8]) == [int(r) - 1 for r in ref["fitted_omit_names"]]
    assert len(omit.residuals()) == ref["n_omit"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        formula = {"lm": "Reaction ~ Days", "lmer": "Reaction ~ Days + (Days | Subject)",
                   "gls": "Reaction ~ Days", "glmer": "long ~ Days + (1 | Subject)"}[kind]
        if kind == "glmer":
            excl = lmelib.glmer(formula, s.assign(long=_long(s)), na_action="exclude")
        elif kind == "gls":
            excl = lmelib.gls(formula, s, correlation=lmelib.AR1("Days", "Subject"), na_action="exclude")
        else:
            excl = getattr(lmelib, kind)(formula, s, na_action="exclude")
    for series in (excl.fitted(), excl.residuals()):
        assert len(series) == ref["n_exclude"] and series.index.equals(s.index)
        assert series.isna().to_numpy().nonzero()[0].tolist() == [r - 1 for r in ref["rows_na"]]
    if kind == "lmer":
        np.testing.assert_allclose(excl.fitted().iloc[:8], np.array(ref["fitted_exclude_head"], dtype=float),
                                   rtol=1e-5)
        np.testing.assert_allclose(excl.residuals().iloc[:8], np.array(ref["resid_exclude_head"], dtype=float),
                                   rtol=1e-3, atol=1e-3)
    text = str(excl.summary())  # residual quantiles over the rows used, not NaN
    assert "nan" not in text.lower()


def test_na_action_must_be_omit_or_exclude():
    with pytest.raises(ValueError, match="na_action must be 'omit'.*or 'exclude'"):
        lmelib.lm("Reaction ~ Days", lmelib.datasets.load_sleepstudy(), na_action="pass")
