"""Confidence and prediction intervals of lmer predictions (lmelib/prediction.py).

The reference is dense textbook algebra on V = Z G Zᵀ + σ² I at the fitted θ̂
and σ̂, written independently of the PLS factor that lmelib uses:

* a new observation in a known group: the predictor x₀β̂ + z₀b̂, with the GLS
  β̂ = (XᵀV⁻¹X)⁻¹XᵀV⁻¹y and the BLUP b̂ = G Zᵀ P y (P = V⁻¹ − V⁻¹X(XᵀV⁻¹X)⁻¹XᵀV⁻¹)
  is linear in e = y − Xβ = Zb + ε: its error is cᵀe − z₀b with
  c = V⁻¹X(XᵀV⁻¹X)⁻¹x₀ᵀ + P Z G z₀ᵀ, whose variance is
  cᵀVc − 2 cᵀZGz₀ᵀ + z₀Gz₀ᵀ (Cov(e, b) = ZG); it is also checked against the
  dense inverse of Henderson's coefficient matrix;
* a new group: x₀ Var(β̂) x₀ᵀ + z₀ G₀ z₀ᵀ, the diagonal of the new group's
  V₀ = Z₀G₀Z₀ᵀ + σ²I less σ², plus the fixed-effect uncertainty;
* "prediction" adds σ²; widths are converted back to variances with the normal
  quantile.  Tolerance 1e-8 relative (both sides are exact algebra).

A simulation at the fitted θ (y redrawn from the model, β̂ and b̂ and σ̂ recomputed
by PLS at that θ) checks coverage: the theory is then exact up to σ̂'s 178
degrees of freedom, so the tolerances are set at about five Monte Carlo
standard errors.
"""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import scipy.stats

import lmelib
import lmelib.deviance
import lmelib.prediction
from lmelib.deviance import ProfiledDeviance
from conftest import fit_lmer

def sleepstudy():
    return fit_lmer("sleepstudy.csv", "Reaction ~ Days + (Days | Subject)", True)


def penicillin():
    return fit_lmer("penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)", True)


def pastes():
    return fit_lmer("pastes.csv", "strength ~ 1 + (1 | batch/cask)", True)


def jsp_rs():
    d = lmelib.datasets.load_jsp()
    d["math3c"] = d["math3"] - d["math3"].mean()
    return lmelib.lmer("math5 ~ math3c + (math3c | school)", d)


# ------------------------------------------------------------ dense reference


def big_lambda(m) -> np.ndarray:
    """Λθ as a dense q × q block-diagonal matrix: one λ per level of each term."""
    return scipy.linalg.block_diag(*[np.kron(np.eye(t.n_levels), lam)
                                     for t, lam in zip(m.frame.terms, m.lambdas)])


def dense_model(m) -> dict:
    X, Z, y = m.frame.X, m.frame.Z.toarray(), m.frame.y
    s2 = m.sigma**2
    G = s2 * big_lambda(m) @ big_lambda(m).T
    V = Z @ G @ Z.T + s2 * np.eye(len(y))
    Vi = np.linalg.inv(V)
    vbeta = np.linalg.inv(X.T @ Vi @ X)  # Var(β̂)
    P = Vi - Vi @ X @ vbeta @ X.T @ Vi
    beta = vbeta @ X.T @ Vi @ y
    b = G @ Z.T @ P @ y
    return dict(X=X, Z=Z, G=G, V=V, Vi=Vi, P=P, vbeta=vbeta, beta=beta, b=b, s2=s2)


def z_row(m, term_index: int, level, values) -> np.ndarray:
    """The row of the full Z for one level of one term (zeros elsewhere)."""
    sizes = [t.q for t in m.frame.terms]
    z = np.zeros(sum(sizes))
    t = m.frame.terms[term_index]
    g = list(t.levels).index(level)
    start = sum(sizes[:term_index]) + g * t.ell
    z[start : start + t.ell] = values
    return z


def gls_error_variance(D: dict, x0: np.ndarray, z0: np.ndarray) -> float:
    """Var(x₀β̂ + z₀b̂ − x₀β − z₀b) by the linear-predictor algebra of the module docstring."""
    c = D["Vi"] @ D["X"] @ D["vbeta"] @ x0 + D["P"] @ D["Z"] @ D["G"] @ z0
    return float(c @ D["V"] @ c - 2 * c @ D["Z"] @ D["G"] @ z0 + z0 @ D["G"] @ z0)


