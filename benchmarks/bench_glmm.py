"""GLMM benchmarks: lmelib's ``glmer`` against lme4's ``glmer`` and glmmTMB.

Every GLMM of tests/reference/glmm_reference.json and of the book's chapter 10
(book/10_glmm.ipynb), plus two simulated binary random-slope models.  Each model
is written once in lme4 syntax (used verbatim by R) with its lmelib spelling
where formulaic differs (``I(age**2)``).  Derived columns (``use01``, ``pass5``,
...) are made here, so R reads exactly the rows lmelib fits (a temporary CSV).

Run alone (``python benchmarks/bench_glmm.py [--only G1,G19] [--no-r]``) or
through ``run_benchmarks.py``, which appends the GLMM table to its output.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # use lmelib from this checkout when it is not installed
    sys.path.insert(0, str(REPO))

import lmelib  # noqa: E402


@dataclass(frozen=True)
class GlmmModel:
    id: str
    label: str
    data: str  # a lmelib data set, or "sim_binary:<rows>:<groups>"
    formula: str  # lme4 syntax (R)
    family: str
    link: str
    nagq: int = 1
    py_formula: str | None = None  # lmelib's spelling when formulaic's differs
    weights: str | None = None
    factors: tuple[str, ...] = ()  # columns R turns into factors
    heavy: bool = False  # simulated, 100k rows or more

    @property
    def lmelib_formula(self) -> str:
        return self.py_formula or self.formula


CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
CONTRA = "use01 ~ age + I(age^2) + urban + livch + (1 | district)"
CONTRA_PY = "use01 ~ age + I(age**2) + urban + livch + (1 | district)"
CONTRA_RS = "use01 ~ age + I(age^2) + urban + livch + (urban | district)"
TICKS = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"
EPIL = "y ~ trt + log(base/4) + log(age) + V4 + (1 | subject)"
CBF, CTF = ("herd", "period"), ("district", "urban", "livch")
TKF, EPF, JSF = ("BROOD", "LOCATION", "INDEX", "YEAR"), ("subject", "trt", "obs"), ("school", "gender")

MODELS: list[GlmmModel] = [
    GlmmModel("G1", "cbpp binomial, Laplace", "cbpp", CBPP, "binomial", "logit", factors=CBF),
    GlmmModel("G2", "cbpp binomial, nAGQ = 9", "cbpp", CBPP, "binomial", "logit", 9, factors=CBF),
    GlmmModel("G3", "cbpp binomial, nAGQ = 25", "cbpp", CBPP, "binomial", "logit", 25, factors=CBF),
    GlmmModel("G4", "cbpp proportion, weights = size", "cbpp", "prop ~ period + (1 | herd)", "binomial",
              "logit", weights="size", factors=CBF),
    GlmmModel("G5", "cbpp binomial, probit", "cbpp", CBPP, "binomial", "probit", factors=CBF),
    GlmmModel("G6", "cbpp Poisson with offset(log(size))", "cbpp",
              "incidence ~ period + offset(log(size)) + (1 | herd)", "poisson", "log", factors=CBF),
    GlmmModel("G7", "Contraception (1 | district), Laplace", "contraception", CONTRA, "binomial", "logit",
              py_formula=CONTRA_PY, factors=CTF),
    GlmmModel("G8", "Contraception (1 | district), nAGQ = 9", "contraception", CONTRA, "binomial", "logit", 9,
              py_formula=CONTRA_PY, factors=CTF),
    GlmmModel("G9", "Contraception (urban | district)", "contraception", CONTRA_RS, "binomial", "logit",
              py_formula=CONTRA_RS.replace("^2", "**2"), factors=CTF),
    GlmmModel("G10", "jsp pass5 ~ math3c + (1 | school)", "jsp", "pass5 ~ math3c + (1 | school)", "binomial",
              "logit", factors=JSF),
    GlmmModel("G11", "jsp pass5, nAGQ = 9", "jsp", "pass5 ~ math3c + (1 | school)", "binomial", "logit", 9,
              factors=JSF),
    GlmmModel("G12", "jsp pass5, probit", "jsp", "pass5 ~ math3c + (1 | school)", "binomial", "probit",
              factors=JSF),
    GlmmModel("G13", "jsp pass5 ~ math3c + gender + ravenc + (1 | school)", "jsp",
              "pass5 ~ math3c + gender + ravenc + (1 | school)", "binomial", "logit", factors=JSF),
    GlmmModel("G14", "grouseticks (1 | BROOD) + (1 | LOCATION)", "grouseticks", TICKS, "poisson", "log",
              factors=TKF),
    GlmmModel("G15", "grouseticks + (1 | INDEX) (obs.-level)", "grouseticks", TICKS + " + (1 | INDEX)",
              "poisson", "log", factors=TKF),
    GlmmModel("G16", "epil (1 | subject), Laplace", "epil", EPIL, "poisson", "log", factors=EPF),
    GlmmModel("G17", "epil (1 | subject), nAGQ = 9", "epil", EPIL, "poisson", "log", 9, factors=EPF),
    GlmmModel("G18", "epil + (1 | obs) (obs.-level)", "epil", EPIL + " + (1 | obs)", "poisson", "log",
              factors=EPF),
    GlmmModel("G19", "sim binary 100k rows, 2,000 groups: y ~ x + (x | g)", "sim_binary:100000:2000",
              "y ~ x + (x | g)", "binomial", "logit", factors=("g",), heavy=True),
    GlmmModel("G20", "sim binary 1M rows, 10,000 groups: y ~ x + (x | g)", "sim_binary:1000000:10000",
              "y ~ x + (x | g)", "binomial", "logit", factors=("g",), heavy=True),
]
BY_ID = {m.id: m for m in MODELS}


# -------------------------------------------------------------------- data


def sim_binary(n: int, n_groups: int, seed: int = 20261203) -> pd.DataFrame:
    """Binary random-slope data: logit P(y = 1) = −0.5 + x + b0_g + b1_g x, b0 ~ N(0, 1), b1 ~ N(0, 0.5²)."""
    rng = np.random.default_rng(seed + n)
    g = np.sort(rng.integers(0, n_groups, n))
    x = rng.normal(size=n)
    b0, b1 = rng.normal(0.0, 1.0, n_groups), rng.normal(0.0, 0.5, n_groups)
    eta = -0.5 + x + b0[g] + b1[g] * x
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g)})


def load_data(name: str) -> pd.DataFrame:
    """The data set with the derived columns the models use."""
    if name.startswith("sim_binary:"):
        _, n, m = name.split(":")
        return sim_binary(int(n), int(m))
    d = lmelib.datasets.load(name)
    if name == "cbpp":
        d["prop"] = d["incidence"] / d["size"]
    elif name == "contraception":
        d["use01"] = (d["use"] == "Y").astype(int)
    elif name == "jsp":
        d["pass5"] = (d["math5"] >= 30).astype(int)
        d["math3c"] = d["math3"] - d["math3"].mean()
        d["ravenc"] = d["raven"] - d["raven"].mean()
    elif name == "epil":
        d["obs"] = pd.Categorical(np.arange(len(d)).astype(str))
    return d


def n_repeats(warmup: float, max_repeats: int) -> int:
    """As the LMM table (bench_models.n_repeats): more repeats for fits of milliseconds;
    ``max_repeats`` 0: none (the warm-up fit's time is reported, for the largest models)."""
    if max_repeats == 0:
        return 0
    if warmup < 0.1:
        return 4 * max_repeats
    if warmup < 2:
        return max_repeats
    return min(max_repeats, 3) if warmup < 15 else 1


# ------------------------------------------------------------------ lmelib


def fit_lmelib(m: GlmmModel, data: pd.DataFrame):
    return lmelib.glmer(m.lmelib_formula, data, family=m.family, link=m.link, weights=m.weights, nagq=m.nagq)


def bench_lmelib(m: GlmmModel, data: pd.DataFrame, max_repeats: int) -> dict:
    try:
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tracemalloc.start()
            t0 = time.perf_counter()
            fit = fit_lmelib(m, data)
            warm = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        times, cpu = [], []
        for _ in range(n_repeats(warm, max_repeats)):
            c0, t0 = time.process_time(), time.perf_counter()
            fit_lmelib(m, data)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        if not times:  # no repeats: the warm-up fit (under tracemalloc)
            times, cpu = [warm], [float("nan")]
        return dict(status="ok", seconds=statistics.median(times), cpu_seconds=statistics.median(cpu),
                    times=times, loglik=float(fit.loglik), feval=int(fit.optsum.feval),
                    pirls=int(getattr(fit, "pirls_iterations", 0)) or None, peak_mib=peak / 2**20,
                    warnings=list(dict.fromkeys(str(w.message) for w in caught)))
    except Exception as exc:  # report the failure, keep benchmarking
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        return dict(status="error", message=f"{type(exc).__name__}: {exc}"[:300])


# ----------------------------------------------------------------------- R


def r_packages() -> tuple[bool, bool, str]:
    """(lme4 and jsonlite load, glmmTMB loads, versions) from one Rscript call."""
    if shutil.which("Rscript") is None:
        return False, False, "Rscript not found"
    code = ('ok <- function(p) suppressWarnings(requireNamespace(p, quietly = TRUE)); '
            'cat(ok("lme4") && ok("jsonlite"), ok("glmmTMB"), '
            'if (ok("lme4")) as.character(packageVersion("lme4")) else "-", '
            'if (ok("glmmTMB")) as.character(packageVersion("glmmTMB")) else "-")')
    try:
        out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=120).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, False, str(exc)
    if len(out) != 4:
        return False, False, "could not query R packages"
    return out[0] == "TRUE", out[1] == "TRUE", f"lme4 {out[2]}, glmmTMB {out[3]}"


