"""Printed summaries in the layout of R's ``summary()``, as text and as HTML.

A :class:`Summary` is a list of titled sections, each a line of text or a
table; ``str()`` gives the console layout of lme4, ``_repr_html_`` the tidy
tables a notebook shows.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ddf import coef_table
from .formatting import FIXEF_CORR_DECIMALS, fmt, fmt_corr, fmt_fixed, fmt_lik, fmt_p
from .names import abbreviate

__all__ = ["Summary", "html_table", "lmm_summary", "glmm_summary", "lm_summary", "gls_summary", "format_table",
           "format_varcorr", "format_fixef_correlation", "char_matrix", "named_vector"]


@dataclass(frozen=True)
class Summary:
    header: tuple[str, ...]
    sections: tuple[tuple[str, object], ...]  # (title, str | DataFrame)
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        out = list(self.header) + [""]
        for title, body in self.sections:
            if title:
                out.append(f"{title}:")
            out.append(format_table(body) if isinstance(body, pd.DataFrame) else str(body))
            out.append("")
        out += list(self.notes)
        return "\n".join(out).rstrip() + "\n"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        """The summary for a notebook, narrow enough for the book's content column: text blocks
        as preformatted text (at most WIDTH characters wide), tables that wrap their headers,
        notes as paragraphs."""
        parts = [f"<p><b>{html.escape(self.header[0])}</b><br>"
                 + "<br>".join(html.escape(h) for h in self.header[1:]) + "</p>"]
        for title, body in self.sections:
            if title:
                parts.append(f"<p><i>{html.escape(title)}</i></p>")
            if isinstance(body, pd.DataFrame):
                parts.append(html_table(body.map(_fmt)))
            else:
                parts.append(f"<pre>{html.escape(str(body))}</pre>")
        parts += [f"<p><b>{html.escape(n)}</b></p>" for n in self.notes]
        return "\n".join(parts)


CELL = "padding: 0.15em 0.25em; text-align: right; vertical-align: top"
LABEL = "padding: 0.15em 0.25em; text-align: left; vertical-align: top; overflow-wrap: break-word"


def _breakable(text: str) -> str:
    """Escaped header text that may break after ``Pr(>`` or ``Pr(>|`` when the table is tight."""
    return re.sub(r"\((&gt;\|?)", r"(\1<wbr>", html.escape(text))


def _header_rows(columns) -> str:
    """Two header rows: consecutive columns named "<prefix> <suffix>" share one cell for the
    prefix (``Pr(>Chisq)`` over ``naive``, ``boundary``); other headers span both rows."""
    parts = [str(c).split(" ", 1) if " " in str(c) else [str(c), ""] for c in columns]
    top, bottom, j = [], [], 0
    while j < len(parts):
        prefix, suffix = parts[j]
        k = j + 1
        while suffix and k < len(parts) and parts[k][1] and parts[k][0] == prefix:
            k += 1
        if suffix and k - j > 1:
            top.append(f'<th colspan="{k - j}" style="{CELL}; text-align: center">{_breakable(prefix)}</th>')
            bottom += [f'<th style="{CELL}">{_breakable(parts[i][1])}</th>' for i in range(j, k)]
        else:
            text = "<br>".join(_breakable(w) for w in (prefix, suffix) if w)
            top.append(f'<th rowspan="2" style="{CELL}">{text}</th>')
        j = k
    return (f'<tr><th rowspan="2" style="{LABEL}"></th>{"".join(top)}</tr>'
            f'<tr>{"".join(bottom)}</tr>')


def html_table(cells: pd.DataFrame, wrap=()) -> str:
    """A table of text cells as compact HTML for the book's content column: headers as
    :func:`_header_rows` makes them, row labels and the columns named in ``wrap`` wrap at their
    spaces, other cells (numbers) stay on one line."""
    def cell(column, v) -> str:
        nowrap = "" if column in wrap else "; white-space: nowrap"
        return f'<td style="{CELL}{nowrap}">{html.escape(str(v))}</td>'

    rows = [f'<tr><th style="{LABEL}">{html.escape(str(label))}</th>'
            + "".join(cell(c, v) for c, v in row.items()) + "</tr>"
            for label, row in cells.iterrows()]
    return (f'<table style="border-collapse: collapse; font-size: 0.75em">'
            f'<thead>{_header_rows(cells.columns)}</thead><tbody>{"".join(rows)}</tbody></table>')


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)):
        return fmt(v)
    return str(v)


def format_table(df: pd.DataFrame) -> str:
    """A DataFrame as aligned text, numbers through lmelib's formatting policy."""
    return df.map(_fmt).to_string()


_p_format = fmt_p
WIDTH = 80  # R's getOption("width"): wider matrices are printed in blocks of columns
COR_MAX = 12  # lme4's getOption("lme4.summary.cor.max")


def _right(cells: list[str]) -> list[str]:
    """Cells padded on the left to a common width, as R's format() pads numbers."""
    width = max((len(c) for c in cells), default=0)
    return [c.rjust(width) for c in cells]


def char_matrix(header: list[str], rows: list[list[str]], rownames: list[str] | None = None,
                width: int = WIDTH) -> str:
    """R's ``print(m, quote = FALSE)`` of a character matrix: row names, then each column
    left-aligned under its header; columns beyond ``width`` characters go to a further block."""
    rownames = rownames if rownames is not None else [""] * len(rows)
    w0 = max([len(r) for r in rownames], default=0)
    widths = [max([len(h)] + [len(r[j]) for r in rows]) for j, h in enumerate(header)]
    blocks, current, used = [], [], w0
    for j, w in enumerate(widths):
        if current and used + 1 + w > width:
            blocks.append(current)
            current, used = [], w0
        current.append(j)
        used += 1 + w
    blocks.append(current)
    lines = []
    for cols in blocks:
        lines.append(("".ljust(w0) + "".join(" " + header[j].ljust(widths[j]) for j in cols)).rstrip())
        for name, row in zip(rownames, rows):
            lines.append((name.ljust(w0) + "".join(" " + row[j].ljust(widths[j]) for j in cols)).rstrip())
    return "\n".join(lines)


def named_vector(names: list[str], cells: list[str]) -> str:
    """R's print of a named vector: names over values, every column right-aligned to one width."""
    width = max(len(c) for c in list(names) + list(cells))
    return "\n".join(" ".join(c.rjust(width) for c in line) for line in (names, cells))


def _quantiles(r: np.ndarray) -> str:
    q = np.quantile(r, [0, 0.25, 0.5, 0.75, 1.0])
    return named_vector(["Min", "1Q", "Median", "3Q", "Max"], fmt_fixed(q))


def _varcorr_blocks(vc: pd.DataFrame):
    """Per grouping factor: its name, column names, variances, standard deviations, correlations."""
    for grp, block in vc.groupby("grp", sort=False):
        var = block[block["var2"].isna()]
        names = ["" if pd.isna(n) else str(n) for n in var["var1"]]
        corr = np.eye(len(names))
        for _, c in block[block["var2"].notna()].iterrows():
            i, j = names.index(c["var1"]), names.index(c["var2"])
            corr[i, j] = corr[j, i] = c["sdcor"]
        yield str(grp), names, var["vcov"].to_numpy(float), var["sdcor"].to_numpy(float), corr


def format_varcorr(vc: pd.DataFrame) -> str:
    """The random-effects block of lme4's summary: Groups, Name, Variance, Std.Dev. and the
    lower triangle of each term's correlations under Corr; the residual last."""
    blocks = list(_varcorr_blocks(vc))
    ncorr = max(len(b[1]) for b in blocks) - 1
    variances = iter(_right([fmt(v) for b in blocks for v in b[2]]))
    sds = iter(_right([fmt(v) for b in blocks for v in b[3]]))
    rows = []
    for grp, names, _, _, corr in blocks:
        k = len(names)
        cells = np.array(_right([fmt_corr(x) for x in corr.ravel()]), dtype=object).reshape(k, k)
        for i, name in enumerate(names):
            rows.append([grp if i == 0 else "", name, next(variances), next(sds)]
                        + [cells[i, j] if j < i else "" for j in range(ncorr)])
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (ncorr - 1) if ncorr else [])
    return char_matrix(header, rows)


def format_fixef_correlation(vcov: pd.DataFrame) -> str | None:
    """lme4's "Correlation of Fixed Effects": lower triangle, 3 decimals, rows named by
    ``abbreviate(names, 11)`` and columns by ``abbreviate(names, 6)``; None for p < 2."""
    p = len(vcov)
    if p < 2:
        return None
    if p > COR_MAX:
        return (f"Correlation matrix not shown by default, as p = {p} > {COR_MAX}: "
                "see m.vcov for the covariances of the fixed effects")
    sd = np.sqrt(np.diag(vcov))
    corr = vcov.to_numpy() / np.outer(sd, sd)
    cells = np.array(_right([fmt_corr(x, FIXEF_CORR_DECIMALS) for x in corr.ravel()]),
                     dtype=object).reshape(p, p)
    names = [str(n) for n in vcov.index]
    rows = [[cells[i, j] if j < i else "" for j in range(p - 1)] for i in range(1, p)]
    return char_matrix(abbreviate(names, 6)[:-1], rows, abbreviate(names, 11)[1:])


def _random_effects(m) -> str:
    groups = "; ".join(f"{k}, {v}" for k, v in m.ngrps.items())
    return format_varcorr(m.varcorr) + f"\nNumber of obs: {m.nobs}, groups:  {groups}"


def _fit_criteria(m, deviance_label: str, deviance: float) -> str:
    return named_vector(["AIC", "BIC", "logLik", deviance_label, "df.resid"],
                        [f"{m.aic:.1f}", f"{m.bic:.1f}", f"{m.loglik:.1f}", f"{deviance:.1f}", str(m.df_resid)])


def _data_notes(frame) -> tuple[str, ...]:
    notes = []
    if frame.n_dropped_rows:
        detail = ", ".join(f"{c}: {k}" for c, k in frame.na_counts.items())
        notes.append(f"{frame.n_dropped_rows} rows with missing values were dropped ({detail}).")
    if frame.dropped_columns:
        notes.append("Rank-deficient X: dropped " + ", ".join(frame.dropped_columns) + ".")
    return tuple(notes)


def lmm_summary(m, ddf: str | None = None) -> Summary:
    method = "REML" if m.reml else "maximum likelihood"
    header = [f"Linear mixed model fit by {method}", f"Formula: {m.formula}"]
    sections: list[tuple[str, object]] = []
    if m.reml:
        sections.append(("", f"REML criterion at convergence: {fmt_lik(m.objective)}"))
    else:
        sections.append(("", _fit_criteria(m, "deviance", m.deviance)))
    if getattr(m, "errors", None) is not None:  # each residual over its own standard deviation
        sections.append(("Pearson residuals", _quantiles(m.residuals(type="pearson").dropna().to_numpy())))
    else:
        title, q = m.scaled_residual_quantiles()
        sections.append((title, named_vector(["Min", "1Q", "Median", "3Q", "Max"], fmt_fixed(q))))
    sections.append(("Random effects", _random_effects(m)))
    if getattr(m, "errors", None) is not None:
        sections.append((f"Error structure: {m.errors.label} (95% Wald intervals)", m.structure_intervals()))
    if ddf is None:
        sections.append(("Fixed effects", m.coef_table))
    else:
        table = coef_table(m, ddf)
        table["Pr(>|t|)"] = table["Pr(>|t|)"].map(_p_format)
        sections.append(("Fixed effects", table))
        header[0] += ". t-tests use " + {"Satterthwaite": "Satterthwaite's",
                                         "Kenward-Roger": "Kenward-Roger's"}[ddf] + " method"
    corr = format_fixef_correlation(m.vcov)
    if corr is not None:
        sections.append(("Correlation of Fixed Effects", corr))
    sections.append(("Optimizer", m.optsum.brief()))
    notes = list(_data_notes(m.frame))
    if m.singular:
        notes.append("boundary (singular) fit: a variance is estimated as zero or a correlation "
                      "as ±1, so the random-effects structure is more complex than the data "
                      "support; consider simplifying it (see lme4's ?isSingular).")
    if not m.optsum.converged:
        notes.append(f"The optimizer did not converge: {m.optsum.returnvalue}.")
    return Summary(tuple(header), tuple(sections), tuple(notes))


def glmm_summary(m) -> Summary:
    approx = "Laplace Approximation" if m.nagq == 1 else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {m.nagq}"
    header = [f"Generalized linear mixed model fit by maximum likelihood ({approx})",
              f"Family: {m.family}", f"Formula: {m.formula}"]
    sections: list[tuple[str, object]] = [
        ("", _fit_criteria(m, "-2 log L", -2 * m.loglik)),
        ("Scaled residuals (Pearson)", _quantiles(m.residuals("pearson").dropna().to_numpy())),
        ("Random effects", _random_effects(m)),
    ]
    tab = m.coef_table.copy()
    tab["Pr(>|z|)"] = tab["Pr(>|z|)"].map(_p_format)
    sections.append(("Fixed effects", tab))
    corr = format_fixef_correlation(m.vcov)
    if corr is not None:
        sections.append(("Correlation of Fixed Effects", corr))
    sections.append(("Optimizer", m.optsum.brief()))
    notes = list(_data_notes(m.frame))
    if m.family.name == "poisson":
        ratio = m.overdispersion
        notes.append(f"Overdispersion: Pearson chi-squared / residual df = {ratio:.3f}"
                     + (" (well above 1: consider an observation-level random effect)" if ratio > 1.5 else ""))
    if m.singular:
        notes.append("boundary (singular) fit: a variance is estimated as zero or a correlation as ±1.")
    if not m.optsum.converged:
        notes.append(f"The optimizer did not converge: {m.optsum.returnvalue}.")
    return Summary(tuple(header), tuple(sections), tuple(notes))


def gls_summary(m) -> Summary:
    method = "REML" if m.reml else "maximum likelihood"
    header = [f"Generalized least squares fit by {method}", f"Formula: {m.formula}"]
    tab = m.coef_table.copy()
    tab["Pr(>|t|)"] = tab["Pr(>|t|)"].map(_p_format)
    sections = [
        ("", named_vector(["AIC", "BIC", "logLik"], [f"{m.aic:.1f}", f"{m.bic:.1f}", f"{m.loglik:.1f}"])),
        (f"Error structure: {m.errors.label} (95% Wald intervals)", m.structure_intervals()),
        ("Coefficients", tab),
        ("", f"Residual standard error: {fmt(m.sigma)}"),
        ("Optimizer", m.optsum.brief()),
    ]
    return Summary(tuple(header), tuple(sections), _data_notes(m.frame))


def lm_summary(m) -> Summary:
    header = ["Linear model fit by least squares", f"Formula: {m.formula}"]
    tab = m.coef_table.copy()
    tab["Pr(>|t|)"] = tab["Pr(>|t|)"].map(_p_format)
    sections = [
        ("Residuals", _quantiles(m.residuals().dropna().to_numpy())),
        ("Coefficients", tab),
        ("", f"Residual standard error: {fmt(m.sigma)} on {m.df_resid} degrees of freedom\n"
             f"Multiple R-squared: {fmt(m.r_squared)}\n"
             f"logLik: {fmt_lik(m.loglik)} (df={m.npar}), AIC: {fmt_lik(m.aic)}, BIC: {fmt_lik(m.bic)}"),
    ]
    return Summary(tuple(header), tuple(sections), _data_notes(m.frame))
