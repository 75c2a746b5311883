"""Shared fixtures: R reference values and a cache of fitted models.

Each model is fitted once per test session (as MixedModels.jl's modelcache):
``fit(data, formula, reml)`` returns the same object for the same arguments.
"""

# The tests and the notebooks run with the BLAS libraries' default threads, as a
# student's machine does; lmelib itself runs each fit single-threaded (threads.py).
import dataclasses
import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmelib

REFERENCE = Path(__file__).parent / "reference"


def openblas_kernels() -> list[str]:
    """Two OpenBLAS kernels this CPU can run, to set with OPENBLAS_CORETYPE: Haswell (AVX2), and
    SkylakeX (AVX-512) where the CPU has it, else Sandybridge (AVX)."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.exists() else ""
    second = "SkylakeX" if "avx512f" in flags else "Sandybridge"
    return ["Haswell", second] if "avx2" in flags else [second] if "avx" in flags else []


def load_reference(name: str) -> dict:
    with open(REFERENCE / name) as fh:
        return json.load(fh)


@lru_cache(maxsize=None)
def fit_lmer(data: str, formula: str, reml: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmelib.lmer(formula, lmelib.datasets.load(data.removesuffix(".csv")), reml=reml)


@pytest.fixture(scope="session")
def lmer_reference() -> dict:
    return load_reference("lmer_reference.json")


def as_frame(table: dict) -> pd.DataFrame:
    """A table stored by the R scripts (row_names, column_names, columns) as a DataFrame."""
    cols = table["column_names"]
    return pd.DataFrame({c: np.array(table["columns"][c], dtype=float) for c in cols},
                        index=table["row_names"])[cols]


def at_theta(m, theta):
    """The fit ``m`` moved to θ (β and σ follow from θ), to compare with R at R's θ."""
    theta = np.asarray(theta, dtype=float)
    return dataclasses.replace(m, optsum=dataclasses.replace(m.optsum, final=theta),
                               solution=m.devfun.solve(theta))
