"""Shared fixtures: R reference values and a cache of fitted models.

Each model is fitted once per test session (as MixedModels.jl's modelcache):
``fit(data, formula, reml)`` returns the same object for the same arguments.
"""

import json
import warnings
from functools import lru_cache
from pathlib import Path

import pytest

import lmelib

REFERENCE = Path(__file__).parent / "reference"


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
