"""Likelihood-ratio tests between nested models: ``anova(m0, m1, ...)``.

The table is lme4's ``anova.merMod`` (Bates et al. 2015): the models are
sorted by their number of parameters, and each is compared with the one before
it by the likelihood-ratio statistic

    Chisq = 2 (log L₁ − log L₀),   Df = npar₁ − npar₀,

whose p-value lme4 reads from χ²(Df) (Wilks 1938).  REML fits are first
refitted by maximum likelihood, as lme4 does by default (``refit=True``): REML
criteria of models with different fixed effects are not comparable at all, and
lme4 refits even when only the random effects differ.  An ``lm`` fit can be the
smallest model, to ask whether a random effect is needed at all.

Wilks' χ²(Df) needs the null hypothesis to lie inside the parameter space.  A
variance cannot be negative, so "this variance is 0" lies on the boundary, and
there the statistic is not χ²(Df).  When the larger model adds one random
effect to a term of dimension k − 1 (with all its covariances with that term),
the asymptotic null distribution is the 50:50 mixture

    χ̄² = 0.5 χ²(k − 1) + 0.5 χ²(k)

(Self & Liang 1987; Stram & Lee 1994): in about half the samples the
new variance is estimated as exactly 0 and the statistic behaves as if the
model had not grown.  χ²(0) is a point mass at 0.  The naive χ²(k) p-value is
therefore too large (the test is conservative).  In small samples the point
mass at 0 is often larger than 0.5 (Crainiceanu & Ruppert 2004), so the
mixture is itself slightly conservative, but much less so.

Other comparisons are classified from the two models' structures:

* only fixed effects differ: interior null, χ²(Df) applies (though the LRT for
  fixed effects is anti-conservative in small samples; Pinheiro & Bates 2000,
  section 2.4);
* only correlations are added (``(x || g)`` against ``(x | g)``): a correlation
  of 0 is interior, χ²(Df) applies;
* only a residual error structure is added (``correlation=AR1(...)``,
  ``weights=VarIdent(...)``; structures.py): its null values (φ = 0, ratios 1,
  powers 0) are interior, χ²(Df) applies, except for CAR1, whose φ = 0 is its
  lower bound;
* anything else (several variance components at once, or fixed and random
  effects changed together): no simple mixture applies.  With ``nsim > 0`` the
  p-value comes from a parametric bootstrap (simulate from the smaller model,
  refit both, compare; as pbkrtest's ``PBmodcomp``, Halekoh & Højsgaard 2014);
  otherwise the naive χ²(Df) p-value is reported and marked as such.

``Pr(>Chisq)`` holds the p-value that applies (its distribution is named in
the ``test`` column); lme4's naive one is kept as ``Pr(>Chisq) naive``, and
``boundary=False`` gives lme4's table unchanged.

References: Bates, Mächler, Bolker & Walker (2015), J. Stat. Softw. 67(1);
Crainiceanu & Ruppert (2004), JRSS B 66, 165-185; Davison & Hinkley (1997),
Bootstrap Methods and their Application; Halekoh & Højsgaard (2014), J. Stat.
Softw. 59(9); Pinheiro & Bates (2000), Mixed-Effects Models in S and S-PLUS;
Self & Liang (1987), JASA 82, 605-610; Stram & Lee (1994), Biometrics 50,
1171-1177; Wilks (1938), Ann. Math. Stat. 9, 60-62.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.linalg

from .fitted import FittedModel
from .simulate import BootstrapResult, bootstrap, refit as refit_response
from .summary import html_table

__all__ = ["anova", "AnovaTable", "Comparison", "classify", "chibar2_sf"]

ZERO_LRT = 1e-6  # a likelihood-ratio statistic below this is optimiser noise: the fits are equal
R_COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"


# ------------------------------------------------------------ p-values


def chibar2_sf(chisq: float, k: int) -> float:
    """P(T ≥ chisq) for T ~ 0.5 χ²(k − 1) + 0.5 χ²(k); χ²(0) is a point mass at 0."""
    if chisq <= ZERO_LRT:
        return 1.0
    import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
    lower = 0.0 if k == 1 else scipy.stats.chi2.sf(chisq, k - 1)
    return float(0.5 * lower + 0.5 * scipy.stats.chi2.sf(chisq, k))


def _naive_p(chisq: float, df: int) -> float:
    import scipy.stats  # late: half of `import lmelib`'s time, needed by few functions
    return float(scipy.stats.chi2.sf(chisq, df)) if df > 0 else np.nan


def _bootstrap_lrt(small, large, nsim: int, seed, progress: bool) -> BootstrapResult:
    """Null distribution of the LRT: simulate from ``small``, refit both models."""

    def lrt(fit0) -> dict:
        fit1 = refit_response(large, fit0.frame.response)
        return {"Chisq": 2.0 * max(0.0, fit1.loglik - fit0.loglik)}

    return bootstrap(small, nsim, seed=seed, func=lrt, progress=progress)


def _bootstrap_p(boot: BootstrapResult, chisq: float) -> float:
    """(1 + #{T* ≥ T}) / (n + 1), the Monte Carlo p-value (Davison & Hinkley 1997, ch. 4)."""
    draws = boot.draws["Chisq"].to_numpy()
    return float((1 + np.sum(draws >= chisq - ZERO_LRT)) / (len(draws) + 1))


def _at_floor(boot: BootstrapResult, chisq: float) -> bool:
    """Whether no draw reached the observed statistic (p = 1/(n + 1))."""
    return len(boot.draws) > 0 and _bootstrap_p(boot, chisq) == 1 / (len(boot.draws) + 1)


# ------------------------------------------------- random-effects structure


@dataclass(frozen=True)
class _Block:
    """One random-effects term: its grouping factor and the columns that covary."""

    group: bytes  # the partition of the rows the grouping factor makes (canonical labels)
    name: str = field(compare=False)
    columns: frozenset
    label: str = field(default="", compare=False)  # the term as written, "(x | g)"


def _blocks(m) -> list[_Block]:
    """The random-effects terms of a fit (none for lm and gls)."""
    return [_Block(t.grouping_key, t.name, frozenset(t.columns), str(t.term))
            for t in m.frame.terms]


def _container(block: _Block, blocks: list[_Block]) -> _Block | None:
    """The block of ``blocks`` (same grouping factor) holding all of ``block``'s columns."""
    return next((b for b in blocks if b.group == block.group and block.columns <= b.columns), None)


@dataclass(frozen=True)
class _Change:
    """A term of the larger model that is not a term of the smaller one."""

    block: _Block
    new: tuple[str, ...]  # its columns absent from the smaller model's terms
    merged: tuple[_Block, ...]  # the smaller model's terms it contains


def _re_changes(small, large) -> list[_Change]:
    b0, changes = _blocks(small), []
    for block in _blocks(large):
        inside = tuple(b for b in b0 if _container(b, [block]) is block)
        if inside == (block,):
            continue
        covered = frozenset().union(*(b.columns for b in inside))
        changes.append(_Change(block, tuple(sorted(block.columns - covered)), inside))
    return changes


def _effect(column: str) -> str:
    return "intercept" if column == "(Intercept)" else f"slope of {column}"


def _describe(change: _Change) -> str:
    """Plain words for what one changed term adds."""
    g = change.block.name
    if not change.new:
        effects = " and ".join(_effect(c) for c in sorted(change.block.columns))
        return f"the correlation(s) between the random {effects} for {g}"
    added = " and ".join(f"a random {_effect(c)}" for c in change.new) + f" for {g}"
    old = sorted(change.block.columns - set(change.new))
    return added + (f", correlated with its random {', '.join(map(_effect, old))}" if old else "")


def _error_parts(m) -> set[str]:
    """The residual error structures of a fit, by nlme label ("corAR1(form = ~ year | firm)")."""
    errors = m.errors
    return set() if errors is None else {p.label for p in (errors.var, errors.cor) if p is not None}


# ------------------------------------------------------- nesting checks


def _fixed_not_contained(small, large) -> list[str]:
    """Columns of the smaller X outside the column space of the larger X."""
    return small.frame.fixed_outside(large.frame)


def _check_nested(small, large, names: tuple[str, str]) -> None:
    fixed = _fixed_not_contained(small, large)
    if fixed:
        raise ValueError(
            f"models are not nested: the fixed effect(s) {', '.join(fixed)} of {names[0]!r} "
            f"are not in the fixed part of {names[1]!r}")
    large_blocks = _blocks(large)
    outside = [b.label for b in _blocks(small) if _container(b, large_blocks) is None]
    if outside:
        raise ValueError(
            f"models are not nested: the random-effects term(s) {', '.join(outside)} of {names[0]!r} "
            f"are not contained in a term of {names[1]!r} (each term's columns must appear together "
            "in one term of the larger model: (x || g) is nested in (x | g), not the reverse)")
    errors = sorted(_error_parts(small) - _error_parts(large))
    if errors:
        raise ValueError(f"models are not nested: the error structure(s) {', '.join(errors)} of "
                         f"{names[0]!r} are not in {names[1]!r}")


def _check_same_data(models, names) -> None:
    n = [m.nobs for m in models]
    if len(set(n)) > 1:
        sizes = ", ".join(f"{name!r}: {k}" for name, k in zip(names, n))
        raise ValueError(f"models were not all fitted to the same data: numbers of observations "
                         f"differ ({sizes}); were different rows dropped for missing values?")
    for m, name in zip(models[1:], names[1:]):
        if not models[0].frame.same_response(m.frame):
            raise ValueError(
                f"models were not all fitted to the same data: the response of {name!r} "
                f"({m.frame.formula.response}) differs from that of {names[0]!r} "
                f"({models[0].frame.formula.response})")


# ------------------------------------------------------- classification


@dataclass(frozen=True)
class Comparison:
    """What the larger of two nested models adds, and so which test applies.

    ``kind`` is ``"fixed"`` (only fixed effects), ``"variance"`` (one random
    effect added to a term of dimension k − 1, with its covariances),
    ``"correlation"`` (only covariances), ``"errors"`` (only a residual error
    structure), ``"other"`` (anything else) or ``"none"`` (same number of
    parameters).
    """

    smaller: str
    larger: str
    kind: str
    df: int
    k: int = 0
    added: str = ""
    bootstrap: BootstrapResult | None = None


def _kind(df: int, n_fixed: int, changes: list[_Change], errors: list[str]) -> tuple[str, int]:
    """Which test applies, and k for the χ̄² mixture (module docstring)."""
    if df == 0:
        return "none", 0
    if errors:
        interior = not any(e.startswith("corCAR1") for e in errors)  # CAR1: φ = 0 is its bound
        return ("errors" if interior and not (n_fixed or changes) else "other"), 0
    if not changes:
        return "fixed", 0
    if n_fixed:  # fixed and random effects changed together
        return "other", 0
    if all(not c.new for c in changes):
        return "correlation", 0
    one = changes[0]
    k = len(one.block.columns)
    if len(changes) == 1 and len(one.new) == 1 and len(one.merged) <= 1 and df == k:
        return "variance", k  # one random effect joins a term of dimension k − 1
    return "other", 0


def classify(small, large, names: tuple[str, str] = ("smaller", "larger")) -> Comparison:
    """Classify the comparison of two nested models from their structures."""
    df = large.npar - small.npar
    changes = _re_changes(small, large)
    n_fixed = large.frame.p - small.frame.p
    new_x = [c for c in large.frame.x_names if c not in small.frame.x_names]
    errors = sorted(_error_parts(large) - _error_parts(small))
    parts = [f"fixed effect(s) {', '.join(new_x) or f'({n_fixed} columns)'}"] if n_fixed else []
    parts += [_describe(c) for c in changes] + [f"the residual error structure {e}" for e in errors]
    added = "; ".join(parts)
    kind, k = _kind(int(df), n_fixed, changes, errors)
    return Comparison(names[0], names[1], kind, int(df), k, added)


# ----------------------------------------------------------- explanation


def _explain(c: Comparison, boundary: bool, nsim: int) -> str:
    head = f"{c.smaller} vs {c.larger}: the larger model adds {c.added}."
    if c.kind == "none":
        return f"{c.smaller} vs {c.larger}: same number of parameters, no test."
    if c.kind == "fixed":
        return (f"{head} Under H0 these coefficients are 0, an ordinary interior value, so the LRT "
                f"is asymptotically χ²({c.df}) and the usual p-value applies (both fits by ML). "
                "In small samples it rejects somewhat too often; t or F tests with Satterthwaite "
                "or Kenward-Roger degrees of freedom are more reliable for fixed effects.")
    if c.kind == "correlation":
        return (f"{head} A correlation of 0 is inside its range (−1, 1), not on a boundary, so "
                f"the naive χ²({c.df}) p-value is the right one.")
    if c.kind == "errors":
        return (f"{head} Under H0 its parameters take interior values (correlation φ = 0, "
                f"standard-deviation ratios 1, powers 0), so the usual χ²({c.df}) p-value applies.")
    if c.kind == "variance" and boundary:
        return (f"{head} Under H0 the new variance is 0, on the boundary of its parameter space "
                "(a variance cannot be negative): in about half of all samples it is estimated as "
                f"exactly 0. The LRT is then not χ²({c.df}) but the mixture {_mixture(c.k)} "
                "(Self & Liang 1987; Stram & Lee 1994). The naive p-value is too large; "
                "Pr(>Chisq) reports the boundary-corrected one"
                + (" (here half the naive one, as a one-sided test halves a two-sided p-value)."
                   if c.k == 1 else "."))
    if c.kind == "variance":
        return (f"{head} Its variance is 0 under H0, on the boundary, so this naive χ²({c.df}) "
                f"p-value is conservative (boundary=True gives the {_mixture(c.k)} p-value).")
    why = (f"{head} This changes several things at once, so no simple χ² or χ²-mixture "
           "distribution applies.")
    if nsim > 0 and c.bootstrap is not None:
        b = c.bootstrap
        return (f"{why} Pr(>Chisq) is a parametric-bootstrap p-value: {len(b.draws)} data sets "
                f"simulated from the smaller model, both models refitted to each "
                f"({b.failed} refits failed), p = (1 + #{{LRT* ≥ LRT}}) / (n + 1).")
    if not boundary:
        return f"{why} Its naive χ²({c.df}) p-value (boundary=False) is only a rough guide."
    return (f"{why} Pr(>Chisq) is the naive χ²({c.df}) p-value, marked 'naive'; it tends to be "
            "too large when variances are tested. Pass nsim=1000 (say) for a "
            "parametric-bootstrap p-value.")


def _mixture(k: int) -> str:
    return f"0.5·χ²({k - 1}) + 0.5·χ²({k})"


def _test_label(c: Comparison) -> str:
    """The reference distribution of the reported p-value (boundary=True)."""
    if c.kind == "none":
        return ""
    if c.kind == "variance":
        return _mixture(c.k)
    if c.kind == "other":
        return f"bootstrap ({len(c.bootstrap.draws)})" if c.bootstrap else f"χ²({c.df}) naive"
    return f"χ²({c.df})"


# --------------------------------------------------------------- the table


@dataclass(frozen=True, eq=False)
class AnovaTable:
    """The likelihood-ratio table, how each comparison was classified, and why.

    ``table`` has lme4's columns; with ``boundary=True`` also ``test`` (the
    reference distribution of ``Pr(>Chisq)``), ``Pr(>Chisq) naive`` (lme4's
    χ²(Df) p-value), ``Pr(>Chisq) boundary`` (the χ̄² mixture, where it applies)
    and, with ``nsim > 0``, ``Pr(>Chisq) bootstrap``.
    """

    table: pd.DataFrame
    heading: tuple[str, ...]
    comparisons: tuple[Comparison, ...]
    notes: tuple[str, ...]
    models: tuple  # the fits compared, in table order (ML refits where refitted)
    refitted: bool
    seed: object = None

    def __str__(self) -> str:
        text = _format(self.table).to_string()
        stars = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"
        notes = [f"* {n}" for n in self.notes]
        return "\n".join([*self.heading, text, "---", stars, "", "Notes:", *notes]) + "\n"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        """The table for a notebook, narrow enough for the book's content column: headers wrap
        (``Pr(>Chisq)`` over ``naive``), model names and notes wrap."""
        head = "<br>".join(html.escape(h) for h in self.heading)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return f"<p>{head}</p>\n{html_table(_format(self.table), wrap=('test',))}\n<ul>{notes}</ul>"


def _decimals(x: float, digits: int) -> int:
    """Decimals R's ``format(x, digits)`` shows: ``digits`` significant, trailing zeros dropped."""
    if not np.isfinite(x) or x == 0:
        return 0
    exponent = int(np.floor(np.log10(abs(x))))
    full = float(f"{x:.{digits - 1}e}")
    sig = next(s for s in range(1, digits + 1) if float(f"{x:.{s - 1}e}") == full)
    return max(0, sig - 1 - exponent)


def _format_number(col: pd.Series, digits: int = 5, max_decimals: int = 4) -> pd.Series:
    finite = col[np.isfinite(col)]
    dec = min(max((_decimals(v, digits) for v in finite), default=0), max_decimals)
    return col.map(lambda v: "" if not np.isfinite(v) else f"{v:.{dec}f}")


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "< 2.2e-16" if p < 2.2e-16 else f"{p:.4g}"


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return next(s for cut, s in [(0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (2, " ")] if p <= cut)


def _format(table: pd.DataFrame) -> pd.DataFrame:
    """The table as R prints it: 5 significant digits, p-values to 4, stars."""
    out = pd.DataFrame(index=table.index)
    for name in table.columns:
        col = table[name]
        if name in ("npar", "Df"):
            out[name] = col.map(lambda v: "" if not np.isfinite(v) else f"{int(v)}")
        elif name.startswith("Pr("):
            out[name] = col.map(_format_p)
            if name == "Pr(>Chisq)":
                out[""] = col.map(_stars)
        elif name == "test":
            out[name] = col
        else:
            out[name] = _format_number(col)
    return out


# ------------------------------------------------------------------ entry


def _model_names(models, model_names) -> list[str]:
    if model_names is not None:
        names = [str(n) for n in model_names]
        if len(names) != len(models) or len(set(names)) != len(names):
            raise ValueError(f"model_names must give {len(models)} distinct names, got {names}")
        return names
    names = [_description(m) for m in models]
    return names if len(set(names)) == len(names) else [f"MODEL{i + 1}" for i in range(len(models))]


def _description(m) -> str:
    """The formula, and the error structure if there is one."""
    return m.formula if m.errors is None else f"{m.formula}, {m.errors.label}"


def _check_models(models) -> None:
    if len(models) < 2:
        raise ValueError("anova compares two or more nested models, e.g. anova(m0, m1)")
    for m in models:
        if not isinstance(m, FittedModel):  # the base of every fit: what anova asks a model
            raise TypeError(f"anova compares models fitted by lmelib.lmer, glmer, gls or lm, "
                            f"got {type(m).__name__}")


def _ml_fits(models, names, refit: bool) -> tuple[list, bool]:
    """REML fits refitted by ML (lme4's default); with refit=False, check comparability."""
    reml = [bool(m.reml) for m in models]
    if refit:
        return [m.refit(False) if r else m for m, r in zip(models, reml)], any(reml)
    if any(reml) and not all(reml):
        raise ValueError("with refit=False all models must be REML fits or all ML fits "
                         "(an lm's log-likelihood is ML); use refit=True")
    if any(reml):
        for m0, m1, n0, n1 in zip(models, models[1:], names, names[1:]):
            if m0.frame.X.shape != m1.frame.X.shape or not np.allclose(m0.frame.X, m1.frame.X):
                raise ValueError(f"REML criteria of models with different fixed effects are not "
                                 f"comparable ({n0!r} vs {n1!r}); use refit=True (ML)")
    return list(models), False


def _comparisons(models, names, boundary: bool, nsim: int, seed, progress: bool) -> list[Comparison]:
    pairs = list(zip(models, models[1:], names, names[1:]))
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(len(pairs))]
    out = []
    for (m0, m1, n0, n1), s in zip(pairs, seeds):
        c = classify(m0, m1, (n0, n1))
        if boundary and nsim > 0 and c.kind in ("other", "variance"):  # for a mixture: a check
            c = replace(c, bootstrap=_bootstrap_lrt(m0, m1, nsim, s, progress))
        out.append(c)
    return out


def _p_columns(table: pd.DataFrame, comps: list[Comparison], nsim: int) -> pd.DataFrame:
    """The reported p-value (per ``test``) and the naive, boundary and bootstrap ones."""
    naive = table["Pr(>Chisq)"].to_numpy()
    chisq = table["Chisq"].to_numpy()
    bnd, boot = np.full(len(table), np.nan), np.full(len(table), np.nan)
    for i, c in enumerate(comps, start=1):
        if c.kind == "variance":
            bnd[i] = chibar2_sf(chisq[i], c.k)
        if c.bootstrap is not None:
            boot[i] = _bootstrap_p(c.bootstrap, chisq[i])
    reported = np.where(np.isfinite(bnd), bnd, np.where(np.isfinite(boot), boot, naive))
    table = table.assign(**{"Pr(>Chisq)": reported})
    table["test"] = [""] + [_test_label(c) for c in comps]
    table["Pr(>Chisq) naive"] = naive
    table["Pr(>Chisq) boundary"] = bnd
    if nsim > 0:
        table["Pr(>Chisq) bootstrap"] = boot
    return table


def _lme4_table(models, names) -> pd.DataFrame:
    """lme4's columns: consecutive likelihood-ratio tests."""
    npar = np.array([m.npar for m in models], dtype=int)
    llk = np.array([m.loglik for m in models])
    chisq = np.r_[np.nan, 2 * np.maximum(0.0, np.diff(llk))]
    df = np.r_[np.nan, np.diff(npar)]
    p = [np.nan] + [_naive_p(x, int(d)) for x, d in zip(chisq[1:], df[1:])]
    return pd.DataFrame({
        "npar": npar, "AIC": [m.aic for m in models], "BIC": [m.bic for m in models],
        "logLik": llk, "deviance": -2 * llk, "Chisq": chisq, "Df": df, "Pr(>Chisq)": p,
    }, index=pd.Index(names, name=None))


def anova(*models, boundary: bool = True, nsim: int = 0, seed=None, refit: bool = True,
          model_names=None, progress: bool = True) -> AnovaTable:
    """Likelihood-ratio tests between nested models, as lme4's ``anova(m0, m1, ...)``.

    Models (``lmer`` or ``lm`` fits, any order) are sorted by number of
    parameters; REML fits are refitted by ML (``refit=True``, lme4's default).
    With ``boundary=True`` (default) each comparison is classified and, where
    a variance is tested on its boundary, the χ̄² mixture p-value is reported
    (see the module docstring); ``nsim > 0`` adds a parametric bootstrap, with
    ``seed``, for comparisons no mixture covers (``progress`` shows a bar for
    runs over a second).  ``boundary=False`` gives lme4's table alone.  Rows
    are named by formula or by ``model_names``.
    """
    _check_models(models)
    if not boundary and nsim:
        raise ValueError("nsim > 0 needs boundary=True: the bootstrap replaces the naive p-value "
                         "only for comparisons that the boundary classification flags")
    names = _model_names(models, model_names)
    order = sorted(range(len(models)), key=lambda i: models[i].npar)  # stable, as R's order()
    models, names = [models[i] for i in order], [names[i] for i in order]
    _check_same_data(models, names)
    for m0, m1, n0, n1 in zip(models, models[1:], names, names[1:]):
        _check_nested(m0, m1, (n0, n1))
    fits, refitted = _ml_fits(models, names, refit)
    seed = np.random.SeedSequence().entropy if seed is None and nsim > 0 else seed
    comps = _comparisons(fits, names, boundary, int(nsim), seed, progress)
    table = _lme4_table(fits, names)
    if boundary:
        table = _p_columns(table, comps, int(nsim))
    heading = [f"Data: {fits[0].nobs} observations of {fits[0].frame.formula.response}"]
    if names != [_description(m) for m in fits]:
        heading += ["Models:"] + [f"{n}: {_description(m)}" for n, m in zip(names, fits)]
    if refitted:
        heading.append(REFIT_MESSAGE)
    notes = _notes(comps, fits, table, boundary, int(nsim))
    return AnovaTable(table, tuple(heading), tuple(comps), notes, tuple(fits), refitted, seed)


def _notes(comps, fits, table: pd.DataFrame, boundary: bool, nsim: int) -> tuple[str, ...]:
    notes = [_explain(c, boundary, nsim) for c in comps]
    for c, chisq in zip(comps, table["Chisq"].iloc[1:]):
        if c.bootstrap is not None and _at_floor(c.bootstrap, chisq):
            notes.append(f"{c.smaller} vs {c.larger}: no simulated LRT reached the observed one, so "
                         "the bootstrap p-value is at its floor 1/(n + 1) and the p-value is "
                         "probably smaller; increase nsim to resolve it.")
    for c, small, large in zip(comps, fits, fits[1:]):
        if c.kind in ("fixed", "none"):
            continue
        if small.singular:
            notes.append(f"{c.smaller} is a singular fit (a variance estimated as 0 or a correlation "
                         "as ±1), so the χ² approximations for tests against it are rough; a "
                         "parametric bootstrap is safer.")
        if large.singular:
            notes.append(f"{c.larger} is a singular fit (a variance estimated as 0 or a correlation "
                         f"as ±1): the data do not support all of the covariance parameters it adds "
                         f"to {c.smaller}, so its variance estimates should not be read as they stand.")
    if boundary:
        notes.append("Pr(>Chisq) is the p-value of the 'test' column; lme4 prints the naive χ²(Df) "
                     "one, shown as 'Pr(>Chisq) naive'.")
    else:
        notes.append("boundary=False: naive χ²(Df) p-values, as lme4; tests of variances are "
                     "conservative.")
    return tuple(notes)
