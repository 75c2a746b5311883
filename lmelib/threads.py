"""BLAS threads during a fit.

One evaluation of the profiled deviance works on small blocks (ℓ × ℓ per level,
and a dense block of the other terms and X): a multi-threaded BLAS only adds
synchronisation there, and on a busy machine its threads wait for cores (an
InstEval fit took 4–7 times longer with OpenBLAS's default threads on two busy
cores).  So a fit runs the BLAS single-threaded, through threadpoolctl, and
restores the caller's setting afterwards; only a dense block of at least
``THREADED_BLOCK`` rows, where a factorisation is big enough to share out, keeps
the library's threads.
"""

from __future__ import annotations

import contextlib
from functools import cache

from threadpoolctl import ThreadpoolController

__all__ = ["fit_threads", "THREADED_BLOCK"]

THREADED_BLOCK = 4000


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded BLAS libraries once


def fit_threads(dense_rows: int):
    """Context for one fit whose largest dense block has ``dense_rows`` rows."""
    if dense_rows >= THREADED_BLOCK:
        return contextlib.nullcontext()
    return _controller().limit(limits=1, user_api="blas")
