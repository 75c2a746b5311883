"""summary() printed in lme4's layout (issue 15).

Reference: the "summary_layout" entries of tests/reference/interface_reference.json,
lme4 1.1.31's ``print(summary(m))`` line by line.  lmelib prints its numbers
through lmelib/formatting.py (4 significant digits, where lme4 prints a
column with common decimals), so the layout is compared cell by cell and the
numbers within what the printed digits allow:

* random effects: the header (``Groups Name Variance Std.Dev. Corr``), the
  group and name of every row, the residual row last, and as many correlation
  cells per row as lme4 prints (the lower triangle); the correlations
  themselves (2 decimals) equal for fits that R reports as converged;
* correlation of fixed effects: lme4's block exactly (abbreviated headers and
  row names, 3 decimals, columns beyond 80 characters in a second block) for
  the lmer fits R reports as converged; headers and row names for the others;
* scaled residuals: Min 1Q Median 3Q Max over one number of decimals for all.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import lmelib
from lmelib.summary import char_matrix, named_vector
from conftest import load_reference

REF = load_reference("interface_reference.json")
LAYOUTS = {e["id"]: e for e in REF["summary_layout"]}
CONVERGED = ["sleepstudy_rs", "jsp_twelve"]  # lme4 printed no convergence message
# fits whose figures lmelib reproduces (contraception: lme4 warns, but three optimizers agree on
# its optimum; orthodont_three_slopes: lme4 stops at a degenerate Hessian, so only its layout counts)
SAME_FIT = CONVERGED + ["contraception_rs"]
LME4_MESSAGES = ("optimizer (", "Model ", "unable ", "boundary ", "fit warnings", "---")


def _fit(entry):
    d = pd.read_csv(lmelib.datasets.data_path(entry["data"]))
    for col in entry["factors"]:
        d[col] = pd.Categorical(d[col], categories=sorted(d[col].dropna().unique()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if entry["kind"] == "glmer":
            d["use01"] = (d["use"] == "Y").astype(int)
            return lmelib.glmer(entry["formula"], d, family=entry["family"])
        return lmelib.lmer(entry["formula"], d, reml=entry["reml"])


@pytest.fixture(scope="module")
def texts():
    return {k: (str(_fit(e).summary()).splitlines(), e["text"]) for k, e in LAYOUTS.items()}


def block(lines: list[str], title: str) -> list[str]:
    """The lines after the first line starting with ``title``, up to a blank line or lme4's
    messages after the summary."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 1
    end = next((i for i in range(start, len(lines))
                if not lines[i].strip() or lines[i].startswith(LME4_MESSAGES)), len(lines))
    return [line.rstrip() for line in lines[start:end]]


def varcorr_cells(lines: list[str]):
    """Rows of the random-effects block as (group, name, numbers), cut at the header's columns."""
    header = lines[0]
    name_at, var_at = header.index("Name"), header.index("Variance")
    rows = []
    for line in lines[1:]:
        if line.startswith("Number of obs"):
            break
        rows.append((line[:name_at].strip(), line[name_at:var_at].strip(), line[var_at:].split()))
    return header.split(), rows


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_random_effects_block(texts, name):
    ours, r = texts[name]
    (h1, rows1), (h0, rows0) = varcorr_cells(block(ours, "Random effects")), varcorr_cells(block(r, "Random effects"))
    assert h1 == h0
    assert [(g, n, len(v)) for g, n, v in rows1] == [(g, n, len(v)) for g, n, v in rows0]
    if LAYOUTS[name]["kind"] == "lmer":
        assert rows1[-1][:2] == ("Residual", "")
    for (_, _, v1), (_, _, v0) in zip(rows1, rows0):
        if name in SAME_FIT:
            np.testing.assert_allclose([float(x) for x in v1[:2]], [float(x) for x in v0[:2]], rtol=2e-3)
            assert v1[2:] == v0[2:]
    assert not any(line.strip() == "Groups" for line in ours)  # no index header on a line of its own


@pytest.mark.parametrize("name", CONVERGED)
def test_correlation_of_fixed_effects_as_lme4(texts, name):
    ours, r = texts[name]
    assert block(ours, "Correlation of Fixed Effects") == block(r, "Correlation of Fixed Effects")


@pytest.mark.parametrize("name", sorted(set(LAYOUTS) - set(CONVERGED)))
def test_correlation_headers_and_rows_as_lme4(texts, name):
    ours, r = block(texts[name][0], "Correlation of Fixed Effects"), block(texts[name][1], "Correlation of Fixed Effects")
    assert ours[0].split() == r[0].split()
    assert [line.split()[0] for line in ours[1:]] == [line.split()[0] for line in r[1:]]
    assert [len(line.split()) for line in ours] == [len(line.split()) for line in r]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_residual_quantiles_one_number_of_decimals(texts, name):
    ours, r = block(texts[name][0], "Scaled residuals"), block(texts[name][1], "Scaled residuals")
    assert ours[0].split() == r[0].split() == ["Min", "1Q", "Median", "3Q", "Max"]
    values = ours[1].split()
    decimals = {len(v.split(".")[1]) if "." in v else 0 for v in values}
    assert len(decimals) == 1
    if name in SAME_FIT:
        np.testing.assert_allclose([float(v) for v in values], [float(v) for v in r[1].split()],
                                   atol=0.5 * 10.0 ** -decimals.pop() + 1e-4)
    width = len(ours[0])
    assert len(ours[1]) == width and all(len(t) <= width for t in values)


def test_named_vector_right_aligns_to_one_width():
    text = named_vector(["Min", "Median"], ["-3.954", "0.023"])
    assert text.splitlines() == ["   Min Median", "-3.954  0.023"]


def test_char_matrix_wraps_at_80_characters_as_r():
    rows = [["-0.123"] * 12]
    text = char_matrix([f"column{k:02d}" for k in range(12)], rows, ["row"])
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(lines) == 4  # two blocks of header and row
    # 3 + 8 × (1 + 8) = 75 characters hold eight columns, a ninth would make 84
    assert lines[0].split()[-1] == "column07" and lines[2].split()[0] == "column08"
    assert lines[3].split() == ["row"] + ["-0.123"] * 4


def test_wide_fixed_effects_correlation_is_not_printed():
    """lme4 prints no correlation matrix for more than 12 fixed effects (lme4.summary.cor.max)."""
    jsp = lmelib.datasets.load_jsp()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lmelib.lmer("math5 ~ math3 * gender + social * gender + (1 | school)", jsp)
    assert len(m.fixef) > 12
    text = str(m.summary())
    assert re.search(r"Correlation matrix not shown by default, as p = \d+ > 12", text)
