"""lmelib's error structures against nlme: time per fit and log-likelihood reached.

    python benchmarks/nlme_bench.py [--repeats 3]

Fits the same models with lmelib (``lmer``/``gls`` with ``correlation=`` and
``weights=``) and, where ``Rscript`` with nlme is installed, nlme's ``lme``/
``gls``, by REML and ML, and prints one table: median wall time of the repeats
after a warm-up fit, the ratio lmelib / nlme, and both log-likelihoods.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np

import lmelib
from lmelib import AR1, ARMA, VarIdent

ROOT = Path(__file__).resolve().parent.parent


def _ovary():
    d = lmelib.datasets.load("ovary")
    d["obs"] = d.groupby("Mare", observed=True).cumcount() + 1
    return d


MODELS = {
    "grunfeld_lme_ar1": lambda reml: lmelib.lmer("inv ~ value + capital + (1 | firm)", lmelib.datasets.load_grunfeld(),
                                                 reml=reml, correlation=AR1("year", "firm")),
    "grunfeld_gls_ar1": lambda reml: lmelib.gls("inv ~ value + capital", lmelib.datasets.load_grunfeld(),
                                                correlation=AR1("year", "firm"), reml=reml),
    "produc_lme_varident": lambda reml: lmelib.lmer("log(gsp) ~ log(pc) + unemp + (1 | region/state)",
                                                    lmelib.datasets.load_produc(), reml=reml,
                                                    weights=VarIdent("region")),
    "produc_lme_ar1": lambda reml: lmelib.lmer("log(gsp) ~ log(pc) + unemp + (1 | region/state)",
                                               lmelib.datasets.load_produc(), reml=reml,
                                               correlation=AR1("year", "state")),
    "ovary_lme_arma11": lambda reml: lmelib.lmer("follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 | Mare)",
                                                 _ovary(), reml=reml, correlation=ARMA("obs", "Mare", p=1, q=1)),
}


def time_lmelib(name: str, reml: bool, repeats: int) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = MODELS[name](reml)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            MODELS[name](reml)
            times.append(time.perf_counter() - t)
    return float(np.median(times)), fit.loglik


def time_nlme(repeats: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    res = subprocess.run(["Rscript", str(ROOT / "benchmarks" / "nlme_bench.R"), str(ROOT / "data"), str(repeats)],
                         capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        print("nlme run failed:", res.stderr.strip().splitlines()[-1:])
        return None
    return json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    r = time_nlme(args.repeats)
    if r is None:
        print("Rscript with nlme not found: lmelib times only")
    print(f"{'model':<24} {'fit':<5} {'lmelib s':>9} {'nlme s':>9} {'ratio':>6} {'logLik lmelib':>15} {'logLik nlme':>15}")
    for name in MODELS:
        for reml in (True, False):
            kind = "REML" if reml else "ML"
            t, ll = time_lmelib(name, reml, args.repeats)
            other = (r or {}).get(f"{name}_{kind}")
            tn = f"{other['time']:.3f}" if other else "—"
            ratio = f"{t / other['time']:.2f}" if other and other["time"] > 0 else "—"
            lln = f"{other['loglik']:.4f}" if other else "—"
            print(f"{name:<24} {kind:<5} {t:>9.3f} {tn:>9} {ratio:>6} {ll:>15.4f} {lln:>15}")


if __name__ == "__main__":
    main()
