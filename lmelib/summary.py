"""Printed summaries in the layout of R's ``summary()``, as text and as HTML.

A :class:`Summary` is a list of titled sections, each a line of text or a
table; ``str()`` gives the console layout of lme4, ``_repr_html_`` the tidy
tables a notebook shows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .formatting import fmt, fmt_lik, fmt_p

__all__ = ["Summary", "lmm_summary", "glmm_summary", "lm_summary", "format_table"]


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
        parts = [f"<p><b>{html.escape(self.header[0])}</b><br>"
                 + "<br>".join(html.escape(h) for h in self.header[1:]) + "</p>"]
        for title, body in self.sections:
            if title:
                parts.append(f"<p><i>{html.escape(title)}</i></p>")
            if isinstance(body, pd.DataFrame):
                parts.append(body.to_html(float_format=fmt, na_rep=""))
            else:
                parts.append(f"<pre>{html.escape(str(body))}</pre>")
        parts += [f"<p><b>{html.escape(n)}</b></p>" for n in self.notes]
        return "\n".join(parts)


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


def _varcorr_table(m) -> pd.DataFrame:
    vc = m.varcorr
    rows = []
    for grp, block in vc.groupby("grp", sort=False):
        var = block[block["var2"].isna()]
        cor = block[block["var2"].notna()]
        for k, (_, r) in enumerate(var.iterrows()):
            row = {"Groups": grp if k == 0 else "", "Name": r["var1"] or "",
                   "Variance": r["vcov"], "Std.Dev.": r["sdcor"]}
            for _, c in cor[cor["var2"] == r["var1"]].iterrows():
                row[f"Corr {c['var1']}"] = c["sdcor"]
            rows.append(row)
    return pd.DataFrame(rows).set_index("Groups")


def _residual_quantiles(r: np.ndarray) -> pd.DataFrame:
    q = np.quantile(r, [0, 0.25, 0.5, 0.75, 1.0])
    return pd.DataFrame([q], columns=["Min", "1Q", "Median", "3Q", "Max"], index=[""])


def _fixef_correlation(vcov: pd.DataFrame) -> pd.DataFrame | None:
    if len(vcov) < 2:
        return None
    sd = np.sqrt(np.diag(vcov))
    corr = vcov.to_numpy() / np.outer(sd, sd)
    names = list(vcov.index)
    short = [n if len(n) <= 6 else n[:6] for n in names]
    tab = pd.DataFrame(corr, index=names, columns=short).iloc[1:, :-1]
    mask = np.triu(np.ones(tab.shape, dtype=bool), k=1)
    return tab.mask(mask).round(3)


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
        sections.append(("", pd.DataFrame(
            [[f"{m.aic:.1f}", f"{m.bic:.1f}", f"{m.loglik:.1f}", f"{m.deviance:.1f}", str(m.df_resid)]],
            columns=["AIC", "BIC", "logLik", "deviance", "df.resid"], index=[""])))
    if getattr(m, "errors", None) is not None:  # each residual over its own standard deviation
        sections.append(("Pearson residuals", _residual_quantiles(m.residuals(type="pearson").dropna().to_numpy())))
    else:
        title, q = m.scaled_residual_quantiles()
        sections.append((title, pd.DataFrame([q], columns=["Min", "1Q", "Median", "3Q", "Max"], index=[""])))
    groups = ", ".join(f"{k}, {v}" for k, v in m.ngrps.items())
    sections.append(("Random effects", format_table(_varcorr_table(m))
                     + f"\nNumber of obs: {m.nobs}, groups:  {groups}"))
    if getattr(m, "errors", None) is not None:
        sections.append((f"Error structure: {m.errors.label} (95% Wald intervals)", m.structure_intervals()))
    if ddf is None:
        sections.append(("Fixed effects", m.coef_table))
    else:
        from .ddf import coef_table

        table = coef_table(m, ddf)
        table["Pr(>|t|)"] = table["Pr(>|t|)"].map(_p_format)
        sections.append(("Fixed effects", table))
        header[0] += ". t-tests use " + {"Satterthwaite": "Satterthwaite's",
                                         "Kenward-Roger": "Kenward-Roger's"}[ddf] + " method"
    corr = _fixef_correlation(m.vcov)
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
        ("", pd.DataFrame(
            [[f"{m.aic:.1f}", f"{m.bic:.1f}", f"{m.loglik:.1f}", f"{-2 * m.loglik:.1f}", str(m.df_resid)]],
            columns=["AIC", "BIC", "logLik", "-2 log L", "df.resid"], index=[""])),
        ("Scaled residuals (Pearson)", _residual_quantiles(m.residuals("pearson").dropna().to_numpy())),
    ]
    groups = ", ".join(f"{k}, {v}" for k, v in m.ngrps.items())
    sections.append(("Random effects", format_table(_varcorr_table(m)) + f"\nNumber of obs: {m.nobs}, groups:  {groups}"))
    tab = m.coef_table.copy()
    tab["Pr(>|z|)"] = tab["Pr(>|z|)"].map(_p_format)
    sections.append(("Fixed effects", tab))
    corr = _fixef_correlation(m.vcov)
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
        ("", pd.DataFrame([[f"{m.aic:.1f}", f"{m.bic:.1f}", f"{m.loglik:.1f}"]],
                          columns=["AIC", "BIC", "logLik"], index=[""])),
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
        ("Residuals", _residual_quantiles(m.residuals().dropna().to_numpy())),
        ("Coefficients", tab),
        ("", f"Residual standard error: {fmt(m.sigma)} on {m.df_resid} degrees of freedom\n"
             f"Multiple R-squared: {fmt(m.r_squared)}\n"
             f"logLik: {fmt_lik(m.loglik)} (df={m.npar}), AIC: {fmt_lik(m.aic)}, BIC: {fmt_lik(m.bic)}"),
    ]
    return Summary(tuple(header), tuple(sections), _data_notes(m.frame))
