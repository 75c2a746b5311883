"""Linear mixed models on a Dask DataFrame: the cross-products, formed where the rows are.

Everything a linear mixed model needs from its rows is in A = [Z X y]ᵀ[Z X y]
(deviance.py): sums over rows.  ``lmer(formula, ddf)`` with a Dask DataFrame
therefore makes two or three passes over the data, each partition by partition,
the partial results reduced by Dask in a tree, and only small blocks travel:

1. the levels of every grouping factor and of every categorical column, and the
   number of complete rows (so that every partition encodes X and Z alike);
2. XᵀX and Xᵀy, for the aliased columns of X and β0, the least-squares fit of y
   on X (CrossProducts.of's ``center_y``: y − Xβ0 in place of y loses far fewer
   digits in r²θ); in the same pass as 1 when X needs no level learned from the
   data (numeric columns, or categoricals whose categories Dask knows);
3. the blocks of A for [Z X (y − Xβ0)]: A11 (one ℓ × ℓ block per level of the
   first term), A_R1 (sparse where it is large, e.g. the contingency table of
   two crossed factors) and A_RR, each by bincounts over the level codes (no
   sparse matrix products: a 1,000,000-row partition takes about half a second).

The optimisation then runs on the client through the same ProfiledDeviance as
an in-memory fit, and REML and ML fits (anova's refit, profiles) share these
blocks.  Read-outs that need rows (``fitted``, ``residuals``, ``predict``)
return lazy Dask Series; the summary's residual quantiles are Dask's
approximate quantiles.  What needs more than one pass per fit raises an error
that says so: residual error structures (a transform that mixes rows, θ-dependent),
glmer (PIRLS re-weights the rows at every step) and formulaic's stateful
transforms (center, scale, poly, splines: a global statistic before the model
matrix can be formed).

dask is imported inside the functions that use it, so that ``import lmelib``
works without dask installed.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass, field
from functools import reduce

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from formulaic import Formula, model_matrix

from .blocksums import dense_cross, gram, level_sums, sparse_cross
from .deviance import CrossProducts
from .design import (CONTEXT, RANK_TOL, _check_grouping, _intercept_only,
                     _intercept_spec, _required_columns, _sort_terms)
from .formula import ParsedFormula, RandomTerm, parse_formula
from .names import INTERCEPT, coef_names
from .lmm import LinearMixedModel
from .ranef import zb

__all__ = ["lmer_dask", "DaskModelFrame", "DaskLinearMixedModel", "LevelsTerm"]

SPLIT_EVERY = 8  # partial results combined per task in the tree reduction
STATEFUL = re.compile(r"\b(center|scale|standardize|poly|bs|cr|cs|cc|te|splines?|hashed)\s*\(")


def _rows_error(what: str) -> AttributeError:
    return AttributeError(
        f"{what} needs the rows in the client's memory, but this model was fitted out of core from "
        "a Dask DataFrame: the client holds only the cross-products of [Z X y].  Use fitted(), "
        "residuals() or predict() (lazy Dask Series), or fit the data as a pandas DataFrame "
        "(ddf.compute()) if they fit in memory.")


# ----------------------------------------------------------- the encoding


@dataclass(frozen=True, eq=False)
class LevelsTerm:
    """A random-effects term known by its levels and columns, without the rows' codes and values."""

    term: RandomTerm
    columns: tuple[str, ...]
    levels: pd.Index
    spec: object = field(repr=False)
    combos: pd.DataFrame = field(repr=False)  # the levels as rows of the grouping columns' values

    @property
    def name(self) -> str:
        return self.term.name

    @property
    def ell(self) -> int:
        return len(self.columns)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        return self.n_levels * self.ell

    @property
    def grouping_key(self) -> bytes:
        """Out of core a grouping factor is known by its columns (``a:b`` equals ``b:a``, but
        ``state:region`` is not recognised as ``state`` when state names are unique)."""
        return ":".join(sorted(self.term.factors)).encode()

    def codes_of(self, df: pd.DataFrame) -> np.ndarray:
        """Level index of each row of ``df`` (−1 for a level not seen in fitting)."""
        factors = list(self.term.factors)
        if len(factors) == 1:
            return pd.Index(self.combos[factors[0]]).get_indexer(df[factors[0]])
        return pd.MultiIndex.from_frame(self.combos).get_indexer(pd.MultiIndex.from_frame(df[factors]))

    def values_of(self, df: pd.DataFrame) -> np.ndarray:
        if _intercept_only(self.term):
            return np.ones((len(df), 1))
        return np.asarray(self.spec.get_model_matrix(df, na_action="raise", context=CONTEXT), float)

    @property
    def codes(self):
        raise _rows_error(f"the level codes of {self.term}")

    @property
    def values(self):
        raise _rows_error(f"the Z columns of {self.term}")


