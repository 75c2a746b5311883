"""Strict nbval over every notebook again, under other OpenBLAS kernels.

The main test run checks the notebooks in this machine's environment; here the
same check runs in a fresh pytest process for each kernel of
``conftest.openblas_kernels()`` (OPENBLAS_CORETYPE set, threads left at the
library's default), so a digit the book stores but the fit does not determine
fails on any machine, not only on a student's.  The runs are started by
``conftest.notebook_kernel_runs`` when the session begins, one process per
kernel, and run beside the rest of the suite (whose own work is mostly
single-threaded, as is the kernels'), so on two cores they cost little wall
time; these tests are moved to the end of the session and wait for their run.
"""

import pytest

from conftest import openblas_kernels

KERNELS = openblas_kernels()


@pytest.mark.parametrize("kernel", KERNELS)
def test_notebooks_under_kernel(notebook_kernel_runs, kernel):
    proc, log = notebook_kernel_runs[kernel]
    code = proc.wait(timeout=2400)
    text = log.read_text()
    tail = "\n".join(text.splitlines()[-60:])
    assert code == 0, f"strict nbval under OPENBLAS_CORETYPE={kernel} failed:\n{tail}"
    assert " passed" in text and " failed" not in text, tail
