"""From a formula and a DataFrame to the model's matrices: y, X and the Z terms.

This is lme4's ``lFormula`` step: it checks the input, removes incomplete rows
(and says how many), builds the fixed-effects matrix X with formulaic, drops
aliased columns as lme4 does, and builds for each random-effects term its
grouping factor and its ℓ columns of Z.  Z itself is never formed densely: a
term is stored as the level index of every row and an n × ℓ array of values.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from formulaic import Formula, model_matrix
from formulaic.transforms.contrasts import C

from .deviance import CrossProducts
from .formula import ParsedFormula, RandomTerm, parse_formula
from .names import INTERCEPT, coef_names
from .newdata import encode_newdata, match_levels

__all__ = ["ReTerm", "ModelFrame", "model_frame", "check_columns", "check_varying_response", "offset_values"]

RANK_TOL = 1e-7  # lme4's default tolerance in chkRank.drop.cols

# What a formula may call besides the data's columns and formulaic's own
# transforms (C, center, scale, poly, ...): R's usual maths functions, R's
# factor(x) (formulaic's C(x)), ifelse, pmin, pmax, and TRUE / FALSE.
CONTEXT = {"np": np, "log": np.log, "log10": np.log10, "log2": np.log2, "log1p": np.log1p,
           "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos,
           "tan": np.tan, "pi": np.pi, "factor": C, "ifelse": np.where, "pmin": np.minimum,
           "pmax": np.maximum, "TRUE": True, "FALSE": False}

NA_ACTIONS = ("omit", "exclude")  # R's na.omit (the default) and na.exclude


@dataclass(frozen=True, eq=False)
class ReTerm:
    """A random-effects term: grouping factor, its levels and the term's Z columns."""

    term: RandomTerm
    columns: tuple[str, ...]
    levels: pd.Index
    codes: np.ndarray  # level index of each row, length n
    values: np.ndarray  # n × ℓ: the term's model matrix (intercept, slopes)
    spec: object = field(repr=False)  # formulaic ModelSpec of the left-hand side
    factor_levels: tuple = ()  # each grouping column's levels, as the data typed them
    combos: np.ndarray | None = None  # for a:b, each level's codes in factor_levels

    def new_codes(self, newdata: pd.DataFrame) -> np.ndarray:
        """Level index of each row of new data, matched by value; −1 for a level not seen in fitting.

        A missing grouping value also gets −1 (the population prediction), with a warning.
        """
        codes = np.stack([match_levels(newdata[f], lv) for f, lv in zip(self.term.factors, self.factor_levels)],
                         axis=1)
        missing = newdata[list(self.term.factors)].isna().any(axis=1).to_numpy()
        if missing.any():
            warnings.warn(f"{int(missing.sum())} row(s) of newdata have no value of grouping factor "
                          f"{self.name!r}: they get the population prediction for this term",
                          UserWarning, stacklevel=4)
        if self.combos is None:
            return codes[:, 0]
        lookup = {tuple(row): k for k, row in enumerate(self.combos)}
        return np.array([lookup.get(tuple(row), -1) for row in codes], dtype=np.intp)

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
    y: np.ndarray  # what Xβ + Zb explains: the response minus the offset (a GLMM: the response)
    X: np.ndarray
    x_names: tuple[str, ...]
    x_spec: object = field(repr=False)
    x_keep: tuple[int, ...] = ()  # columns of formulaic's X kept after dropping aliased ones
    terms: tuple[ReTerm, ...] = ()
    dropped_columns: tuple[str, ...] = ()
    n_dropped_rows: int = 0
    na_counts: dict = field(default_factory=dict)
    full_index: pd.Index | None = None  # the row labels of the data as given
    used: np.ndarray | None = None  # which of those rows the fit used (complete rows)
    na_action: str = "omit"
    offset: np.ndarray | None = None  # the sum of the offset() terms and of offset=, if any
    weights: np.ndarray | None = None  # prior weights given with weights= (a GLMM's), if any
    trials: np.ndarray | None = None  # successes + failures of a cbind() response, if any
    residual: bool = True  # False for a GLMM: y is the response as observed, the offset enters η

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def prior_weights(self) -> np.ndarray:
        """A GLMM's prior weights: weights= times the trials of a cbind() response (R's glm), or ones."""
        if self.trials is None:
            return np.ones(self.n) if self.weights is None else self.weights
        return self.trials if self.weights is None else self.weights * self.trials

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def response(self) -> np.ndarray:
        """The response as in the data (y plus the offset of a linear model)."""
        return self.y if self.offset is None or not self.residual else self.y + self.offset

    @property
    def eta_offset(self) -> np.ndarray | float:
        """What the offset adds to Xβ + Zb: its values, or 0 without offset() terms."""
        return 0.0 if self.offset is None else self.offset

    def new_offset(self, newdata: pd.DataFrame) -> np.ndarray | float:
        """The formula's offset() terms evaluated on new data (0 without any)."""
        return offset_values(self.formula, newdata) if self.formula.offsets else 0.0

    @property
    def index(self) -> pd.Index:
        """Row labels of the rows used in the fit, as in the data given."""
        if self.full_index is None:
            return pd.RangeIndex(self.n)
        return self.full_index[self.used]

    def by_row(self, values, name: str) -> pd.Series:
        """Per-row values as a Series on the data's row labels.

        With ``na_action="omit"`` (R's na.omit, the default) only the rows used;
        with ``"exclude"`` (R's na.exclude) every row of the data, NaN where a
        row was dropped for missing values.
        """
        values = np.asarray(values)
        if self.na_action != "exclude" or self.full_index is None:
            return pd.Series(values, index=self.index, name=name)
        out = np.full(len(self.full_index), np.nan)
        out[self.used] = values
        return pd.Series(out, index=self.full_index, name=name)

    def new_X(self, newdata: pd.DataFrame) -> np.ndarray:
        """X for new data: formulaic's encoding of the fit, aliased columns dropped.

        Categorical columns are encoded with the fitted levels whatever newdata's
        dtype (int, str, a category in another order); a level the fit never
        saw is an error naming the column and the level.
        """
        newdata = encode_newdata(self.x_spec, newdata)
        X = np.asarray(self.x_spec.get_model_matrix(newdata, na_action="raise", context=CONTEXT), dtype=float)
        return X[:, list(self.x_keep)]

    @cached_property
    def cross_products(self):
        """The θ-independent cross-products of [Z X y] (deviance.CrossProducts, y centred on X),
        formed once per frame and shared by every fit of it (REML and ML)."""
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
        return self.n == other.n and bool(np.allclose(other.response, self.response, rtol=1e-10, atol=0.0))

    @cached_property
    def Z(self) -> sp.csc_array:
        """The full n × q random-effects matrix (sparse), terms in fitting order."""
        if not self.terms:
            return sp.csc_array((self.n, 0))
        return sp.hstack([t.Z() for t in self.terms], format="csc")