@dataclass(frozen=True, eq=False)
class Encoding:
    """What every partition needs to form the same y, X and Z: sent to the workers."""

    formula: ParsedFormula
    needed: tuple[str, ...]
    categories: dict  # column -> its global categories (categorical columns of X and Z's terms)
    spec: object  # formulaic's ModelSpecs of the fixed part (lhs: y, rhs: X)
    terms: tuple[LevelsTerm, ...]  # in fitting order (decreasing number of levels)
    x_keep: tuple[int, ...] | None = None  # X's columns kept after dropping aliased ones

    def categorize(self, df: pd.DataFrame) -> pd.DataFrame:
        """Categorical columns on the global categories (a value never seen becomes missing)."""
        cats = {c: pd.Categorical(df[c].where(df[c].isin(v)), categories=v)
                for c, v in self.categories.items() if c in df}
        return df.assign(**cats) if cats else df

    def complete(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows without a missing value in a column the model uses, categorized."""
        missing = df[list(self.needed)].isna().any(axis=1).to_numpy()
        return self.categorize(df.loc[~missing] if missing.any() else df)

    def y_X(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        mm = self.spec.get_model_matrix(df, na_action="raise", context=CONTEXT)
        return np.asarray(mm.lhs, float).ravel(), self._kept(np.asarray(mm.rhs, float))

    def x(self, df: pd.DataFrame) -> np.ndarray:
        """X alone (no response needed), aliased columns dropped."""
        if len(df) == 0:
            return np.zeros((0, len(self.x_keep or ())))
        return self._kept(np.asarray(self.spec.rhs.get_model_matrix(df, na_action="raise", context=CONTEXT), float))

    def _kept(self, X: np.ndarray) -> np.ndarray:
        return X if self.x_keep is None else X[:, list(self.x_keep)]

    def groups(self, df: pd.DataFrame, beta0: np.ndarray | None) -> list[tuple]:
        """One partition's columns of [Z X y] as groups (level codes, values, number of levels):
        one per random-effects term, then [X (y − Xβ0)] as a group of a single level."""
        y, X = self.y_X(df)
        if beta0 is not None:
            y = y - X @ beta0
        Xy = np.column_stack([X, y])
        terms = [(t.codes_of(df), t.values_of(df), t.n_levels) for t in self.terms]
        return terms + [(np.zeros(len(df), dtype=np.intp), Xy, 1)]


# ------------------------------------------------ pass 1: levels and counts


def _levels_partition(df: pd.DataFrame, needed: list[str], groups: list[tuple[str, ...]],
                      categorical: list[str], fixed: Encoding | None) -> dict:
    """One partition's distinct values of each grouping factor and categorical column, and counts;
    with ``fixed`` (X's encoding, when it needs no level learned here) also pass 2's sums."""
    na = df[needed].isna()
    df = df.loc[~na.any(axis=1).to_numpy()]
    return {"n": len(df), "na": na.sum().to_dict(), "dropped": int(na.any(axis=1).sum()),
            "groups": {g: df[list(g)].drop_duplicates() for g in groups},
            "categorical": {c: df[c].drop_duplicates() for c in categorical},
            "normal": _normal_equations(df, fixed) if fixed is not None else None}


def _levels_combine(*parts: dict) -> dict:
    first = parts[0]
    return {"n": sum(p["n"] for p in parts), "normal": _sum(*(p["normal"] for p in parts)),
            "na": {c: sum(p["na"][c] for p in parts) for c in first["na"]},
            "dropped": sum(p["dropped"] for p in parts),
            "groups": {g: pd.concat([p["groups"][g] for p in parts]).drop_duplicates() for g in first["groups"]},
            "categorical": {c: pd.concat([p["categorical"][c] for p in parts]).drop_duplicates()
                            for c in first["categorical"]}}


def _tree_reduce(parts: list, combine):
    """Dask delayed objects combined SPLIT_EVERY at a time until one is left."""
    import dask  # lazily: lmelib works without dask

    while len(parts) > 1:
        parts = [dask.delayed(combine)(*parts[i : i + SPLIT_EVERY]) for i in range(0, len(parts), SPLIT_EVERY)]
    return parts[0]


def _map_reduce(ddf, func, combine, *args):
    """func(partition, *args) on every partition, reduced by ``combine``, computed by Dask."""
    import dask  # lazily: lmelib works without dask

    parts = [dask.delayed(func)(p, *args) for p in ddf.to_delayed()]
    return dask.compute(_tree_reduce(parts, combine))[0]


def _sorted_levels(values: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """Distinct rows in R's factor order: by category order for categoricals, else sorted."""
    values = values.copy()
    for c in values.columns:
        cats = _known_categories(meta[c])
        if cats is not None:
            values[c] = pd.Categorical(values[c], categories=cats)
    return values.sort_values(list(values.columns)).reset_index(drop=True)


def _known_categories(meta_column: pd.Series) -> pd.Index | None:
    """A categorical column's categories when Dask knows them (R's factor levels), else None."""
    from dask.dataframe.utils import has_known_categories  # lazily: lmelib works without dask

    if isinstance(meta_column.dtype, pd.CategoricalDtype) and has_known_categories(meta_column):
        return meta_column.cat.categories
    return None


def _labels(combos: pd.DataFrame) -> pd.Index:
    cols = [combos[c].astype(object).map(str) for c in combos.columns]
    return pd.Index([":".join(parts) for parts in zip(*cols)])


# ------------------------------------------------------- pass 2 and 3


def _normal_equations(df: pd.DataFrame, enc: Encoding) -> tuple[np.ndarray, np.ndarray] | None:
    df = enc.complete(df)
    if len(df) == 0:
        return None
    y, X = enc.y_X(df)
    return X.T @ X, X.T @ y, np.array([y.sum(), y @ y])


def _blocks(df: pd.DataFrame, enc: Encoding, beta0: np.ndarray | None) -> tuple | None:
    """One partition's blocks of [Z X (y − Xβ0)] in CrossProducts' layout (global levels):
    A11, A_RR, the dense rows [X y]ᵀZ1 of A_R1, then its sparse rows Z_kᵀZ1, one per other term."""
    df = enc.complete(df)
    if len(df) == 0:
        return None
    groups = enc.groups(df, beta0)
    first, rest = groups[0], groups[1:]  # rest: the other terms, then [X y]
    codes1, v1, m1 = first
    A11 = level_sums(codes1, v1, v1, m1)
    XyZ1 = dense_cross(rest[-1], first)
    return (A11, gram(rest), XyZ1, *(sparse_cross(g, first) for g in rest[:-1]))


def _sum(*parts):
    """Element-wise sum of tuples of arrays (dense or sparse), skipping empty partitions."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return tuple(reduce(lambda a, b: a + b, blocks) for blocks in zip(*parts))


def _drop_aliased_gram(G: np.ndarray, names: list[str]) -> list[int]:
    """design._drop_aliased from XᵀX: a column is kept when its residual on the columns kept
    before it has norm above RANK_TOL of its own norm (r² = G_jj − G_jK G_KK⁻¹ G_Kj)."""
    keep: list[int] = []
    for j in range(len(G)):
        r2 = G[j, j]
        if keep:
            r2 -= G[j, keep] @ scipy.linalg.solve(G[np.ix_(keep, keep)], G[keep, j], assume_a="pos")
        if r2 > RANK_TOL**2 * max(G[j, j], np.finfo(float).tiny):
            keep.append(j)
    dropped = [names[j] for j in range(len(G)) if j not in keep]
    if dropped:
        k = len(dropped)
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {k} column"
            f"{'s' if k > 1 else ''} / coefficient{'s' if k > 1 else ''}: {', '.join(dropped)}",
            UserWarning, stacklevel=4)
    return keep


# ------------------------------------------------------------ the frame


@dataclass(frozen=True, eq=False)
class DaskModelFrame:
    """A ModelFrame without rows: levels, encoding, n and the reduced cross-products."""

    formula: ParsedFormula
    data: object  # the lazy Dask DataFrame of the complete rows, categorical columns encoded
    encoding: Encoding = field(repr=False)
    x_names: tuple[str, ...]
    terms: tuple[LevelsTerm, ...]
    n: int
    cross_products: CrossProducts = field(repr=False)
    response_sums: tuple[float, float]  # Σy and Σy²: anova checks that its fits share the response
    dropped_columns: tuple[str, ...] = ()
    n_dropped_rows: int = 0
    na_counts: dict = field(default_factory=dict)

    @property
    def p(self) -> int:
        return len(self.x_names)

    @property
    def x_spec(self):
        return self.encoding.spec.rhs

    @property
    def x_keep(self) -> tuple[int, ...]:
        return self.encoding.x_keep

    def new_X(self, newdata: pd.DataFrame) -> np.ndarray:
        return self.encoding.x(self.encoding.categorize(newdata))

    @property
    def X(self):
        raise _rows_error("X (e.g. Kenward-Roger degrees of freedom)")

    @property
    def y(self):
        raise _rows_error("y (e.g. simulate, bootstrap or a parametric-bootstrap anova)")

    @property
    def Z(self):
        raise _rows_error("Z")

    @property
    def response(self):
        raise _rows_error("the response (e.g. simulate, bootstrap or a parametric-bootstrap anova)")

    offset = None  # offset() terms raise out of core (see _check_formula)
    eta_offset = 0.0

    def fixed_outside(self, other) -> list[str]:
        """X columns not among ``other``'s (by name: out of core X's column space is not at hand)."""
        return [c for c in self.x_names if c not in other.x_names]

    def same_response(self, other) -> bool:
        a, b = np.array(self.response_sums), np.array(getattr(other, "response_sums", (np.nan, np.nan)))
        return self.n == other.n and bool(np.allclose(a, b, rtol=1e-10, atol=0.0))


def _check_formula(parsed: ParsedFormula, formula: str) -> None:
    if not parsed.random:
        raise ValueError(f"formula {formula!r} has no random-effects term such as (1 | group)")
    if parsed.cbind is not None:
        raise ValueError(f"the response {parsed.response} in {formula!r} is a binomial response "
                         "(successes, failures): fit it with lmelib.glmer")
    if parsed.offsets:
        raise NotImplementedError(
            f"offset() terms in {formula!r} are not available out of core yet; subtract the offset "
            "from the response first, e.g. ddf.assign(y_off=ddf.y - ddf.o), and fit y_off.")
    m = STATEFUL.search(formula)
    if m:
        raise NotImplementedError(
            f"{m.group(1)}() in {formula!r} is a stateful transform: it needs a global statistic "
            "(a mean, a scale, orthogonal polynomial coefficients) before any partition can form "
            "its rows of X, which one pass cannot give.  Compute the statistic first and write the "
            "transformed column explicitly, e.g. ddf.assign(x_c=ddf.x - ddf.x.mean().compute()), "
            "then use x_c in the formula.")


def _check_columns(ddf, needed: list[str], parsed: ParsedFormula, formula: str) -> None:
    missing = [c for c in needed if c not in ddf.columns and c not in CONTEXT]
    if missing:
        raise KeyError(f"column(s) {', '.join(map(repr, missing))} named in the formula {formula!r} "
                       "are not in the Dask DataFrame")
    name = parsed.response
    if name in ddf.columns and (not pd.api.types.is_numeric_dtype(ddf[name].dtype)
                                or pd.api.types.is_bool_dtype(ddf[name].dtype)):
        raise TypeError(f"response {name!r} must be numeric, but its column has dtype {ddf[name].dtype}")


def _categorical_columns(meta: pd.DataFrame, parsed: ParsedFormula) -> list[str]:
    """Non-numeric columns that X or a term's Z columns use (grouping factors are coded apart)."""
    used = set(Formula(parsed.fixed_formula).required_variables)
    for t in parsed.random:
        used |= set() if _intercept_only(t) else set(Formula(t.expr).required_variables)
    return [c for c in sorted(used) if c in meta.columns and not (
        pd.api.types.is_numeric_dtype(meta[c].dtype) and not pd.api.types.is_bool_dtype(meta[c].dtype))]


def _levels_pass(ddf, parsed: ParsedFormula, needed: list[str], categorical: list[str],
                 fixed: Encoding | None) -> dict:
    groups = list(dict.fromkeys(t.factors for t in parsed.random))
    lv = _map_reduce(ddf, _levels_partition, _levels_combine, needed, groups, categorical, fixed)
    if lv["dropped"]:
        detail = ", ".join(f"{c}: {k}" for c, k in lv["na"].items() if k)
        warnings.warn(f"{lv['dropped']} of {lv['n'] + lv['dropped']} rows dropped for missing values "
                      f"({detail})", UserWarning, stacklevel=3)
    if lv["n"] == 0:
        raise ValueError("no complete rows left after removing rows with missing values")
    return lv


def _categories(lv: dict, categorical: list[str], meta: pd.DataFrame) -> dict:
    out = {}
    for c in categorical:
        cats = _known_categories(meta[c])
        if cats is not None:
            out[c] = cats
        else:
            out[c] = pd.Index(np.sort(pd.unique(lv["categorical"][c].astype(object).to_numpy())))
    return out


def _fixed_encoding(ddf, parsed: ParsedFormula, needed: list[str], categories: dict) -> Encoding:
    """y and X's encoding (formulaic's specs from a few complete rows, categorical columns on
    the global levels), without the random-effects terms."""
    proto = _prototype(ddf, needed, categories)
    spec = model_matrix(parsed.fixed_formula, proto, na_action="raise", context=CONTEXT).model_spec
    return Encoding(parsed, tuple(needed), categories, spec, ())


def _prototype(ddf, needed: list[str], categories: dict) -> pd.DataFrame:
    proto = ddf[needed].dropna().head(50, npartitions=-1)
    return proto.assign(**{c: pd.Categorical(proto[c], categories=cats) for c, cats in categories.items()})


def _encoding(ddf, fixed: Encoding, lv: dict) -> Encoding:
    """The random-effects terms on the levels of pass 1, added to the fixed part's encoding."""
    parsed, proto = fixed.formula, _prototype(ddf, list(fixed.needed), fixed.categories)
    terms = []
    for term in parsed.random:
        if _intercept_only(term):
            columns, tspec = (INTERCEPT,), _intercept_spec()
        else:
            mm = model_matrix(term.expr, proto, na_action="raise", context=CONTEXT)
            columns, tspec = tuple(coef_names(mm.model_spec, proto)), mm.model_spec
        combos = _sorted_levels(lv["groups"][term.factors], ddf._meta)
        terms.append(LevelsTerm(term, columns, _labels(combos), tspec, combos))
    return dataclasses.replace(fixed, terms=_sort_terms(terms))


def lmer_dask(formula: str, ddf, reml: bool = True, correlation=None, weights=None,
              na_action: str = "omit") -> "DaskLinearMixedModel":
    """``lmelib.lmer(formula, ddf)`` for a Dask DataFrame: two or three passes, then the usual fit."""
    if na_action != "omit":
        raise NotImplementedError(
            f"na_action={na_action!r} is not available out of core: fitted() and residuals() are lazy "
            "Dask Series over the complete rows (na_action='omit'); align them with the data by index.")
    if correlation is not None or weights is not None:
        raise NotImplementedError(
            "correlation= and weights= (residual error structures) cannot be fitted out of core: the "
            "whitening transform depends on the structure's parameters, so every evaluation of the "
            "objective would need a new pass over the rows.  Fit without them, or fit a pandas "
            "DataFrame (ddf.compute(), or a subset) with lmelib.lmer.")
    parsed = parse_formula(formula)
    _check_formula(parsed, formula)
    needed = [c for c in _required_columns(parsed) if c not in CONTEXT or c in ddf.columns]
    _check_columns(ddf, needed, parsed, formula)
    categorical = _categorical_columns(ddf._meta, parsed)
    known = {c: _known_categories(ddf._meta[c]) for c in categorical}
    early = None  # X's encoding before pass 1 when no column needs levels learned: passes 1 and 2 in one
    if all(cats is not None for cats in known.values()):
        early = _fixed_encoding(ddf, parsed, needed, known)
    lv = _levels_pass(ddf, parsed, needed, [c for c, cats in known.items() if cats is None], early)
    fixed = early or _fixed_encoding(ddf, parsed, needed, _categories(lv, categorical, ddf._meta))
    enc = _encoding(ddf, fixed, lv)
    for t in enc.terms:
        _check_grouping(t.name, t.levels, lv["n"], t.q, t.term)
    XtX, Xty, sums = lv["normal"] if early else _map_reduce(ddf, _normal_equations, _sum, enc)
    _check_varying(sums, lv["n"], parsed)
    names = coef_names(enc.spec.rhs, ddf._meta)
    keep = _drop_aliased_gram(XtX, names)
    enc = Encoding(enc.formula, enc.needed, enc.categories, enc.spec, enc.terms, tuple(keep))
    beta0 = scipy.linalg.solve(XtX[np.ix_(keep, keep)], Xty[keep], assume_a="pos") if keep else None
    A11, ARR, XyZ1, *contingency = _map_reduce(ddf, _blocks, _sum, enc, beta0)
    AR1 = sp.vstack([*contingency, sp.csr_array(XyZ1)], format="csr") if contingency else XyZ1
    return DaskLinearMixedModel.fit(_frame(ddf, enc, lv, names, sums, (A11, AR1, ARR), beta0), reml=reml)


def _check_varying(sums, n: int, parsed: ParsedFormula) -> None:
    """design.check_varying_response from Σy and Σy²: a constant response is a clear error."""
    if n * sums[1] - sums[0] ** 2 <= 1e-14 * n * sums[1]:
        raise ValueError(
            f"response {parsed.response!r} is constant in all {n} rows: a linear mixed model needs a "
            "varying response to estimate the residual variance")


def _frame(ddf, enc: Encoding, lv: dict, names: list[str], sums, blocks, beta0) -> DaskModelFrame:
    keep = enc.x_keep
    frame = DaskModelFrame(
        formula=enc.formula, data=ddf.map_partitions(enc.complete), encoding=enc,
        x_names=tuple(names[i] for i in keep), terms=enc.terms, n=lv["n"], cross_products=None,
        response_sums=(float(sums[0]), float(sums[1])),
        dropped_columns=tuple(n for i, n in enumerate(names) if i not in keep),
        n_dropped_rows=lv["dropped"], na_counts={c: k for c, k in lv["na"].items() if k})
    return dataclasses.replace(frame, cross_products=CrossProducts._blocked(frame, True, *blocks, beta0))


# ------------------------------------------------------- the fitted model


def _eta_partition(df: pd.DataFrame, enc: Encoding, beta: np.ndarray, b: list | None) -> pd.Series:
    """Xβ (+ Zb when ``b`` is given) for the rows of one partition; −1 codes (new levels) add 0."""
    X = enc.x(df)
    eta = X @ beta
    if b is not None and len(df):
        eta = eta + zb(b, [(t.codes_of(df), t.values_of(df)) for t in enc.terms])
    return pd.Series(eta, index=df.index, name="fitted", dtype=float)


def _residual_partition(df: pd.DataFrame, enc: Encoding, beta: np.ndarray, b: list | None,
                        scale: float) -> pd.Series:
    y = enc.y_X(df)[0] if len(df) else np.zeros(0)
    r = (y - _eta_partition(df, enc, beta, b).to_numpy()) / scale
    return pd.Series(r, index=df.index, name="residuals", dtype=float)


@dataclass(frozen=True, eq=False)
class DaskLinearMixedModel(LinearMixedModel):
    """A linear mixed model fitted out of core: the same fit, row-wise read-outs lazy in Dask."""

    def _eta(self, ddf, conditional: bool, name: str):
        b = self._b if conditional else None
        return ddf.map_partitions(_eta_partition, self.frame.encoding, self.solution.beta, b,
                                  meta=pd.Series(dtype=float, name=name)).rename(name)

    def fitted(self, conditional: bool = True):
        """Xβ̂ + Zb̂ (or Xβ̂), as a lazy Dask Series over the complete rows."""
        return self._eta(self.frame.data, conditional, "fitted")

    def residuals(self, conditional: bool = True, scaled: bool = False, type: str = "response"):
        """y − fitted as a lazy Dask Series; ``scaled`` (or type "pearson"/"normalized", which
        without an error structure are the same) divides by σ̂."""
        if type not in ("response", "pearson", "normalized"):
            raise ValueError(f"residual type {type!r}: use 'response', 'pearson' or 'normalized'")
        scale = self.sigma if scaled or type != "response" else 1.0
        b = self._b if conditional else None
        return self.frame.data.map_partitions(
            _residual_partition, self.frame.encoding, self.solution.beta, b, scale,
            meta=pd.Series(dtype=float, name="residuals"))

    def predict(self, newdata=None, re: bool = True):
        """Predictions: a lazy Dask Series for a Dask DataFrame (or the fitted values), a
        pandas Series for a pandas DataFrame; unseen levels get the population value."""
        if newdata is None:
            return self.fitted(conditional=re)
        if isinstance(newdata, pd.DataFrame):
            out = _eta_partition(self.frame.encoding.categorize(newdata), self.frame.encoding,
                                 self.solution.beta, self._b if re else None)
            return out.rename("predicted")
        return self._eta(newdata.map_partitions(self.frame.encoding.categorize), re, "predicted")

    def scaled_residual_quantiles(self) -> tuple[str, np.ndarray]:
        """Min and Max exact, quartiles from Dask's approximate quantiles (no collect of rows)."""
        import dask  # lazily: lmelib works without dask

        r = self.residuals(scaled=True)
        lo, q, hi = dask.compute(r.min(), r.quantile([0.25, 0.5, 0.75]), r.max())
        return "Scaled residuals (quartiles approximate)", np.concatenate([[lo], np.asarray(q), [hi]])

    def __repr__(self) -> str:
        return super().__repr__().replace("<LinearMixedModel", "<LinearMixedModel (Dask)", 1)
