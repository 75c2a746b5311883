"""Fit one benchmark model once with lmelib, for profiling.

    python -m cProfile -s cumtime benchmarks/profile_fit.py 10 ML | head -40

MODEL is an id from bench_models.py (1-9, 10, 11-10k, 11-100k, 11-1M, 12);
data loading happens before the fit, so with ``-s cumtime`` the entry for
``lmm.py:...(lmer)`` is the fit alone.
"""

import sys
import time

import bench_models as bm
import lmelib


def main() -> None:
    model_id = sys.argv[1] if len(sys.argv) > 1 else "10"
    method = sys.argv[2] if len(sys.argv) > 2 else bm.BY_ID[model_id].methods[0]
    model = bm.BY_ID[model_id]
    data = bm.load_data(model.data)
    t0 = time.perf_counter()
    fit = lmelib.lmer(model.formula, data, reml=method == "REML")
    print(f"# model {model_id} {method}: {time.perf_counter() - t0:.2f} s, "
          f"{fit.optsum.feval} evaluations, logLik {fit.loglik:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
