"""From a formula and a DataFrame to the model's matrices: y, X and the Z terms.

This is lme4's ``lFormula`` step: it checks the input, removes incomplete rows
(and says how many), builds the fixed-effects matrix X with formulaic, drops
aliased columns as lme4 does, and builds for each random-effects term its
grouping factor and its ℓ columns of Z.  Z itself is never formed densely: a
term is stored as the level index of every row and an n × ℓ array of values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from formulaic import Formula, model_matrix

from .formula import ParsedFormula, RandomTerm, parse_formula

__all__ = ["ReTerm", "ModelFrame", "model_frame"]

RANK_TOL = 1e-7  # lme4's default tolerance in chkRank.drop.cols

# What a formula may call besides the data's columns and formulaic's own
# transforms (C, center, scale, poly, ...): R's usual maths functions.
CONTEXT = {"np": np, "log": np.log, "log10": np.log10, "log2": np.log2, "log1p": np.log1p,
           "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos,
           "tan": np.tan, "pi": np.pi}


@dataclass(frozen=True, eq=False)
class ReTerm:
    """A random-effects term: grouping factor, its levels and the term's Z columns."""

    term: RandomTerm
    columns: tuple[str, ...]
    levels: pd.Index
    codes: np.ndarray  # level index of each row, length n
    values: np.ndarray  # n × ℓ: the term's model matrix (intercept, slopes)
    spec: object = field(repr=False)  # formulaic ModelSpec of the left-hand side

    @property
    def name(self) -> str:
        return self.term.name

    @property
    def ell(self) -> int:
        return self.values.shape[1]

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        return self.n_levels * self.ell

    @cached_property
    def grouping_key(self) -> bytes:
        """The partition of the rows the grouping factor makes (levels relabelled in order of
        first appearance): ``state`` and ``state:region`` have the same key when state names
        are unique, and so have ``a:b`` and ``b:a`` (anova's nesting check)."""
        _, first, inverse = np.unique(self.codes, return_index=True, return_inverse=True)
        rank = np.argsort(np.argsort(first))
        return rank[inverse.ravel()].astype(np.int64).tobytes()

    def Z(self) -> sp.csc_array:
        """The n × q sparse block of Z, columns ordered level by level (lme4's order)."""
        n, ell = self.values.shape
        rows = np.repeat(np.arange(n), ell)
        cols = (self.codes[:, None] * ell + np.arange(ell)).ravel()
        return sp.csc_array((self.values.ravel(), (rows, cols)), shape=(n, self.q))


@dataclass(frozen=True, eq=False)
class ModelFrame:
    """Everything θ-independent that a fit needs, built once from formula and data."""

    formula: ParsedFormula
    data: pd.DataFrame  # the complete rows used in the fit
    y: np.ndarray
    X: np.ndarray
    x_names: tuple[str, ...]
    x_spec: object = field(repr=False)
    x_keep: tuple[int, ...] = ()  # columns of formulaic's X kept after dropping aliased ones
    terms: tuple[ReTerm, ...] = ()
    dropped_columns: tuple[str, ...] = ()
    n_dropped_rows: int = 0
    na_counts: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    def new_X(self, newdata: pd.DataFrame) -> np.ndarray:
        """X for new data: formulaic's encoding of the fit, aliased columns dropped."""
        X = np.asarray(self.x_spec.get_model_matrix(newdata, na_action="raise", context=CONTEXT), dtype=float)
        return X[:, list(self.x_keep)]

    @cached_property
    def cross_products(self):
        """The θ-independent cross-products of [Z X y] (deviance.CrossProducts, y centred on X),
        formed once per frame and shared by every fit of it (REML and ML)."""
        from .deviance import CrossProducts

        return CrossProducts.of(self, center_y=True)

    def fixed_outside(self, other) -> list[str]:
        """Names of this frame's X columns outside the column space of ``other``'s X."""
        X0, X1 = self.X, other.X
        if X0.shape[1] == 0:
            return []
        coef, *_ = scipy.linalg.lstsq(X1, X0)
        resid = np.linalg.norm(X0 - X1 @ coef, axis=0)
        scale = np.maximum(np.linalg.norm(X0, axis=0), 1e-300)
        return [n for n, bad in zip(self.x_names, resid > 1e-8 * scale) if bad]

    def same_response(self, other) -> bool:
        """Whether ``other`` was fitted to the same response values (anova's check)."""
        return self.n == other.n and bool(np.allclose(other.y, self.y, rtol=1e-10, atol=0.0))

    @cached_property
    def Z(self) -> sp.csc_array:
        """The full n × q random-effects matrix (sparse), terms in fitting order."""
        if not self.terms:
            return sp.csc_array((self.n, 0))
        return sp.hstack([t.Z() for t in self.terms], format="csc")


