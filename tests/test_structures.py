"""Error structures against nlme (tests/reference/nlme_reference.json).

Tolerances (issue "residual error structures"): log-likelihood 1e-6 relative,
parameters 1e-4 — fixed effects and σ relative, structure parameters (φ,
standard-deviation ratios, powers) and correlations absolute on their natural
scale.  nlme's ``varPower()`` without a covariate (variance a power of the
fitted values) is not offered by lmelib; those fits are not compared.
"""

import numpy as np
import pandas as pd
import pytest

import lmelib
from lmelib import AR1, ARMA, CAR1, CompSymm, VarExp, VarIdent
from conftest import load_reference

REF = {r["name"]: r for r in load_reference("nlme_reference.json")["models"]}


def _data(name):
    d = lmelib.datasets.load(name)
    if name == "ovary":  # nlme's corAR1(form = ~ 1 | Mare): position within the mare
        d["obs"] = d.groupby("Mare", observed=True).cumcount() + 1
    return d


# base name -> (data, lmelib formula (None: gls), gls formula, correlation, weights)
SPECS = {
    "grunfeld_gls_ar1": ("grunfeld", None, "inv ~ value + capital", AR1("year", "firm"), None),
    "grunfeld_lme_ri": ("grunfeld", "inv ~ value + capital + (1 | firm)", None, None, None),
    "grunfeld_lme_ri_ar1": ("grunfeld", "inv ~ value + capital + (1 | firm)", None, AR1("year", "firm"), None),
    "grunfeld_lme_ri_varident": ("grunfeld", "inv ~ value + capital + (1 | firm)", None, None, VarIdent("firm")),
    "produc_lme_nested": ("produc", "log(gsp) ~ log(pc) + unemp + (1 | region/state)", None, None, None),
    "produc_lme_nested_ar1": ("produc", "log(gsp) ~ log(pc) + unemp + (1 | region/state)", None,
                              AR1("year", "state"), None),
    "produc_lme_nested_varident": ("produc", "log(gsp) ~ log(pc) + unemp + (1 | region/state)", None, None,
                                   VarIdent("region")),
    "produc_gls_varident": ("produc", None, "log(gsp) ~ log(pc) + unemp", None, VarIdent("region")),
    "ovary_gls_ar1": ("ovary", None, "follicles ~ sin(2*pi*Time) + cos(2*pi*Time)", AR1("obs", "Mare"), None),
    "ovary_lme_ri": ("ovary", "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 | Mare)", None, None, None),
    "ovary_lme_ri_ar1": ("ovary", "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 | Mare)", None,
                         AR1("obs", "Mare"), None),
    "ovary_lme_ri_arma11": ("ovary", "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 | Mare)", None,
                            ARMA("obs", "Mare", p=1, q=1), None),
    "ovary_lme_ri_car1": ("ovary", "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 | Mare)", None,
                          CAR1("Time", "Mare"), None),
    "bodyweight_lme_rs": ("bodyweight", "weight ~ Time * Diet + (Time | Rat)", None, None, None),
    "bodyweight_lme_rs_varexp": ("bodyweight", "weight ~ Time * Diet + (Time | Rat)", None, None, VarExp("Time")),
    "orthodont_lme_ri": ("orthodont", "distance ~ age + Sex + (1 | Subject)", None, None, None),
    "orthodont_gls_cs": ("orthodont", None, "distance ~ age + Sex", CompSymm("Subject"), None),
    "orthodont_gls_cs_varident": ("orthodont", None, "distance ~ age + Sex", CompSymm("Subject"), VarIdent("Sex")),
}
CASES = [(base, method) for base in SPECS for method in ("REML", "ML") if f"{base}_{method.lower()}" in REF]
_FITS = {}


def fit(base, method):
    key = (base, method)
    if key not in _FITS:
        data, formula, gls_formula, cor, wts = SPECS[base]
        d, reml = _data(data), method == "REML"
        if formula is None:
            _FITS[key] = lmelib.gls(gls_formula, d, correlation=cor, weights=wts, reml=reml)
        else:
            _FITS[key] = lmelib.lmer(formula, d, reml=reml, correlation=cor, weights=wts)
    return _FITS[key]


def ref(base, method):
    return REF[f"{base}_{method.lower()}"]


@pytest.mark.parametrize("base, method", CASES)
def test_loglik(base, method):
    r, m = ref(base, method), fit(base, method)
    # never worse than nlme, and equal within 1e-6 relative
    assert m.loglik >= r["loglik"] - 1e-9 * abs(r["loglik"])
    assert m.loglik == pytest.approx(r["loglik"], rel=1e-6)
    assert m.npar == r["df"]


