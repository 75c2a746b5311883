"""Model frames: bad input gets a clear error, missing rows are counted, aliased columns named."""

import numpy as np
import pytest

import lmelib
from lmelib.design import model_frame


@pytest.fixture(scope="module")
def jsp():
    return lmelib.datasets.load_jsp()


@pytest.fixture(scope="module")
def sleep():
    return lmelib.datasets.load_sleepstudy()


def test_missing_column_is_named(jsp):
    with pytest.raises(KeyError, match="'math4x'"):
        lmelib.lmer("math5 ~ math4x + (1 | school)", jsp)
    with pytest.raises(KeyError, match="'schol'"):
        lmelib.lmer("math5 ~ math3 + (1 | schol)", jsp)


def test_non_numeric_response(jsp):
    with pytest.raises(TypeError, match="response 'gender' must be numeric"):
        lmelib.lmer("gender ~ math3 + (1 | school)", jsp)


def test_single_level_grouping(jsp):
    one = jsp[jsp["school"] == jsp["school"].iloc[0]]
    with pytest.raises(ValueError, match="grouping factor 'school' has a single level"):
        lmelib.lmer("math5 ~ math3 + (1 | school)", one)


def test_as_many_levels_as_observations(jsp):
    with pytest.raises(ValueError, match="'id' has 887 levels for 887 observations"):
        lmelib.lmer("math5 ~ math3 + (1 | id)", jsp)


def test_more_random_effects_than_observations(sleep):
    small = sleep[sleep["Days"] < 2]  # 2 observations per subject, 2 effects per subject
    with pytest.raises(ValueError, match=r"number of observations \(36\) <= number of random effects \(36\)"):
        lmelib.lmer("Reaction ~ Days + (Days | Subject)", small)


def test_no_random_terms(jsp):
    with pytest.raises(ValueError, match="no random-effects term"):
        lmelib.lmer("math5 ~ math3", jsp)


def test_missing_values_are_dropped_counted_and_reported(jsp):
    holes = jsp.copy()
    holes["math3"] = holes["math3"].astype(float)
    holes.loc[[3, 10, 200], "math3"] = np.nan
    holes.loc[[10, 500], "math5"] = np.nan
    with pytest.warns(UserWarning, match=r"4 of 887 rows dropped for missing values \(math3: 3, math5: 2\)"):
        m = lmelib.lmer("math5 ~ math3 + (1 | school)", holes)
    assert m.nobs == 883
    assert "4 rows with missing values were dropped" in str(m.summary())
    # a column the model does not use may have missing values without effect
    other = jsp.copy()
    other["english3"] = other["english3"].astype(float)
    other.loc[0, "english3"] = np.nan
    assert lmelib.lmer("math5 ~ math3 + (1 | school)", other).nobs == 887


def test_rank_deficient_columns_are_dropped_and_named(jsp):
    data = jsp.assign(math3_copy=2.0 * jsp["math3"])
    with pytest.warns(UserWarning, match="rank deficient so dropping 1 column / coefficient: math3_copy"):
        m = lmelib.lmer("math5 ~ math3 + math3_copy + (1 | school)", data)
    ref = lmelib.lmer("math5 ~ math3 + (1 | school)", jsp)
    assert list(m.fixef.index) == ["(Intercept)", "math3"]
    assert m.objective == pytest.approx(ref.objective, rel=1e-10)
    assert "math3_copy" in str(m.summary())
    # predictions on new data drop the same column
    np.testing.assert_allclose(m.predict(data.head()), ref.predict(jsp.head()), rtol=1e-8)


@pytest.mark.parametrize("convert", [
    lambda s: s.astype(int), lambda s: s.astype(str), lambda s: "s" + s.astype(str)])
def test_grouping_dtype_does_not_matter(jsp, convert):
    ref = lmelib.lmer("math5 ~ math3 + (1 | school)", jsp)
    m = lmelib.lmer("math5 ~ math3 + (1 | school)", jsp.assign(school=convert(jsp["school"])))
    assert m.objective == pytest.approx(ref.objective, rel=1e-12)
    assert m.ngrps == {"school": 48}


def test_interaction_grouping_equals_nested():
    pastes = lmelib.datasets.load_pastes()
    nested = lmelib.lmer("strength ~ 1 + (1 | batch/cask)", pastes)
    explicit = lmelib.lmer("strength ~ 1 + (1 | batch) + (1 | batch:cask)", pastes)
    assert nested.objective == pytest.approx(explicit.objective, rel=1e-10)
    assert set(nested.ranef) == {"cask:batch", "batch"}
    assert nested.ngrps["cask:batch"] == 30
    assert "a:A" in nested.ranef["cask:batch"].index or "A:a" in nested.ranef["cask:batch"].index


def test_unused_category_levels_are_dropped(jsp):
    sub = jsp[jsp["school"].isin([1, 2, 3])]
    frame = model_frame("math5 ~ math3 + (1 | school)", sub)
    assert list(frame.terms[0].levels) == ["1", "2", "3"]


def test_terms_sorted_by_number_of_levels():
    grun = lmelib.datasets.load_grunfeld()
    frame = model_frame("inv ~ value + capital + (1 | firm) + (1 | year)", grun)
    assert [t.name for t in frame.terms] == ["year", "firm"]  # 20 years, 10 firms


def test_predict_needs_the_columns(jsp):
    m = lmelib.lmer("math5 ~ math3 + (1 | school)", jsp)
    with pytest.raises(KeyError, match="'math3'"):
        m.predict(jsp[["school"]])
    # without random effects the grouping column is not needed
    assert len(m.predict(jsp[["math3"]], re=False)) == 887


