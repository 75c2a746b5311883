"""Strict nbval over every notebook again, under other OpenBLAS kernels.

The main test run checks the notebooks in this machine's environment; here the
same check runs in a fresh pytest process for each kernel of
``conftest.openblas_kernels()`` (OPENBLAS_CORETYPE set, threads left at the
library's default), so a digit the book stores but the fit does not determine
fails on any machine, not only on a student's.  The runs start together, one
process per kernel (the kernels' own work is single-threaded, so on two cores
they share the machine well), and each test waits for its own.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import openblas_kernels

ROOT = Path(__file__).resolve().parent.parent
KERNELS = openblas_kernels()


def _start(kernel: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
    for var in ("OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.pop(var, None)
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "pytest", "book", "-q"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    logs = {k: tmp_path_factory.mktemp("nbval") / f"{k}.log" for k in KERNELS}
    procs = {k: _start(k, logs[k]) for k in KERNELS}
    yield procs, logs
    for p in procs.values():
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("kernel", KERNELS)
def test_notebooks_under_kernel(runs, kernel):
    procs, logs = runs
    code = procs[kernel].wait(timeout=1800)
    text = logs[kernel].read_text()
    tail = "\n".join(text.splitlines()[-60:])
    assert code == 0, f"strict nbval under OPENBLAS_CORETYPE={kernel} failed:\n{tail}"
    assert " passed" in text and " failed" not in text, tail