def bench_r(models: list[GlmmModel], max_repeats: int, glmmtmb: bool, timeout: float) -> dict:
    """Fit the models in one R process (glmer_bench.R); {(id, "lme4"|"glmmTMB"): result}."""
    tmp = Path(tempfile.mkdtemp(prefix="lmelib-bench-glmm-"))
    try:
        specs, written = [], {}
        for m in models:
            if m.data not in written:
                written[m.data] = tmp / f"{len(written)}.csv"
                load_data(m.data).to_csv(written[m.data], index=False)
            specs.append(dict(id=m.id, csv=str(written[m.data]), formula=m.formula, family=m.family,
                              link=m.link, nAGQ=m.nagq, weights=m.weights, factors=list(m.factors),
                              glmmTMB=glmmtmb and m.nagq == 1))
        (tmp / "spec.json").write_text(json.dumps(dict(models=specs, max_repeats=max_repeats)))
        proc = subprocess.run(["Rscript", str(HERE / "glmer_bench.R"), str(tmp / "spec.json")],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip()[-500:]}
        out = {}
        for row in json.loads(proc.stdout)["results"]:
            out[(row["id"], row["package"])] = row
        return out
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        return {"error": str(exc)[:300]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -------------------------------------------------------------------- table


def _num(x, fmt="{:.3g}") -> str:
    return "—" if x is None else fmt.format(x)


def _cell(res: dict | None, key: str, fmt: str) -> str:
    if not res or res.get("status") != "ok":
        return "—"
    return _num(res.get(key), fmt)


def _ratio(a: dict | None, b: dict | None) -> str:
    if not (a and b and a.get("status") == "ok" and b.get("status") == "ok"):
        return "—"
    return f"{a['seconds'] / b['seconds']:.2f}"


def _delta(res: dict | None, base: dict) -> str:
    if not (res and res.get("status") == "ok" and base.get("status") == "ok"):
        return "—"
    return f"{res['loglik'] - base['loglik']:+.2g}"


def build_table(rows: list[tuple[GlmmModel, int, dict, dict | None, dict | None]]) -> list[str]:
    out = ["| # | model | n | lmelib s | lme4 s | glmmTMB s | lmelib/lme4 | lmelib/glmmTMB | "
           "logLik lmelib | Δ lme4 | Δ glmmTMB | feval lmelib / lme4 / glmmTMB | PIRLS iter. lmelib | "
           "peak MiB lmelib / lme4 / glmmTMB |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m, n, L, R, T in rows:
        if L.get("status") != "ok":
            out.append(f"| {m.id} | {m.label} | {n:,} | error: {L.get('message', '')} |" + " |" * 10)
            continue
        fe = " / ".join([str(L["feval"]), _cell(R, "feval", "{}"), _cell(T, "feval", "{}")])
        mem = " / ".join([f"{L['peak_mib']:.3g}", _cell(R, "peak_mib", "{:.3g}"), _cell(T, "peak_mib", "{:.3g}")])
        out.append(f"| {m.id} | {m.label} | {n:,} | {L['seconds']:.3g} | {_cell(R, 'seconds', '{:.3g}')} | "
                   f"{_cell(T, 'seconds', '{:.3g}')} | {_ratio(L, R)} | {_ratio(L, T)} | {L['loglik']:.4f} | "
                   f"{_delta(R, L)} | {_delta(T, L)} | {fe} | {_num(L.get('pirls'), '{}')} | {mem} |")
    return out


NOTES = [
    "Times: medians of the timed repeats after one untimed warm-up fit, wall clock, from formula and data "
    "frame to the fitted model (R: `system.time` inside one R process, data already read).",
    "logLik: lme4's `logLik(m)`. For nAGQ > 1 lme4 1.1-31 leaves out the constant of the saturated "
    "model (Σ log p(y | μ = y)), so its value is not comparable with a Laplace fit; the Δ lme4 column adds "
    "that constant back (as tests/test_glmm.py does) so Δ compares the same quantity. glmmTMB is run "
    "only for nAGQ = 1 (it fits by the Laplace approximation only).",
    "Δ = other package − lmelib (positive: the other package found a higher log-likelihood).",
    "feval: lmelib `optsum.feval` (both stages), lme4 `optinfo$feval` (stage 2; stage 1 is not counted by "
    "lme4), glmmTMB `fit$evaluations['function']` (nlminb, with gradients from TMB). PIRLS iter.: "
    "lmelib's inner penalized-IRLS iterations over the whole fit (neither R package reports them).",
    "peak MiB: lmelib tracemalloc peak during the warm-up fit (numpy and Python allocations); R: the "
    "growth of R's heap over the fit (`gc()` 'max used', Ncells + Vcells), which does not count memory "
    "that lme4's C++ (Eigen/CHOLMOD) or TMB allocate outside R's heap.",
]


def run(models: list[GlmmModel], max_repeats: int = 5, use_r: bool = True, r_timeout: float = 7200.0,
        log=lambda s: print(s, file=sys.stderr, flush=True)) -> tuple[list[str], list[str]]:
    """Run the GLMM benchmarks; (table lines, header lines about the R packages)."""
    header = []
    results = []
    for m in models:
        data = load_data(m.data)
        L = bench_lmelib(m, data, max_repeats)
        log(f"[lmelib glmm] {m.id}: " + (f"{L['seconds']:.4g} s, logLik {L['loglik']:.4f}, {L['feval']} evals"
                                         if L["status"] == "ok" else L["message"]))
        results.append((m, len(data), L))
        del data
        gc.collect()
    R: dict = {}
    if use_r:
        lme4_ok, tmb_ok, versions = r_packages()
        header.append(f"- GLMMs in R: {versions}" if lme4_ok else f"- **GLMMs: lme4 skipped ({versions})**")
        if lme4_ok and not tmb_ok:
            header.append("- **glmmTMB is not installed in R: its columns are empty**")
        if lme4_ok:
            log("[lme4/glmmTMB] running benchmarks/glmer_bench.R")
            R = bench_r(models, max_repeats, tmb_ok, r_timeout)
            if "error" in R:
                header.append(f"- **GLMMs in R failed: {R['error']}**")
                R = {}
    rows = [(m, n, L, R.get((m.id, "lme4")), R.get((m.id, "glmmTMB"))) for m, n, L in results]
    return build_table(rows), header


THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def section(quick: bool, use_r: bool, max_repeats: int, log=lambda s: print(s, file=sys.stderr, flush=True)
            ) -> list[str]:
    """The GLMM section of results.md, from this script run in a fresh process with the BLAS
    libraries' default threading (the targets of issue 20 are stated for default threading,
    whatever ``--threads`` the linear-model table uses)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    cmd = [sys.executable, str(Path(__file__)), "--max-repeats", str(max_repeats)]
    cmd += (["--quick"] if quick else []) + ([] if use_r else ["--no-r"])
    log("[glmm] " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return ["## Generalized linear mixed models", "", f"**failed (exit {proc.returncode})**", ""]
    return ["## Generalized linear mixed models", "", proc.stdout.rstrip(), ""]


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated model ids, e.g. G1,G14")
    ap.add_argument("--quick", action="store_true", help="leave out the simulated 100k and 1M models")
    ap.add_argument("--max-repeats", type=int, default=5)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    if args.only:
        models = [BY_ID[s.strip()] for s in args.only.split(",") if s.strip()]
    else:
        models = [m for m in MODELS if not (args.quick and m.heavy)]
    started, load = time.perf_counter(), os.getloadavg()[0]
    table, header = run(models, args.max_repeats, not args.no_r)
    threads = {k: os.environ[k] for k in THREAD_VARS if k in os.environ} or "library defaults"
    header += [f"- BLAS threads: {threads}; load average (1 min) {load:.2f} at start, "
               f"{os.getloadavg()[0]:.2f} at end; {(time.perf_counter() - started) / 60:.1f} min"]
    print("\n".join(header + [""] + table + [""] + [f"- {n}" for n in NOTES]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
