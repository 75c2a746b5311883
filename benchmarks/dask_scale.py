"""Out-of-core fits at scale: simulated Parquet partitions fitted by lmelib.lmer on a Dask cluster.

    python benchmarks/dask_scale.py --all                 # issue 19's configurations, one table
    python benchmarks/dask_scale.py --design nested --rows 100_000_000 --groups 100_000
    python benchmarks/dask_scale.py --design crossed --rows 20_000_000 --groups 10_000 --second 1_000 --in-memory

The data are simulated partition by partition (``--partition-rows`` each, seeded by the
partition's number, so the first 20 files of 100,000,000 rows are the 20,000,000-row data)
and written as Parquet to a folder: ``--data DIR`` keeps them there for the next run,
otherwise a temporary folder is removed at the end; nothing is committed.  The time to
write them is reported apart.  The fit runs on a distributed.LocalCluster (two
single-threaded worker processes, ``--worker-memory`` each).  Reported: the time of
``lmelib.lmer`` (all passes over the data and the optimisation), rows per second, the
peak resident memory of the client and of each worker, and with ``--in-memory`` the
pandas fit of the same rows (read from the same files) beside it.

``--all`` runs each configuration of issue 19 in a process of its own (so that each peak
is its own) and prints one Markdown table:

  nested 100,000,000 rows, 100,000 firms  Dask only (in memory it does not fit in 23 GB)
  nested  20,000,000 rows, 100,000 firms  Dask and in memory
  crossed 20,000,000 rows, 10,000 × 1,000 Dask and in memory

designs
  nested   y ~ x + (x | firm) + (1 | region): firms nested in 100 regions, a random slope
  crossed  y ~ x + (1 | a) + (1 | b): every row a random (a, b) pair
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import lmelib
from lmelib.deviance import ProfiledDeviance

FORMULAS = {"nested": "y ~ x + (x | firm) + (1 | region)", "crossed": "y ~ x + (1 | a) + (1 | b)"}
ALL = [  # issue 19, item 3: (design, rows, groups, second, in memory)
    ("nested", 100_000_000, 100_000, 0, False),
    ("nested", 20_000_000, 100_000, 0, True),
    ("crossed", 20_000_000, 10_000, 1_000, True),
]


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


def parquet_files(root: Path, args) -> tuple[list[Path], float]:
    """The configuration's files under ``root``, written where missing; seconds spent writing."""
    folder = root / f"{args.design}-{args.groups}-{args.second}-{args.partition_rows}-seed{args.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [args.partition_rows] * (args.rows // args.partition_rows)
    sizes += [args.rows % args.partition_rows] if args.rows % args.partition_rows else []
    files, t = [], time.perf_counter()
    for k, rows in enumerate(sizes):
        path = folder / f"part-{k:05d}-{rows}.parquet"
        if not path.exists():
            df = simulate_partition(args.design, k, rows, args.groups, args.second, args.seed)
            df.to_parquet(path.with_suffix(".tmp"), index=False)
            path.with_suffix(".tmp").rename(path)
        files.append(path)
    return files, time.perf_counter() - t


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def fit_dask(files: list[Path], formula: str, worker_memory: str) -> tuple[object, float, list[float]]:
    """lmelib.lmer on the files through a two-process LocalCluster: model, seconds, worker peaks."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=worker_memory,
                      dashboard_address=None, silence_logs=logging.ERROR,
                      scheduler_kwargs={"dashboard_address": ":0"}) as cluster, Client(cluster) as client:
        ddf = dd.read_parquet([str(f) for f in files])
        t = time.perf_counter()
        m = lmelib.lmer(formula, ddf, reml=False)
        seconds = time.perf_counter() - t
        return m, seconds, list(client.run(peak_mb).values())


def evaluation_seconds(m) -> float:
    """One evaluation of the profiled deviance at θ̂ on the client (the optimisation's unit of
    work): fit time − evaluations × this is the time of the passes over the data."""
    f = ProfiledDeviance(m.frame, reml=False)
    f(m.theta)  # the first call sets up what every later one reuses
    t = time.perf_counter()
    f(m.theta)
    return time.perf_counter() - t


def fit_in_memory(files: list[Path], formula: str) -> tuple[object, float]:
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    t = time.perf_counter()
    m = lmelib.lmer(formula, df, reml=False)
    return m, time.perf_counter() - t


def run(args) -> dict:
    """One configuration: the Dask fit, then (``--in-memory``) the pandas fit of the same rows."""
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="lmelib-dask-bench-"))
    try:
        files, write_seconds = parquet_files(root, args)
        formula = FORMULAS[args.design]
        m, seconds, workers = fit_dask(files, formula, args.worker_memory)
        out = {"design": args.design, "formula": formula, "rows": args.rows, "partitions": len(files),
               "groups": args.groups, "second": args.second, "write_s": write_seconds, "fit_s": seconds,
               "rows_per_s": args.rows / seconds, "client_mb": peak_mb(), "worker_mb": workers,
               "feval": m.optsum.feval, "eval_s": evaluation_seconds(m), "objective": m.objective, "theta": list(m.theta),
               "load": os.getloadavg()[0]}
        if args.in_memory:
            m0, seconds0 = fit_in_memory(files, formula)
            out.update(in_memory_s=seconds0, in_memory_mb=peak_mb(), objective_diff=m0.objective - m.objective,
                       theta_diff=float(np.max(np.abs(m0.theta - m.theta))))
        return out
    finally:
        if not args.data:
            shutil.rmtree(root)


def describe(r: dict) -> str:
    lines = [f"{r['design']} {r['rows']:,} rows in {r['partitions']} Parquet files (written in {r['write_s']:.1f} s)",
             f"Dask fit of {r['formula']!r}: {r['fit_s']:.1f} s, {r['rows_per_s']:,.0f} rows/s, "
             f"{r['feval']} evaluations of {r['eval_s']:.3f} s, deviance {lmelib.fmt_lik(r['objective'])}, "
             f"theta {np.round(r['theta'], 4)}",
             f"peak resident memory: client {r['client_mb']:,.0f} MB, workers "
             + ", ".join(f"{v:,.0f} MB" for v in r["worker_mb"])]
    if "in_memory_s" in r:
        lines.append(f"in-memory fit: {r['in_memory_s']:.1f} s (process peak {r['in_memory_mb']:,.0f} MB), "
                     f"deviance difference {r['objective_diff']:.1e}, |theta difference| {r['theta_diff']:.1e}")
    return "\n".join(lines)


def table(results: list[dict]) -> str:
    head = ("| design | rows | groups | partitions | fit (s) | of which passes (s) | evaluations × s | rows/s "
            "| client peak MB | worker peak MB | in-memory fit (s) | in-memory peak MB | load (1 min) |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for r in results:
        groups = f"{r['groups']:,}" + (f" × {r['second']:,}" if r["design"] == "crossed" else "")
        mem = (f"{r['in_memory_s']:.1f}", f"{r['in_memory_mb']:,.0f}") if "in_memory_s" in r else ("–", "–")
        passes = r["fit_s"] - r["feval"] * r["eval_s"]
        rows.append(f"| {r['design']} | {r['rows']:,} | {groups} | {r['partitions']} | {r['fit_s']:.1f} "
                    f"| ≈ {passes:.0f} | {r['feval']} × {r['eval_s']:.3f} | {r['rows_per_s']:,.0f} | {r['client_mb']:,.0f} | {max(r['worker_mb']):,.0f} "
                    f"| {mem[0]} | {mem[1]} | {r['load']:.1f} |")
    return "\n".join([head, *rows])


def run_all(args) -> None:
    """Each configuration of ALL in its own process (its own peak memory), then one table."""
    root = args.data or tempfile.mkdtemp(prefix="lmelib-dask-bench-")
    results = []
    try:
        for design, rows, groups, second, in_memory in ALL:
            cmd = [sys.executable, __file__, "--design", design, "--rows", str(rows), "--groups", str(groups),
                   "--second", str(second), "--worker-memory", args.worker_memory, "--data", root, "--json"]
            out = subprocess.run(cmd + (["--in-memory"] if in_memory else []), check=True,
                                 stdout=subprocess.PIPE, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(describe(results[-1]), "\n", file=sys.stderr, flush=True)
    finally:
        if not args.data:
            shutil.rmtree(root)
    print(table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="issue 19's three configurations, one table")
    parser.add_argument("--design", choices=FORMULAS, default="nested")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--groups", type=int, default=10_000, help="firms (nested) or levels of a (crossed)")
    parser.add_argument("--second", type=int, default=1_000, help="levels of b (crossed)")
    parser.add_argument("--partition-rows", type=int, default=1_000_000)
    parser.add_argument("--worker-memory", default="4GiB")
    parser.add_argument("--in-memory", action="store_true", help="also fit the rows with pandas")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--data", default="", help="folder to keep the Parquet files in (reused when "
                        "present); default: a temporary folder, removed at the end")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = parser.parse_args()
    if args.design == "nested":
        args.second = 0
    if args.all:
        run_all(args)
        return
    r = run(args)
    print(json.dumps(r) if args.json else describe(r) + "\n\n" + table([r]))


if __name__ == "__main__":
    main()
