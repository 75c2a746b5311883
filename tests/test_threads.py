"""A fit runs the BLAS single-threaded and gives the caller's thread setting back (lmelib/threads.py)."""

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import lmelib
from lmelib import threads


def blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_fit_runs_single_threaded_and_restores(monkeypatch):
    seen = []
    original = lmelib.deviance.ProfiledDeviance.__call__

    def spy(self, theta):
        seen.append(blas_threads())
        return original(self, theta)

    monkeypatch.setattr(lmelib.deviance.ProfiledDeviance, "__call__", spy)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        lmelib.lmer("Reaction ~ Days + (Days | Subject)", lmelib.datasets.load("sleepstudy"))
        assert blas_threads() == before  # restored
    assert seen and all(s == {1} for s in seen)


def test_large_dense_block_keeps_the_threads():
    with threadpool_limits(limits=2, user_api="blas"):
        with threads.fit_threads(threads.THREADED_BLOCK):
            assert blas_threads() == {2}
        with threads.fit_threads(10):
            assert blas_threads() == {1}
        assert blas_threads() == {2}
