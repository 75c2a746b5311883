"""Fit one benchmark model with statsmodels' MixedLM, in its own process.

    python benchmarks/statsmodels_worker.py DATA.pkl ML|REML --kwargs JSON --timeout 120 --max-repeats 5

run_benchmarks.py starts this in a subprocess so that a slow or memory-hungry
statsmodels fit can be stopped without taking the benchmark down.  The data
frame comes as a pickle written by the parent (the very rows lmelib and R
fit), and ``--kwargs`` holds the arguments of ``MixedLM.from_formula`` (formula,
groups, re_formula, vc_formula); the worker imports neither lmelib nor the
benchmark's model list.

It prints one JSON object per line: {"event": "fit", ...} after every fit (the
first is the untimed warm-up) and {"event": "done"} at the end, or
{"event": "timeout"} / {"event": "error"} and exits.  Each fit is limited to
``--timeout`` seconds with SIGALRM; the parent process kills the worker if it
overruns anyway (a signal is only handled between Python byte codes).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
import warnings

import numpy as np  # noqa: F401  (patsy evaluates np.log(...) in formulas in this namespace)
import pandas as pd

from bench_models import n_repeats  # the rule shared with run_benchmarks.py and lme4_bench.R


class FitTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise FitTimeout()


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", help="pickled pandas DataFrame")
    ap.add_argument("method", choices=["ML", "REML"])
    ap.add_argument("--kwargs", required=True, help="JSON: MixedLM.from_formula arguments")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--max-repeats", type=int, default=5)
    args = ap.parse_args()

    from statsmodels.regression.mixed_linear_model import MixedLM

    data = pd.read_pickle(args.data)
    data["one"] = 1  # the single group of crossed designs (not used otherwise)
    kw = json.loads(args.kwargs)
    reml = args.method == "REML"
    signal.signal(signal.SIGALRM, _alarm)

    def fit():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            signal.setitimer(signal.ITIMER_REAL, args.timeout)
            c0, t0 = time.process_time(), time.perf_counter()
            try:
                res = MixedLM.from_formula(data=data, **kw).fit(reml=reml)
            finally:
                elapsed = time.perf_counter() - t0
                cpu = time.process_time() - c0
                signal.setitimer(signal.ITIMER_REAL, 0)
        msgs = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        return elapsed, cpu, res, msgs

    try:
        elapsed, cpu, res, msgs = fit()
        emit(event="fit", warmup=True, seconds=elapsed, cpu_seconds=cpu, loglik=float(res.llf),
             converged=bool(res.converged), warnings=msgs)
        for _ in range(n_repeats(elapsed, args.max_repeats)):
            elapsed, cpu, res, _ = fit()
            emit(event="fit", warmup=False, seconds=elapsed, cpu_seconds=cpu, loglik=float(res.llf))
        emit(event="done")
    except FitTimeout:
        emit(event="timeout", seconds=args.timeout)
    except MemoryError:
        emit(event="error", message="MemoryError (address-space limit of the worker reached)")
    except Exception as exc:  # report, do not crash the benchmark
        emit(event="error", message=f"{type(exc).__name__}: {exc}"[:300],
             traceback=traceback.format_exc()[-2000:])


if __name__ == "__main__":
    sys.exit(main())