def test_z_is_sparse_with_one_entry_per_row_and_column_of_a_term(jsp):
    m = lmelib.lmer("math5 ~ math3 + (math3 | school)", jsp)
    Z = m.frame.Z
    assert Z.shape == (887, 96)
    assert Z.nnz == 2 * 887
    fitted = m.frame.X @ m.fixef.to_numpy() + Z @ np.concatenate([b.ravel() for b in m._b])
    np.testing.assert_allclose(fitted, m.fitted(), rtol=1e-12)


# ------------------------------------------ offsets, weights and cbind() counts in the frame


@pytest.fixture(scope="module")
def cbpp():
    return lmelib.datasets.load_cbpp()


def test_cbind_response_becomes_proportions_and_trials(cbpp):
    frame = model_frame("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, residual=False)
    size, incidence = cbpp["size"].to_numpy(float), cbpp["incidence"].to_numpy(float)
    np.testing.assert_array_equal(frame.trials, size)
    np.testing.assert_array_equal(frame.y, incidence / size)
    np.testing.assert_array_equal(frame.prior_weights, size)
    assert frame.weights is None and frame.offset is None
    assert list(frame.data.columns) == list(cbpp.columns)  # no columns added to the data


def test_zero_trials_give_proportion_zero(cbpp):
    data = cbpp.assign(incidence=cbpp["incidence"].where(cbpp.index != 0, 0),
                       size=cbpp["size"].where(cbpp.index != 0, 0))
    frame = model_frame("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, residual=False)
    assert frame.y[0] == 0.0 and frame.trials[0] == 0.0


def test_weights_and_offset_arguments_by_name_or_values(cbpp):
    lsize = np.log(cbpp["size"].to_numpy(float))
    by_name = model_frame("incidence ~ period + (1 | herd)", cbpp.assign(ls=lsize, w=2.0), residual=False,
                          weights="w", offset="ls")
    by_value = model_frame("incidence ~ period + (1 | herd)", cbpp, residual=False,
                           weights=np.full(len(cbpp), 2.0), offset=lsize)
    for frame in (by_name, by_value):
        np.testing.assert_array_equal(frame.offset, lsize)
        np.testing.assert_array_equal(frame.weights, 2.0)
        np.testing.assert_array_equal(frame.y, cbpp["incidence"])  # a GLMM's y is the response itself
        np.testing.assert_array_equal(frame.response, cbpp["incidence"])


def test_formula_offset_and_offset_argument_add(cbpp):
    frame = model_frame("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp, residual=False,
                        offset=np.ones(len(cbpp)))
    np.testing.assert_allclose(frame.offset, np.log(cbpp["size"]) + 1.0, rtol=1e-15)


def test_weights_times_trials_are_the_prior_weights(cbpp):
    frame = model_frame("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, residual=False,
                        weights=np.full(len(cbpp), 3.0))
    np.testing.assert_array_equal(frame.prior_weights, 3.0 * cbpp["size"])  # as R's glm


def test_linear_frame_subtracts_the_offset(sleep):
    frame = model_frame("Reaction ~ Days + offset(2 * Days) + (1 | Subject)", sleep)
    np.testing.assert_allclose(frame.y, sleep["Reaction"] - 2 * sleep["Days"], rtol=1e-15)
    np.testing.assert_allclose(frame.response, sleep["Reaction"], rtol=1e-14)


def test_missing_weights_offset_and_counts_are_dropped_and_counted_by_column(cbpp):
    data = cbpp.assign(w=1.0, ls=np.log(cbpp["size"]))
    data.loc[[1, 2], "w"] = np.nan
    data.loc[[2, 5], "ls"] = np.nan
    data["size"] = data["size"].astype(float)
    data.loc[9, "size"] = np.nan
    with pytest.warns(UserWarning, match=r"4 of 56 rows dropped for missing values \(size: 1, w: 2, ls: 2\)"):
        frame = model_frame("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, residual=False,
                            weights="w", offset="ls")
    assert frame.n == 52 and frame.n_dropped_rows == 4
    assert frame.na_counts == {"size": 1, "w": 2, "ls": 2}


def test_missing_values_given_as_values_are_counted_under_the_argument(cbpp):
    w = np.ones(len(cbpp))
    w[[0, 3]] = np.nan
    with pytest.warns(UserWarning, match=r"2 of 56 rows dropped for missing values \(weights: 2\)"):
        frame = model_frame("incidence ~ period + (1 | herd)", cbpp, residual=False, weights=w)
    assert frame.n == 54 and len(frame.weights) == 54


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"weights": np.ones(3)}, ValueError, r"weights= has 3 values for the 56 rows of the data"),
    ({"offset": "nope"}, KeyError, r"column 'nope' named in offset= is not in the data"),
    ({"weights": "herd"}, TypeError, r"column 'herd' named in weights= must be numeric"),
])
def test_bad_weights_or_offset_are_named(cbpp, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        model_frame("incidence ~ period + (1 | herd)", cbpp, residual=False, **kwargs)


def test_cbind_response_needs_glmer(cbpp):
    with pytest.raises(ValueError, match=r"cbind\(incidence, size - incidence\) .* fit it with lmelib.glmer"):
        lmelib.lmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    with pytest.raises(KeyError, match="column 'sz' named in the formula"):
        lmelib.glmer("cbind(incidence, sz - incidence) ~ period + (1 | herd)", cbpp)
