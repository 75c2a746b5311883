"""Strict nbval over every notebook again, under other OpenBLAS kernels.

The main test run checks the notebooks in this machine's environment; here the
same check runs in a fresh pytest process for each kernel of
``conftest.openblas_kernels()`` (OPENBLAS_CORETYPE set, threads left at the
library's default), so a digit the book stores but the fit does not determine
fails on any machine, not only on a student's.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import openblas_kernels

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kernel", openblas_kernels())
def test_notebooks_under_kernel(kernel):
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
    for var in ("OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.pop(var, None)
    run = subprocess.run([sys.executable, "-m", "pytest", "book", "-q"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    tail = "\n".join(run.stdout.splitlines()[-60:])
    assert run.returncode == 0, f"strict nbval under OPENBLAS_CORETYPE={kernel} failed:\n{tail}"
    assert " passed" in run.stdout and " failed" not in run.stdout, tail
