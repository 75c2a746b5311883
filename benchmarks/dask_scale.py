"""Out-of-core fits at scale: simulated Parquet partitions fitted by lmelib.lmer on a Dask cluster.

    python benchmarks/dask_scale.py --design nested --rows 100_000_000 --groups 100_000
    python benchmarks/dask_scale.py --design crossed --rows 20_000_000 --groups 10_000 --second 1_000

The data are simulated partition by partition and written as Parquet to a temporary
folder (removed at the end, never committed).  The fit runs on a distributed.LocalCluster
(two single-threaded worker processes, ``--worker-memory`` each); reported: the time to
fit, rows per second, the peak resident memory of the client and of each worker, and,
with ``--in-memory``, the pandas fit of the same rows beside it.

designs
  nested   y ~ x + (x | firm) + (1 | region): firms nested in 100 regions, a random slope
  crossed  y ~ x + (1 | a) + (1 | b): every row a random (a, b) pair
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import lmelib

FORMULAS = {"nested": "y ~ x + (x | firm) + (1 | region)", "crossed": "y ~ x + (1 | a) + (1 | b)"}


def simulate_partition(design: str, k: int, rows: int, groups: int, second: int, seed: int) -> pd.DataFrame:
    """Rows of partition ``k``; the random effects are the same in every partition (seeded once)."""
    effects = np.random.default_rng(seed)
    rng = np.random.default_rng([seed, k])
    x = rng.normal(size=rows)
    if design == "nested":
        b = effects.normal(size=(groups, 2)) * [1.0, 0.3]
        region_effect = effects.normal(size=100) * 0.5
        firm = rng.integers(0, groups, size=rows)
        region = firm % 100
        y = 1.0 + 0.5 * x + b[firm, 0] + b[firm, 1] * x + region_effect[region] + rng.normal(size=rows)
        return pd.DataFrame({"firm": firm, "region": region, "x": x, "y": y})
    ea, eb = effects.normal(size=groups), effects.normal(size=second) * 0.5
    a, b = rng.integers(0, groups, size=rows), rng.integers(0, second, size=rows)
    return pd.DataFrame({"a": a, "b": b, "x": x, "y": 1.0 + 0.5 * x + ea[a] + eb[b] + rng.normal(size=rows)})


def write_parquet(folder: Path, args) -> None:
    sizes = np.full(args.partitions, args.rows // args.partitions)
    sizes[: args.rows % args.partitions] += 1
    for k, rows in enumerate(sizes):
        df = simulate_partition(args.design, k, int(rows), args.groups, args.second, args.seed)
        df.to_parquet(folder / f"part-{k:05d}.parquet", index=False)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--design", choices=FORMULAS, default="nested")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--groups", type=int, default=10_000, help="firms (nested) or levels of a (crossed)")
    parser.add_argument("--second", type=int, default=1_000, help="levels of b (crossed)")
    parser.add_argument("--partitions", type=int, default=0, help="default: one per 1,000,000 rows")
    parser.add_argument("--worker-memory", default="4GiB")
    parser.add_argument("--in-memory", action="store_true", help="also fit the rows with pandas")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--data", default="", help="folder to write the Parquet files to and keep "
                        "(reused if it already holds them); default: a temporary folder, removed")
    args = parser.parse_args()
    args.partitions = args.partitions or max(2, args.rows // 1_000_000)

    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    folder = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="lmelib-dask-bench-"))
    try:
        if not (folder / "part-00000.parquet").exists():
            folder.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            write_parquet(folder, args)
            print(f"wrote {args.rows:,} rows in {args.partitions} Parquet files: {time.perf_counter() - t:.1f} s")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=args.worker_memory,
                          dashboard_address=None, silence_logs=logging.ERROR,
                          scheduler_kwargs={"dashboard_address": ":0"}) as cluster, Client(cluster) as client:
            ddf = dd.read_parquet(str(folder))
            t = time.perf_counter()
            m = lmelib.lmer(FORMULAS[args.design], ddf, reml=False)
            seconds = time.perf_counter() - t
            workers = client.run(peak_mb)
        print(f"Dask fit of {FORMULAS[args.design]!r}: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s, "
              f"deviance {lmelib.fmt_lik(m.objective)}, theta {np.round(m.theta, 4)}")
        print(f"peak resident memory: client {peak_mb():,.0f} MB, workers "
              + ", ".join(f"{v:,.0f} MB" for v in workers.values()))
        if args.in_memory:
            df = pd.read_parquet(folder)
            t = time.perf_counter()
            m0 = lmelib.lmer(FORMULAS[args.design], df, reml=False)
            seconds0 = time.perf_counter() - t
            print(f"in-memory fit: {seconds0:.1f} s, deviance {lmelib.fmt_lik(m0.objective)}, "
                  f"|theta difference| {np.max(np.abs(m0.theta - m.theta)):.1e}; "
                  f"client peak {peak_mb():,.0f} MB")
    finally:
        if not args.data:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