def henderson_error_variance(D: dict, x0: np.ndarray, z0: np.ndarray) -> float:
    """[x₀ z₀] C⁻¹ [x₀ z₀]ᵀ, C = Henderson's coefficient matrix with R = σ²I (G invertible)."""
    X, Z, s2 = D["X"], D["Z"], D["s2"]
    C = np.block([[X.T @ X, X.T @ Z], [Z.T @ X, Z.T @ Z + s2 * np.linalg.inv(D["G"])]]) / s2
    v = np.concatenate([x0, z0])
    return float(v @ np.linalg.solve(C, v))


def interval_variance(out: pd.DataFrame, level: float = 0.95) -> np.ndarray:
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    return (((out["upr"] - out["lwr"]) / (2 * z)) ** 2).to_numpy()


# --------------------------------------------------------------------- tests


def test_default_keeps_the_series():
    m = sleepstudy()
    nd = pd.DataFrame({"Days": [1.0, 7.5], "Subject": ["308", "333"]}, index=["a", "b"])
    plain = m.predict(nd)
    assert isinstance(plain, pd.Series)
    out = m.predict(nd, interval="prediction")
    assert list(out.columns) == ["fit", "lwr", "upr"] and list(out.index) == ["a", "b"]
    np.testing.assert_allclose(out["fit"], plain, rtol=1e-14)
    assert (out["lwr"] < out["fit"]).all() and (out["fit"] < out["upr"]).all()
    np.testing.assert_allclose(out["fit"] - out["lwr"], out["upr"] - out["fit"], rtol=1e-12)


def test_known_group_matches_dense_gls_and_henderson():
    m = sleepstudy()
    D = dense_model(m)
    levels = ["308", "309", "335", "372"]
    days = [0.0, 4.5, 9.0, 12.0]
    nd = pd.DataFrame({"Days": days, "Subject": levels})
    conf = interval_variance(m.predict(nd, interval="confidence"))
    pred = interval_variance(m.predict(nd, interval="prediction"))
    fit = m.predict(nd, interval="confidence")["fit"].to_numpy()
    for i, (lev, day) in enumerate(zip(levels, days)):
        x0, z0 = np.array([1.0, day]), z_row(m, 0, lev, [1.0, day])
        assert fit[i] == pytest.approx(x0 @ D["beta"] + z0 @ D["b"], rel=1e-9)
        expected = gls_error_variance(D, x0, z0)
        assert conf[i] == pytest.approx(expected, rel=1e-8)
        assert conf[i] == pytest.approx(henderson_error_variance(D, x0, z0), rel=1e-8)
        assert pred[i] == pytest.approx(expected + D["s2"], rel=1e-8)


def test_new_group_is_marginal_variance_plus_fixed_effect_uncertainty():
    m = sleepstudy()
    D = dense_model(m)
    days = np.array([0.0, 3.0, 9.0])
    nd = pd.DataFrame({"Days": days, "Subject": "new subject"})
    conf = interval_variance(m.predict(nd, interval="confidence"))
    pred = interval_variance(m.predict(nd, interval="prediction"))
    X0 = np.column_stack([np.ones(3), days])
    G0 = D["G"][:2, :2]  # one subject's 2 × 2 covariance (every block is the same)
    V0 = X0 @ G0 @ X0.T + D["s2"] * np.eye(3)  # the new subject's marginal V (its Z is X0)
    expected = np.diag(V0) + np.diag(X0 @ D["vbeta"] @ X0.T)
    np.testing.assert_allclose(pred, expected, rtol=1e-8)
    np.testing.assert_allclose(conf, expected - D["s2"], rtol=1e-8)
    assert (pred > interval_variance(m.predict(nd.assign(Subject="308"), interval="prediction"))).all()