# ---------------------------------------------------------------- input checks


def _required_columns(parsed: ParsedFormula) -> list[str]:
    needed = list(Formula(parsed.fixed_formula).required_variables)
    for term in parsed.random:
        if not _intercept_only(term):
            needed += list(Formula(term.expr).required_variables)
        needed += list(term.factors)
    return list(dict.fromkeys(sorted(needed)))


def _check_columns(data: pd.DataFrame, needed: list[str], formula: str) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in needed if c not in data.columns and not _known_name(c)]
    if missing:
        raise KeyError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"named in the formula {formula!r} {'are' if len(missing) > 1 else 'is'} not in the data"
        )


def _known_name(name: str) -> bool:
    """Names a formula may use without the data: see CONTEXT."""
    return name in CONTEXT


def _complete_rows(data: pd.DataFrame, needed: list[str]) -> tuple[pd.DataFrame, int, dict]:
    """Drop rows with a missing value in any column the model uses; count them."""
    na = data[needed].isna()
    keep = ~na.any(axis=1).to_numpy()
    counts = {c: int(k) for c, k in na.sum().items() if k}
    dropped = int((~keep).sum())
    if dropped:
        detail = ", ".join(f"{c}: {k}" for c, k in counts.items())
        warnings.warn(
            f"{dropped} of {len(data)} rows dropped for missing values ({detail})",
            UserWarning,
            stacklevel=4,
        )
    return data.loc[keep].reset_index(drop=True), dropped, counts


def _r_name(name: str) -> str:
    return "(Intercept)" if name == "Intercept" else name


def _drop_aliased(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[int], list[str]]:
    """Drop columns of X that are linear combinations of earlier ones.

    As R's QR with limited pivoting (``qr(X, tol = 1e-7)``, which lme4 uses): a
    column is kept when what is left of it after projecting out the columns kept
    before it is more than RANK_TOL of its own norm.
    """
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        x = X[:, j]
        r = x - Q @ (Q.T @ x)
        r = r - Q @ (Q.T @ r)  # re-orthogonalise once
        norm = np.linalg.norm(r)
        if norm > RANK_TOL * max(np.linalg.norm(x), np.finfo(float).tiny):
            keep.append(j)
            Q = np.column_stack([Q, r / norm])
    dropped = [names[j] for j in range(X.shape[1]) if j not in keep]
    if dropped:
        k = len(dropped)
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {k} column"
            f"{'s' if k > 1 else ''} / coefficient{'s' if k > 1 else ''}: {', '.join(dropped)}",
            UserWarning,
            stacklevel=4,
        )
    return X[:, keep], keep, dropped


# ------------------------------------------------------------ fixed effects


def _check_response(data: pd.DataFrame, parsed: ParsedFormula) -> None:
    name = parsed.response
    if name in data.columns and not pd.api.types.is_numeric_dtype(data[name]):
        raise TypeError(
            f"response {name!r} must be numeric, but its column has dtype {data[name].dtype}"
        )
    if name in data.columns and pd.api.types.is_bool_dtype(data[name]):
        raise TypeError(f"response {name!r} is boolean; a linear mixed model needs a numeric response")


def _response(lhs: pd.DataFrame, parsed: ParsedFormula) -> np.ndarray:
    """y from the left-hand side of the fixed-part model matrix."""
    name = parsed.response
    if lhs.shape[1] != 1:
        raise TypeError(f"response {name!r} must be a single numeric column")
    return np.asarray(lhs, dtype=float).ravel()


# ----------------------------------------------------------- random effects