# ---------------------------------------------------------------- input checks


def _required_columns(parsed: ParsedFormula) -> list[str]:
    needed = _variables(parsed.fixed_formula if parsed.cbind is None else parsed.fixed, parsed)
    for expr in parsed.cbind or ():
        needed += _variables(f"0 + I({expr})", parsed)
    for term in parsed.random:
        if not _intercept_only(term):
            needed += _variables(term.expr, parsed)
        needed += list(term.factors)
    for expr in parsed.offsets:
        needed += _variables(f"0 + I({expr})", parsed)
    return list(dict.fromkeys(sorted(needed)))


def _variables(part: str, parsed: ParsedFormula) -> list[str]:
    """The names a formula part uses, or a ValueError naming the part formulaic cannot read."""
    try:
        return list(_formula_variables(part))
    except Exception as e:  # formulaic's parser: SyntaxError, FormulaParsingError, ...
        raise ValueError(f"cannot read {part!r} of the formula {parsed.text!r}: {e}") from None


@lru_cache(maxsize=512)
def _formula_variables(part: str) -> tuple[str, ...]:
    """formulaic's parse of a formula part, kept: a small fit spent a fifth of its time here."""
    return tuple(Formula(part).required_variables)


def _check_functions(parsed: ParsedFormula, data: pd.DataFrame, needed: list[str]) -> None:
    """A name called as a function that is neither in the data nor known: say it is a function."""
    unknown = [name for name in needed if name not in data.columns and not _known_name(name)
               and re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", parsed.text)]
    if unknown:
        raise ValueError(
            f"function{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in the formula "
            f"{parsed.text!r} {'are' if len(unknown) > 1 else 'is'} not available: lmelib knows "
            f"{', '.join(sorted(k for k in CONTEXT if k not in ('np', 'pi', 'TRUE', 'FALSE')))} "
            "and formulaic's transforms (C, I, poly, scale, center, ...)"
        )


def check_columns(data: pd.DataFrame, needed, where: str) -> None:
    """A KeyError naming every column in ``needed`` that ``data`` lacks, and where it was named.

    ``where`` completes "named in ...": ``"the formula 'y ~ x'"``, ``"weights="``.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in needed if c not in data.columns and not _known_name(c)]
    if missing:
        raise KeyError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"named in {where} {'are' if len(missing) > 1 else 'is'} not in the data"
        )
    duplicated = sorted({c for c in needed if list(data.columns).count(c) > 1}, key=str)
    if duplicated:
        raise ValueError(f"the data have more than one column named {', '.join(map(repr, duplicated))}; "
                         "rename them so that each name the model uses is unique")


def _known_name(name: str) -> bool:
    """Names a formula may use without the data: see CONTEXT."""
    return name in CONTEXT


def _complete_rows(data: pd.DataFrame, needed: list[str],
                   arrays: dict | None = None) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Drop rows with a missing value in any column the model uses; count them.

    ``arrays`` are further values by row that the model uses (weights= and
    offset= given as values), each under the name the count reports.
    Returns the complete rows (renumbered 0..n−1), which rows of ``data`` they
    are, and the number of missing values by column.
    """
    na = {c: pd.isna(data[c].to_numpy()) for c in needed}
    na.update({name: np.isnan(v) for name, v in (arrays or {}).items() if name not in na})
    keep = np.ones(len(data), dtype=bool)
    for missing in na.values():
        keep &= ~missing
    counts = {c: int(k.sum()) for c, k in na.items() if k.any()}
    dropped = int((~keep).sum())
    if not dropped:
        return data.reset_index(drop=True), keep, counts
    if dropped:
        detail = ", ".join(f"{c}: {k}" for c, k in counts.items())
        warnings.warn(
            f"{dropped} of {len(data)} rows dropped for missing values ({detail})",
            UserWarning,
            stacklevel=4,
        )
    return data.loc[keep].reset_index(drop=True), keep, counts


def _check_finite(values: np.ndarray, names, what: str) -> None:
    """An error naming each column of ``values`` with NaN or ±inf, and in how many rows.

    The rows with missing values in the data are gone by now: what is left was
    made by a transformation (``log(0)``, an overflow) or is ±inf in the data.
    R stops here too (``NA/NaN/Inf in 'x'``) rather than drop the rows.
    """
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    n = values.shape[0]
    detail = "; ".join(f"{name!r} in {int(k)} of {n} rows" for name, k in zip(names, bad.sum(axis=0)) if k)
    raise ValueError(f"NaN or ±inf in the {what}: {detail} (R: NA/NaN/Inf in 'x'). Missing values in "
                     "the data are dropped, values that are infinite or that a transformation makes "
                     "NaN or infinite are not: remove those rows or change the transformation")


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
    """y from the left-hand side of the fixed-part model matrix; ±inf or NaN made by a transformation is an error."""
    name = parsed.response
    if lhs.shape[1] != 1:
        raise TypeError(f"response {name!r} must be a single numeric column")
    y = np.asarray(lhs, dtype=float).ravel()
    _check_finite(y[:, None], [name], "response")
    return y


def check_varying_response(frame: "ModelFrame") -> None:
    """A constant response leaves nothing to estimate σ from: a clear error, not a failed factorisation."""
    y = frame.y
    if len(y) and np.all(y == y[0]):
        raise ValueError(
            f"response {frame.formula.response!r} is constant ({y[0]:g} in all {len(y)} rows): "
            "a linear (mixed) model needs a varying response to estimate the residual variance "
            "(lme4 stops with convergence warnings and σ ≈ 0)"
        )


# ----------------------------------------------------------- random effects


def _level_values(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and sorted levels of one grouping column, typed as in the data (R's ``factor()``).

    A column that mixes numbers and strings is taken as labels (its values as text), as R does.
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat.remove_unused_categories()
        return cat.cat.codes.to_numpy(), pd.Index(cat.cat.categories)
    try:
        uniques = np.sort(col.unique())
    except TypeError:  # '<' not supported between int and str
        col = col.map(str)
        uniques = np.sort(col.unique())
    codes = np.searchsorted(uniques, col.to_numpy())
    return codes, pd.Index(uniques)


def grouping_codes(data: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, pd.Index]:
    """Level index and labels of the (interaction of) grouping columns."""
    codes, labels, _, _ = _grouping(data, factors)
    return codes, labels


def _grouping(data: pd.DataFrame, factors: tuple[str, ...]):
    """Codes, labels (text), each factor's typed levels and, for a:b, the observed combinations."""
    parts = [_level_values(data[f]) for f in factors]
    levels = tuple(lv for _, lv in parts)
    if len(parts) == 1:
        codes, lv = parts[0]
        return codes, pd.Index([str(v) for v in lv]), levels, None
    codes = np.stack([c for c, _ in parts], axis=1)
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    labels = [":".join(str(levels[j][k]) for j, k in enumerate(row)) for row in combos]
    return inverse.ravel(), pd.Index(labels), levels, combos


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
        columns, values, spec = (INTERCEPT,), np.ones((len(data), 1)), _intercept_spec()
    else:
        mm = model_matrix(term.expr, data, na_action="ignore", context=CONTEXT)
        if mm.shape[1] == 0:
            raise ValueError(f"random-effects term {term} has no columns")
        columns, values, spec = tuple(coef_names(mm.model_spec, data)), np.asarray(mm, float), mm.model_spec
        _check_finite(values, columns, f"random-effects term {term}")
    codes, levels, factor_levels, combos = _grouping(data, term.factors)
    reterm = ReTerm(
        term=term,
        columns=columns,
        levels=levels,
        codes=codes.astype(np.intp),
        values=values,
        spec=spec,
        factor_levels=factor_levels,
        combos=combos,
    )
    _check_grouping(term.name, levels, len(data), reterm.q, term, residual)
    return reterm


def _sort_terms(terms: list[ReTerm]) -> tuple[ReTerm, ...]:
    """Order terms by decreasing number of levels, as lme4's ``mkReTrms`` does."""
    n_levels = [t.n_levels for t in terms]
    if all(a >= b for a, b in zip(n_levels, n_levels[1:])):
        return tuple(terms)
    order = np.argsort([-k for k in n_levels], kind="stable")
    return tuple(terms[i] for i in order)


# ------------------------------------------------------------------ entry


def model_frame(formula: str, data: pd.DataFrame, *, require_random: bool = True,
                extra_columns=(), residual: bool = True, na_action: str = "omit",
                weights=None, offset=None) -> ModelFrame:
    """Parse ``formula`` against ``data`` and build y, X, the random-effects terms and the offset.

    ``extra_columns`` (the columns of an error structure) are kept in
    ``frame.data`` and count for the removal of incomplete rows; a mapping
    ``{column: where it was named}`` makes a missing column's KeyError say
    where.  ``weights`` and ``offset`` (a GLMM's ``weights=`` and ``offset=``)
    are column names or values by row: they become ``frame.weights`` and part
    of ``frame.offset``, as a ``cbind()`` response becomes proportions ``y`` and
    ``frame.trials``.  ``residual=False`` (GLMMs) keeps y as observed and allows
    as many random effects as observations, as lme4's glmer does.  ``na_action``
    is R's: ``"omit"`` (fitted values and residuals on the rows used) or
    ``"exclude"`` (padded with NaN to every row of ``data``).
    """
    parsed = _parse_for_model(formula, require_random, residual, na_action)
    extra = _check_input_columns(parsed, data, extra_columns)
    arguments = _argument_values(data, {"weights": weights, "offset": offset})
    needed = [c for c in _required_columns(parsed) + list(extra) if c in data.columns]
    full_index = data.index
    data, used, na_counts = _complete_rows(data, needed, dict(arguments.values()))
    if len(data) == 0:
        raise ValueError("no complete rows left after removing rows with missing values")
    arguments = {arg: _used_values(arg, name, v[used]) for arg, (name, v) in arguments.items()}
    _check_used_columns(parsed, data, extra)
    y, trials, rhs = _fixed_part(parsed, data)
    offset = _total_offset(parsed, data, arguments.get("offset"))
    names = coef_names(rhs.model_spec, data)
    X = np.asarray(rhs, dtype=float)
    _check_finite(X, names, "fixed-effects model matrix")
    X, keep, dropped = _drop_aliased(X, names)
    return ModelFrame(
        formula=parsed, data=data, y=y if offset is None or not residual else y - offset,
        X=X, x_names=tuple(names[i] for i in keep), x_keep=tuple(keep), x_spec=rhs.model_spec,
        terms=_sort_terms([_random_term(t, data, residual) for t in parsed.random]),
        dropped_columns=tuple(dropped), n_dropped_rows=int((~used).sum()), na_counts=na_counts,
        full_index=full_index, used=used, na_action=na_action,
        offset=offset, weights=arguments.get("weights"), trials=trials, residual=residual,
    )


def _parse_for_model(formula: str, require_random: bool, residual: bool, na_action: str) -> ParsedFormula:
    """The parsed formula, checked for the kind of model: random terms, a cbind() response, na_action."""
    if na_action not in NA_ACTIONS:
        raise ValueError(f"na_action must be 'omit' (R's na.omit) or 'exclude' (R's na.exclude), "
                         f"not {na_action!r}")
    parsed = parse_formula(formula)
    if require_random and not parsed.random:
        raise ValueError(
            f"formula {formula!r} has no random-effects term such as (1 | group); "
            "for a model without random effects use lmelib.lm"
        )
    if parsed.cbind is not None and residual:
        raise ValueError(f"the response {parsed.response} in {formula!r} is a binomial response "
                         "(successes, failures): fit it with lmelib.glmer")
    return parsed


def _check_input_columns(parsed: ParsedFormula, data: pd.DataFrame, extra_columns) -> dict[str, str]:
    """KeyErrors for columns missing from the data, naming where they were named; the extra columns."""
    if isinstance(data, pd.DataFrame):
        _check_functions(parsed, data, _required_columns(parsed))
    check_columns(data, _required_columns(parsed), f"the formula {parsed.text!r}")
    extra = extra_columns if isinstance(extra_columns, dict) else dict.fromkeys(extra_columns, "the model")
    for column, where in extra.items():
        check_columns(data, [column], where)
    return extra


def _check_used_columns(parsed: ParsedFormula, data: pd.DataFrame, extra: dict[str, str]) -> None:
    """On the complete rows: a numeric response, and no ±inf in the extra columns."""
    _check_response(data, parsed)
    for column, where in extra.items():
        if pd.api.types.is_numeric_dtype(data[column]):
            _check_finite(data[column].to_numpy(float)[:, None], [column], f"column named in {where}")


def _argument_values(data: pd.DataFrame, arguments: dict) -> dict[str, tuple[str, np.ndarray]]:
    """``weights=`` and ``offset=`` as ``{argument: (name, values on every row of data)}``.

    A column name is looked up in the data (a KeyError says which argument
    named it); values must have one per row.  The name is the column's, or the
    argument's for values given directly: missing values are counted under it.
    """
    out = {}
    for arg, value in arguments.items():
        if value is None:
            continue
        if isinstance(value, str):
            check_columns(data, [value], f"{arg}=")
            if not pd.api.types.is_numeric_dtype(data[value]):
                raise TypeError(f"column {value!r} named in {arg}= must be numeric, "
                                f"but it has dtype {data[value].dtype}")
            out[arg] = (value, data[value].to_numpy(dtype=float, na_value=np.nan))
            continue
        values = np.asarray(value, dtype=float).ravel()
        if len(values) != len(data):
            raise ValueError(f"{arg}= has {len(values)} values for the {len(data)} rows of the data")
        out[arg] = (arg, values)
    return out


def _used_values(arg: str, name: str, values: np.ndarray) -> np.ndarray:
    """A weights= or offset= argument on the rows used: ±inf is an error naming it."""
    _check_finite(values[:, None], [name], f"{arg}= (missing values are dropped, ±inf is not)")
    return values


def _fixed_part(parsed: ParsedFormula, data: pd.DataFrame):
    """The response y, the trials of a cbind() response (or None), formulaic's fixed-effects matrix.

    ``cbind(s, f)`` gives y = s / (s + f), 0 where s + f = 0, and trials s + f
    (a binomial proportion and its weights, as R's ``glm``).
    """
    if parsed.cbind is None:
        mm = model_matrix(parsed.fixed_formula, data, na_action="ignore", context=CONTEXT)
        return _response(mm.lhs, parsed), None, mm.rhs
    successes, failures = (_expression_values(e, data, e, f"response {parsed.response}") for e in parsed.cbind)
    trials = successes + failures
    y = np.where(trials > 0, successes / np.where(trials > 0, trials, 1), 0.0)
    return y, trials, model_matrix(parsed.fixed, data, na_action="ignore", context=CONTEXT)


def _total_offset(parsed: ParsedFormula, data: pd.DataFrame, argument) -> np.ndarray | None:
    """The formula's offset() terms plus offset= (lme4 adds both), or None without either."""
    if not parsed.offsets:
        return argument
    total = offset_values(parsed, data)
    return total if argument is None else total + argument


def _expression_values(expr: str, data: pd.DataFrame, name: str, what: str) -> np.ndarray:
    """The values of one expression (``log(size)``) on ``data``; NaN or ±inf is an error naming it."""
    value = np.asarray(model_matrix(f"0 + I({expr})", data, na_action="ignore", context=CONTEXT),
                       dtype=float).ravel()
    _check_finite(value[:, None], [name], what)
    return value


def offset_values(parsed: ParsedFormula, data: pd.DataFrame) -> np.ndarray:
    """The sum of the formula's ``offset(expr)`` terms on ``data``; NaN or ±inf is an error naming the term."""
    total = np.zeros(len(data))
    for expr in parsed.offsets:
        total = total + _expression_values(expr, data, f"offset({expr})", "offset")
    return total