def test_population_level():
    """re=False: a confidence interval for xβ (Var(β̂) only); its prediction interval is a new group's."""
    m = sleepstudy()
    D = dense_model(m)
    nd = pd.DataFrame({"Days": [2.0, 8.0], "Subject": ["308", "new"]})
    X0 = np.array([[1.0, 2.0], [1.0, 8.0]])
    conf = interval_variance(m.predict(nd, re=False, interval="confidence"))
    np.testing.assert_allclose(conf, np.diag(X0 @ D["vbeta"] @ X0.T), rtol=1e-8)
    np.testing.assert_allclose(interval_variance(m.predict(nd, re=False, interval="prediction")),
                               interval_variance(m.predict(nd.assign(Subject="new"), interval="prediction")),
                               rtol=1e-12)
    # without the grouping column, as predict(re=False) allows
    np.testing.assert_allclose(interval_variance(m.predict(nd[["Days"]], re=False, interval="confidence")),
                               conf, rtol=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
def test_crossed_known_and_new_levels(sparse, monkeypatch):
    """Penicillin: a known plate with a known sample, and with a new sample (whose effect adds its variance).

    ``sparse`` stores L21 sparse (as for large crossed designs) by lowering deviance.DENSE_WORK."""
    if sparse:
        monkeypatch.setattr(lmelib.deviance, "DENSE_WORK", 0)
        m = lmelib.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", lmelib.datasets.load("penicillin"))
        assert not isinstance(m.solution.L21, np.ndarray)
    else:
        m = penicillin()
    D = dense_model(m)
    names = [t.name for t in m.frame.terms]
    ip, is_ = names.index("plate"), names.index("sample")
    plate, sample = m.frame.terms[ip].levels[3], m.frame.terms[is_].levels[2]
    nd = pd.DataFrame({"plate": [plate, plate, "new"], "sample": [sample, "new", "new"]})
    pred = interval_variance(m.predict(nd, interval="prediction"))
    x0 = np.ones(1)
    zp, zs = z_row(m, ip, plate, [1.0]), z_row(m, is_, sample, [1.0])
    var_sample = D["G"][zs.astype(bool)][:, zs.astype(bool)].item()
    var_plate = D["G"][zp.astype(bool)][:, zp.astype(bool)].item()
    expected = [gls_error_variance(D, x0, zp + zs) + D["s2"],
                gls_error_variance(D, x0, zp) + var_sample + D["s2"],
                float(D["vbeta"].item()) + var_plate + var_sample + D["s2"]]
    np.testing.assert_allclose(pred, expected, rtol=1e-8)


def test_nested_new_cask_in_known_batch():
    """Pastes, (1 | batch/cask): a known cask, and a new cask of a known batch."""
    m = pastes()
    D = dense_model(m)
    names = [t.name for t in m.frame.terms]
    ic, ib = names.index("cask:batch"), names.index("batch")
    batch_level = m.frame.terms[ib].levels[0]
    cask_term = m.frame.terms[ic]
    row = m.frame.data.iloc[0]
    nd = pd.DataFrame({"batch": [row["batch"], batch_level], "cask": [row["cask"], "z"]})
    conf = interval_variance(m.predict(nd, interval="confidence"))
    z_batch = z_row(m, ib, row["batch"], [1.0])
    zc = z_row(m, ic, cask_term.levels[cask_term.codes[0]], [1.0])
    var_cask = D["G"][zc.astype(bool)][:, zc.astype(bool)].item()
    zb2 = z_row(m, ib, batch_level, [1.0])
    np.testing.assert_allclose(conf, [gls_error_variance(D, np.ones(1), z_batch + zc),
                                      gls_error_variance(D, np.ones(1), zb2) + var_cask], rtol=1e-8)


def test_chunks_give_the_same_variances(monkeypatch):
    m = jsp_rs()
    nd = m.frame.data.iloc[::7].copy()
    nd["school"] = nd["school"].astype(object)
    nd.loc[nd.index[::5], "school"] = 999  # some new schools
    whole = m.predict(nd, interval="prediction")
    monkeypatch.setattr(lmelib.prediction, "CHUNK", 13)
    np.testing.assert_allclose(m.predict(nd, interval="prediction"), whole, rtol=1e-12)


def test_random_slope_jsp_against_dense():
    m = jsp_rs()
    D = dense_model(m)
    t = m.frame.terms[0]
    nd = pd.DataFrame({"math3c": [-5.0, 0.0, 6.0], "school": [t.levels[0], t.levels[10], t.levels[-1]]})
    conf = interval_variance(m.predict(nd, interval="confidence"))
    for i, (x, s) in enumerate(zip(nd["math3c"], nd["school"])):
        x0 = np.array([1.0, x])
        assert conf[i] == pytest.approx(gls_error_variance(D, x0, z_row(m, 0, s, x0)), rel=1e-8)


def test_fitted_rows_without_newdata():
    m = sleepstudy()
    out = m.predict(interval="confidence", level=0.9)
    assert len(out) == m.nobs
    np.testing.assert_allclose(out["fit"], m.fitted(), rtol=1e-12)
    wider = m.predict(interval="confidence", level=0.99)
    assert ((wider["upr"] - wider["lwr"]) > (out["upr"] - out["lwr"])).all()


def test_errors():
    m = sleepstudy()
    nd = pd.DataFrame({"Days": [1.0], "Subject": ["308"]})
    with pytest.raises(ValueError, match="interval"):
        m.predict(nd, interval="tolerance")
    with pytest.raises(ValueError, match="level"):
        m.predict(nd, interval="prediction", level=95)
    g = lmelib.datasets.load("grunfeld")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ms = lmelib.lmer("inv ~ value + capital + (1 | firm)", g, weights=lmelib.VarIdent("firm"))
    with pytest.raises(NotImplementedError, match="σ²I"):
        ms.predict(g.head(2), interval="prediction")


def test_missing_grouping_value_is_a_new_group():
    m = sleepstudy()
    nd = pd.DataFrame({"Days": [3.0, 3.0], "Subject": [np.nan, "new"]})
    with pytest.warns(UserWarning, match="population prediction"):
        out = m.predict(nd, interval="prediction")
    assert out.iloc[0].to_list() == pytest.approx(out.iloc[1].to_list(), rel=1e-12)


def test_missing_columns_are_named():
    m = sleepstudy()
    with pytest.raises(KeyError, match="Subject"):
        m.predict(pd.DataFrame({"Days": [1.0]}), interval="confidence")
    d = lmelib.datasets.load("sleepstudy")
    ms = lmelib.lmer("Reaction ~ 1 + (Days | Subject)", d)  # Days only in the random part
    with pytest.raises(KeyError, match="Days"):
        ms.predict(pd.DataFrame({"Subject": ["308"]}), re=False, interval="prediction")
    assert len(ms.predict(pd.DataFrame({"Subject": ["308"]}), re=False, interval="confidence")) == 1


# ---------------------------------------------------------------- simulation


def at_fixed_theta(m, y: np.ndarray):
    """The model refitted to response y with θ held at m's θ̂ (β̂, b̂, σ̂ from PLS)."""
    frame = dataclasses.replace(m.frame, y=y)
    return dataclasses.replace(m, frame=frame, solution=ProfiledDeviance(frame, m.reml).solve(m.theta))


def test_coverage_by_simulation():
    """Draw data from the fitted sleepstudy model, predict a new day of every subject and of new
    subjects, and count how often the 95% intervals cover the new observations (and the subject
    means for "confidence").  With θ known the intervals are exact up to σ̂ (178 df):
    Monte Carlo standard errors are about 0.002 (known subjects) and 0.003 (new ones)."""
    rng = np.random.default_rng(20261203)
    m = sleepstudy()
    beta, sigma = m.fixef.to_numpy(), m.sigma
    G0 = sigma**2 * m.lambdas[0] @ m.lambdas[0].T
    term = m.frame.terms[0]
    subjects, codes, days = term.levels, term.codes, m.frame.data["Days"].to_numpy(float)
    n_new, reps = 8, 400
    new_day = rng.uniform(0, 12, size=len(subjects))
    nd = pd.DataFrame({"Days": np.r_[new_day, np.full(n_new, 5.0)],
                       "Subject": list(subjects) + [f"new{k}" for k in range(n_new)]})
    X0 = np.column_stack([np.ones(len(nd)), nd["Days"]])
    hit_pred, hit_conf, hit_new = [], [], []
    for _ in range(reps):
        b = rng.multivariate_normal(np.zeros(2), G0, size=len(subjects) + n_new)
        y = m.frame.X @ beta + np.einsum("ij,ij->i", m.frame.terms[0].values, b[codes]) \
            + sigma * rng.standard_normal(m.nobs)
        mean0 = X0 @ beta + np.einsum("ij,ij->i", X0, b)  # new rows: known subjects, then new ones
        y0 = mean0 + sigma * rng.standard_normal(len(nd))
        fit = at_fixed_theta(m, y)
        pred = fit.predict(nd, interval="prediction")
        conf = fit.predict(nd, interval="confidence")
        inside = ((pred["lwr"] <= y0) & (y0 <= pred["upr"])).to_numpy()
        hit_pred.append(inside[: len(subjects)])
        hit_new.append(inside[len(subjects):])
        hit_conf.append(((conf["lwr"] <= mean0) & (mean0 <= conf["upr"])).to_numpy()[: len(subjects)])
    known, new, mean = (np.mean(h) for h in (hit_pred, hit_new, hit_conf))
    print(f"coverage: known {known:.4f}, new {new:.4f}, mean {mean:.4f}")
    assert known == pytest.approx(0.95, abs=0.01), known
    assert mean == pytest.approx(0.95, abs=0.01), mean
    assert new == pytest.approx(0.95, abs=0.015), new
