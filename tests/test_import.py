"""``import lmelib`` stays light: heavy modules that only a few functions need are imported late.

Run in a fresh interpreter, since this test session has long imported them.
"""

import subprocess
import sys

LATE = ("scipy.stats", "statsmodels", "matplotlib")


def test_import_lmelib_does_not_import_heavy_modules():
    code = ("import sys, lmelib; "
            f"print(','.join(m for m in {LATE!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import lmelib imported {out.stdout.strip()}"


def test_late_imports_still_work():
    code = ("import lmelib, numpy as np; "
            "from lmelib.anova import chibar2_sf; "
            "assert abs(chibar2_sf(3.84, 1) - 0.025) < 1e-3; "
            "from lmelib.family import family; f = family('binomial', 'probit'); "
            "assert abs(f.link.linkinv(np.array([1.959964]))[0] - 0.975) < 1e-6; "
            "assert abs(f.link.linkfun(np.array([0.975]))[0] - 1.959964) < 1e-6")
    subprocess.run([sys.executable, "-c", code], check=True)