def _level_sds(base, method, m, r):
    """Residual standard deviation of every varIdent stratum (σ is the reference level's,
    and nlme's reference level can differ from lmelib's, the first sorted level)."""
    col = SPECS[base][4].by
    levels = [str(x) for x in lmelib.datasets.load(SPECS[base][0])[col].cat.categories]
    k = len(levels) - 1
    ours = m.sigma * np.concatenate([[1.0], m.structure.to_numpy()[-k:]])
    vs = r["var_struct"]
    full = dict(zip(vs["names"], vs["values"]))
    theirs = np.array([r["sigma"] * full.get(lev, 1.0) for lev in levels])
    return ours, theirs


@pytest.mark.parametrize("base, method", CASES)
def test_fixed_effects_and_sigma(base, method):
    r, m = ref(base, method), fit(base, method)
    np.testing.assert_allclose(m.fixef, r["fixef"]["values"], rtol=1e-4, atol=1e-6 * np.abs(r["fixef"]["values"]).max())
    np.testing.assert_allclose(m.se, r["se"], rtol=1e-3)
    if r["var_struct"] and r["var_struct"]["class"] == "varIdent":
        ours, theirs = _level_sds(base, method, m, r)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    else:
        assert m.sigma == pytest.approx(r["sigma"], rel=1e-4)


def _ratios(names, values, levels):
    """varIdent ratios for every level, relative to ``levels[0]``."""
    full = dict(zip(names, values))
    missing = [lev for lev in levels if lev not in full]
    assert len(missing) == 1, "exactly one level is nlme's reference"
    full[missing[0]] = 1.0
    v = np.array([full[lev] for lev in levels])
    return v / v[0]


@pytest.mark.parametrize("base, method", [c for c in CASES if ref(*c)["cor_struct"] or ref(*c)["var_struct"]])
def test_structure_parameters(base, method):
    r, m = ref(base, method), fit(base, method)
    est = m.structure
    if r["cor_struct"]:
        names = r["cor_struct"]["names"]
        got = est.iloc[: len(names)].to_numpy()
        want = np.array(r["cor_struct"]["values"])
        if r["cor_struct"]["class"] == "corCAR1":  # φ per unit time: compare log φ
            got, want = np.log(got), np.log(want)
            np.testing.assert_allclose(got, want, rtol=1e-3)
        else:
            np.testing.assert_allclose(got, want, atol=1e-4)
    if r["var_struct"]:
        vs = r["var_struct"]
        if vs["class"] == "varIdent":
            col = SPECS[base][4].by
            levels = [str(x) for x in lmelib.datasets.load(SPECS[base][0])[col].cat.categories]
            ours = _ratios([n.split("=", 1)[1] for n in est.index[-(len(levels) - 1):]],
                           est.to_numpy()[-(len(levels) - 1):], levels)
            np.testing.assert_allclose(ours, _ratios(vs["names"], vs["values"], levels), rtol=1e-4)
        else:
            np.testing.assert_allclose(est.to_numpy()[-1:], vs["values"], atol=1e-4)


@pytest.mark.parametrize("base, method", CASES)
def test_normalized_residuals(base, method):
    r, m = ref(base, method), fit(base, method)
    got, want = m.residuals(type="normalized").to_numpy()[:10], np.array(r["resid_normalized_head"])
    if isinstance(SPECS[base][3], CompSymm):
        # nlme whitens compound symmetry with a factor other than the Cholesky one;
        # any whitening F (FᵀF = C⁻¹) gives the same sum of squares within a group
        sizes = lmelib.datasets.load(SPECS[base][0]).groupby(SPECS[base][3].group, observed=True).size()
        k = int(sizes.iloc[0] + sizes.iloc[1])
        assert (got[:k] ** 2).sum() == pytest.approx((want[:k] ** 2).sum(), rel=1e-3)
    else:
        np.testing.assert_allclose(got, want, atol=2e-3)


@pytest.mark.parametrize("base, method", [c for c in CASES if ref(*c)["acf"] and SPECS[c[0]][3] is not None
                                          and not isinstance(SPECS[c[0]][3], CompSymm)])
def test_acf(base, method):
    r, m = ref(base, method), fit(base, method)
    acf = m.acf()
    want = np.array(r["acf"]["acf"])
    k = min(len(want), len(acf), 6)
    np.testing.assert_allclose(acf.to_numpy()[:k], want[:k], atol=2e-3)


