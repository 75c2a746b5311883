"""The HTML of summaries and anova tables fits the book's content column (issue 15).

Each repr is rendered in headless Chromium inside an output area as wide as
the book's on a 1400-pixel-wide window (772 px: the width of
``div.cell_output`` measured on the built site at 1400 × 1000), styled by the
book's own style sheets (pydata-sphinx-theme, sphinx-book-theme, myst-nb), and
no element may be wider than the area or scroll sideways.  The widest cases in
the book are used: anova tables with long formulas and every p-value column,
summaries with twelve fixed effects and lmerTest's columns.

Chromium and ChromeDriver come from Debian (see test_site.py); without them
the test is skipped.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

import lmelib

CONTENT_WIDTH = 772  # px, div.cell_output of the built book at a 1400-pixel-wide window
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _style_sheets() -> str:
    import myst_nb
    import pydata_sphinx_theme
    import sphinx_book_theme

    files = [Path(pydata_sphinx_theme.__file__).parent / "theme/pydata_sphinx_theme/static/styles/pydata-sphinx-theme.css",
             Path(sphinx_book_theme.__file__).parent / "theme/sphinx_book_theme/static/styles/sphinx-book-theme.css",
             Path(myst_nb.__file__).parent / "static/mystnb.css"]
    return "\n".join(f.read_text() for f in files if f.exists())


@pytest.fixture(scope="module")
def driver():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium and chromedriver (Debian packages) are needed to render HTML")
    selenium = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = selenium.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    d = selenium.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "page.html"
    css = _style_sheets()

    def write(body: str) -> str:
        path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{css}</style></head>"
                        f"<body><article class='bd-article' style='width:{CONTENT_WIDTH}px'>"
                        f"<div class='cell docutils container'><div class='cell_output docutils container'>"
                        f"<div class='output text_html' id='out'>{body}</div></div></div></article></body></html>")
        return path.as_uri()

    return write


OVERFLOW = """
const out = document.getElementById('out');
const right = out.getBoundingClientRect().right;
const bad = [];
if (out.scrollWidth > out.clientWidth) bad.push(['output', out.clientWidth, out.scrollWidth]);
for (const e of out.querySelectorAll('*')) {
  if (e.getBoundingClientRect().right > right + 0.5) bad.push([e.tagName, e.textContent.slice(0, 40)]);
  if (e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0) bad.push(['scrolls', e.tagName, e.textContent.slice(0, 40)]);
}
return bad;
"""


def _fits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jsp = lmelib.datasets.load_jsp()
        produc = lmelib.datasets.load_produc()
        jsp["math3c"] = jsp["math3"] - jsp["math3"].mean()
        reg = lmelib.lm("math5 ~ math3c", jsp)
        ri = lmelib.lmer("math5 ~ math3c + (1 | school)", jsp)
        unc = lmelib.lmer("math5 ~ math3c + (math3c || school)", jsp)
        cor = lmelib.lmer("math5 ~ math3c + (math3c | school)", jsp)
        wide = lmelib.lmer("math5 ~ math3 * gender + social + (1 | school) + (1 | school:class)", jsp)
        p1 = lmelib.lmer("log(gsp) ~ log(pc) + log(hwy) + log(water) + log(util) + unemp + (1 | region)",
                         produc)
        p2 = lmelib.lmer("log(gsp) ~ log(pc) + log(hwy) + log(water) + log(util) + unemp + (1 | region) "
                         "+ (1 | region:state)", produc)
        con = lmelib.datasets.load_contraception()
        con["use01"] = (con["use"] == "Y").astype(int)
        g = lmelib.glmer("use01 ~ age + I(age^2) + urban + livch + (urban | district)", con, family="binomial")
        return {
            "anova four models": lmelib.anova(reg, ri, unc, cor),
            "anova nested formulas": lmelib.anova(p1, p2),
            "anova bootstrap column": lmelib.anova(ri, cor, nsim=3, seed=1, progress=False),
            "summary twelve coefficients": wide.summary(),
            "summary Satterthwaite": wide.summary(ddf="Satterthwaite"),
            "summary glmer": g.summary(),
        }


@pytest.fixture(scope="module")
def reprs():
    return {k: v._repr_html_() for k, v in _fits().items()}


@pytest.mark.parametrize("case", ["anova four models", "anova nested formulas", "anova bootstrap column",
                                  "summary twelve coefficients", "summary Satterthwaite", "summary glmer"])
def test_html_fits_the_content_column(driver, page, reprs, case):
    driver.get(page(reprs[case]))
    assert driver.execute_script(OVERFLOW) == []


def test_the_check_sees_a_table_too_wide(driver, page):
    """The measurement itself: pandas' HTML of a wide table overflows the column."""
    import pandas as pd

    wide = pd.DataFrame([[123456.789] * 14], columns=[f"Pr(>Chisq) column {k}" for k in range(14)])
    driver.get(page(wide.to_html()))
    assert driver.execute_script(OVERFLOW) != []