def _level_labels(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and sorted level labels of one grouping column (R's ``factor()``)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat.remove_unused_categories()
        return cat.cat.codes.to_numpy(), pd.Index(cat.cat.categories.astype(str))
    uniques = np.sort(col.unique())
    codes = np.searchsorted(uniques, col.to_numpy())
    return codes, pd.Index([str(u) for u in uniques])


def grouping_codes(data: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, pd.Index]:
    """Level index and labels of the (interaction of) grouping columns."""
    parts = [_level_labels(data[f]) for f in factors]
    if len(parts) == 1:
        return parts[0]
    codes = np.stack([c for c, _ in parts], axis=1)
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    labels = [":".join(parts[j][1][k] for j, k in enumerate(row)) for row in combos]
    return inverse.ravel(), pd.Index(labels)


def _check_grouping(name: str, levels: pd.Index, n: int, q: int, term: RandomTerm,
                    residual: bool = True) -> None:
    if len(levels) < 2:
        raise ValueError(
            f"grouping factor {name!r} has a single level ({levels[0]!r}); "
            "grouping factors must have more than one sampled level"
        )
    if not residual:  # a GLMM has no residual to confound: observation-level effects are allowed
        return
    if len(levels) >= n:
        raise ValueError(
            f"grouping factor {name!r} has {len(levels)} levels for {n} observations: "
            "the number of levels of each grouping factor must be less than the number "
            "of observations, or the random effect is confounded with the residual"
        )
    if q >= n:
        raise ValueError(
            f"number of observations ({n}) <= number of random effects ({q}) for term {term}; "
            "the random-effects parameters and the residual variance are probably unidentifiable"
        )


def _intercept_only(term: RandomTerm) -> bool:
    """A (1 | g) term: its model matrix is a column of ones, built without formulaic."""
    return term.expr.strip() == "1"


@lru_cache(maxsize=1)
def _intercept_spec():
    """The model spec of ``1``, which needs no data: (1 | g) terms skip formulaic's evaluation."""
    return model_matrix("1", pd.DataFrame(index=range(1)), context=CONTEXT).model_spec


def _random_term(term: RandomTerm, data: pd.DataFrame, residual: bool = True) -> ReTerm:
    if _intercept_only(term):
        columns, values, spec = ("(Intercept)",), np.ones((len(data), 1)), _intercept_spec()
    else:
        mm = model_matrix(term.expr, data, na_action="raise", context=CONTEXT)
        if mm.shape[1] == 0:
            raise ValueError(f"random-effects term {term} has no columns")
        columns, values, spec = tuple(_r_name(c) for c in mm.columns), np.asarray(mm, float), mm.model_spec
    codes, levels = grouping_codes(data, term.factors)
    re = ReTerm(
        term=term,
        columns=columns,
        levels=levels,
        codes=codes.astype(np.intp),
        values=values,
        spec=spec,
    )
    _check_grouping(term.name, levels, len(data), re.q, term, residual)
    return re


def _sort_terms(terms: list[ReTerm]) -> tuple[ReTerm, ...]:
    """Order terms by decreasing number of levels, as lme4's ``mkReTrms`` does."""
    n_levels = [t.n_levels for t in terms]
    if all(a >= b for a, b in zip(n_levels, n_levels[1:])):
        return tuple(terms)
    order = np.argsort([-k for k in n_levels], kind="stable")
    return tuple(terms[i] for i in order)


# ------------------------------------------------------------------ entry


def model_frame(formula: str, data: pd.DataFrame, *, require_random: bool = True,
                extra_columns: list[str] = (), residual: bool = True) -> ModelFrame:
    """Parse ``formula`` against ``data`` and build y, X and the random-effects terms.

    ``extra_columns`` (weights, offsets) are kept in ``frame.data`` and count
    for the removal of incomplete rows.  ``residual=False`` (GLMMs) allows as
    many random effects as observations, as lme4's glmer does.
    """
    parsed = parse_formula(formula)
    if require_random and not parsed.random:
        raise ValueError(
            f"formula {formula!r} has no random-effects term such as (1 | group); "
            "for a model without random effects use lmelib.lm"
        )
    needed = _required_columns(parsed) + list(extra_columns)
    _check_columns(data, needed, formula)
    needed = [c for c in needed if c in data.columns]
    data, n_dropped, na_counts = _complete_rows(data, needed)
    if len(data) == 0:
        raise ValueError("no complete rows left after removing rows with missing values")
    _check_response(data, parsed)
    mm = model_matrix(parsed.fixed_formula, data, na_action="raise", context=CONTEXT)
    y = _response(mm.lhs, parsed)
    names = [_r_name(c) for c in mm.rhs.columns]
    X, keep, dropped = _drop_aliased(np.asarray(mm.rhs, dtype=float), names)
    terms = _sort_terms([_random_term(t, data, residual) for t in parsed.random])
    return ModelFrame(
        formula=parsed,
        data=data,
        y=y,
        X=X,
        x_names=tuple(names[i] for i in keep),
        x_keep=tuple(keep),
        x_spec=mm.rhs.model_spec,
        terms=terms,
        dropped_columns=tuple(dropped),
        n_dropped_rows=n_dropped,
        na_counts=na_counts,
    )