def test_ar1_improves_on_independent_errors():
    a = fit("grunfeld_lme_ri", "ML")
    b = fit("grunfeld_lme_ri_ar1", "ML")
    assert b.loglik > a.loglik and b.npar == a.npar + 1


# ---------------------------------------------------------------- bad input


def test_duplicate_times_within_a_group():
    g = lmelib.datasets.load_grunfeld()
    g.loc[1, "year"] = g.loc[0, "year"]
    with pytest.raises(ValueError, match="duplicate value 1935 within firm '1'"):
        lmelib.gls("inv ~ value + capital", g, correlation=AR1("year", "firm"))


def test_stratum_with_one_observation():
    g = lmelib.datasets.load_grunfeld()
    g["stratum"] = np.where(np.arange(len(g)) == 0, "lonely", "rest")
    with pytest.raises(ValueError, match="stratum 'lonely' has a single observation"):
        lmelib.lmer("inv ~ value + capital + (1 | firm)", g, weights=VarIdent("stratum"))


def test_var_power_with_zero_covariate():
    g = lmelib.datasets.load_grunfeld()
    from lmelib import VarPower

    with pytest.raises(ValueError, match="covariate 'capital' has zeros|VarPower"):
        lmelib.gls("inv ~ value", g.assign(capital=g["capital"] * (g.index > 0)), weights=VarPower("capital"))


def test_ar1_needs_whole_number_times():
    g = lmelib.datasets.load_grunfeld().assign(t=lambda d: d["year"] + 0.5 * (d.index % 2))
    with pytest.raises(ValueError, match="must hold whole numbers"):
        lmelib.gls("inv ~ value", g, correlation=AR1("t", "firm"))


def _interval_cases():
    out = []
    for base, method in CASES:
        iv = ref(base, method).get("intervals") or {}
        if "corStruct" in iv or ("varStruct" in iv and ref(base, method)["var_struct"]["class"] != "varIdent"):
            out.append((base, method))
    return out


@pytest.mark.parametrize("base, method", _interval_cases())
def test_structure_intervals(base, method):
    """Wald intervals on the unconstrained scale, as nlme's ``intervals``."""
    r, m = ref(base, method), fit(base, method)
    got = m.structure_intervals()
    for part in ("corStruct", "varStruct"):
        iv = r["intervals"].get(part)
        if iv is None or (part == "varStruct" and r["var_struct"]["class"] == "varIdent"):
            continue
        want = pd.DataFrame(iv["columns"], index=iv["row_names"])
        rows = got.iloc[: len(want)] if part == "corStruct" else got.iloc[-len(want):]
        if r["cor_struct"] and r["cor_struct"]["class"] == "corCAR1" and part == "corStruct":
            np.testing.assert_allclose(np.log(rows[["lower", "upper"]].to_numpy()),
                                       np.log(want[["lower", "upper"]].to_numpy()), rtol=2e-2)
        else:
            np.testing.assert_allclose(rows[["lower", "upper"]].to_numpy(), want[["lower", "upper"]].to_numpy(),
                                       atol=2e-3)


def test_plot_acf_draws_one_bar_per_lag():
    import matplotlib

    matplotlib.use("Agg")
    m = fit("grunfeld_lme_ri_ar1", "REML")
    ax = lmelib.plot_acf(m.acf(6), m.nobs)
    assert len(ax.collections[0].get_segments()) == 7
    assert ax.get_xlabel() == "lag"


@pytest.mark.parametrize("ar, ma, want", [
    ([0.6], [], 0.6 ** np.arange(5)),  # AR(1): φ^k
    ([], [0.5], [1, 0.5 / 1.25, 0, 0, 0]),  # MA(1): θ / (1 + θ²) at lag 1, then 0
    ([0.5, -0.3], [], [1, 0.5 / 1.3, 0.5 * 0.5 / 1.3 - 0.3]),  # AR(2): Yule–Walker
    # ARMA(1, 1): ρ1 = (1 + φθ)(φ + θ) / (1 + 2φθ + θ²), then ρk = φ ρ(k−1)
    ([0.7], [0.4], [1, 1.28 * 1.1 / 1.72, 0.7 * 1.28 * 1.1 / 1.72, 0.49 * 1.28 * 1.1 / 1.72]),
])
def test_arma_autocorrelations_closed_forms(ar, ma, want):
    from lmelib.structures import _arma_acf

    got = _arma_acf(np.array(ar, float), np.array(ma, float), len(want))
    assert got == pytest.approx(np.array(want, float), abs=1e-12)
