"""Shared fixtures: R reference values and a cache of fitted models.

Each model is fitted once per test session (as MixedModels.jl's modelcache):
``fit(data, formula, reml)`` returns the same object for the same arguments.
"""

# The tests and the notebooks run with the BLAS libraries' default threads, as a
# student's machine does; lmelib itself runs each fit single-threaded (threads.py).
import dataclasses
import json
import os
import subprocess
import sys
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmelib

REFERENCE = Path(__file__).parent / "reference"
ROOT = Path(__file__).resolve().parent.parent
KERNEL_TESTS = "test_notebook_kernels.py"


def openblas_kernels() -> list[str]:
    """Two OpenBLAS kernels this CPU can run, to set with OPENBLAS_CORETYPE: Haswell (AVX2), and
    SkylakeX (AVX-512) where the CPU has it, else Sandybridge (AVX)."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.exists() else ""
    second = "SkylakeX" if "avx512f" in flags else "Sandybridge"
    return ["Haswell", second] if "avx2" in flags else [second] if "avx" in flags else []


def noisy_quadratic(A, x0, noise):
    """½(x−x0)ᵀA(x−x0) plus a deterministic rounding-like error of size ``noise``."""
    def f(x):
        d = np.asarray(x) - x0
        wobble = noise * np.sin(1e7 * np.sum(np.asarray(x) * np.arange(1, len(x) + 1)))
        return 0.5 * d @ A @ d + 100.0 + wobble
    return f


def cubic_bowl(x):
    """A smooth non-quadratic function with correlated elements, minimum near (0.8, -0.3, 1.1)."""
    d = np.asarray(x) - np.array([0.8, -0.3, 1.1])
    H = np.array([[5.0, 2.0, 0.5], [2.0, 3.0, -1.0], [0.5, -1.0, 2.0]])
    return float(d @ H @ d + 0.3 * d[0] ** 3 + 0.2 * d[0] * d[1] * d[2] + 7.0)


def pytest_collection_modifyitems(session, config, items):
    """The tests that wait for the notebook re-runs under other kernels go last, so that the runs
    overlap with everything else."""
    items.sort(key=lambda item: item.path.name == KERNEL_TESTS)


def _start_nbval(kernel: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
    for var in ("OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.pop(var, None)
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "pytest", "book", "-q", "-p", "no:cacheprovider"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session", autouse=True)
def notebook_kernel_runs(request, tmp_path_factory):
    """Strict nbval over book/ under each kernel of ``openblas_kernels()``, one process per kernel,
    started with the session when tests/test_notebook_kernels.py is selected: {kernel: (process,
    log)}."""
    if not any(item.path.name == KERNEL_TESTS for item in request.session.items):
        yield {}
        return
    logs = tmp_path_factory.mktemp("nbval")
    runs = {k: (_start_nbval(k, logs / f"{k}.log"), logs / f"{k}.log") for k in openblas_kernels()}
    yield runs
    for proc, _ in runs.values():
        if proc.poll() is None:
            proc.kill()


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
