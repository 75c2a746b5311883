"""lme4-style model formulas: split the random-effects terms from the fixed part.

A formula such as ``y ~ x + (x | g) + (1 | a/b)`` has a fixed part, ``y ~ x``,
which formulaic turns into the response and the matrix X, and random-effects
terms ``(expr | group)``.  This module only parses text; it builds no matrices.

lme4's rules (``findbars``, ``expandDoubleVerts``, ``expandSlash``):

* ``(x | g)``   one term with correlated intercept and slope;
* ``(x || g)``  one term per column, uncorrelated: ``(1 | g) + (0 + x | g)``;
* ``(1 | a/b)`` nested: ``(1 | a) + (1 | b:a)``;
* ``(1 | a:b)`` one term whose levels are the observed combinations of a and b.

R's arithmetic inside a function call is R's: ``I(x^2)`` and ``log(x^2)`` square
x (Python's ``^`` is exclusive or), while ``(a + b)^2`` outside any call stays
formula crossing.  ``offset(expr)`` terms are taken out of the fixed part and
kept in ``ParsedFormula.offsets``; a binomial response written as lme4's
``cbind(successes, failures)`` is kept in ``ParsedFormula.cbind``.  The model
frame (design.py) evaluates both on the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RandomTerm", "ParsedFormula", "parse_formula"]


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | factors)``.

    ``expr`` is the left-hand side as formulaic reads it (an intercept is
    implicit, as in lme4); ``factors`` the grouping columns whose interaction
    defines the levels, and ``name`` the grouping factor's name as lme4 prints
    it (``"school"``, ``"state:region"``).
    """

    expr: str
    factors: tuple[str, ...]
    name: str

    def __str__(self) -> str:
        return f"({self.expr} | {self.name})"


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into response, fixed part, random-effects terms and offsets.

    ``offsets`` are the expressions inside the ``offset(...)`` terms; ``cbind``
    is ``(successes, failures)`` for lme4's two-column binomial response
    ``cbind(s, f) ~ ...`` (``response`` is then the text ``"cbind(s, f)"``).
    """

    text: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    offsets: tuple[str, ...] = ()
    cbind: tuple[str, str] | None = None

    @property
    def fixed_formula(self) -> str:
        return f"{self.response} ~ {self.fixed}"


def _split_top_level(text: str, seps: str) -> list[tuple[str, str]]:
    """Split ``text`` at the characters in ``seps`` outside parentheses.

    Returns ``(operator, piece)`` pairs; the first operator is ``"+"``.
    """
    pieces, depth, start, op = [], 0, 0, "+"
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced parentheses in formula part {text!r}")
        elif depth == 0 and ch in seps:
            pieces.append((op, text[start:i].strip()))
            op, start = ch, i + 1
    if depth != 0:
        raise ValueError(f"unbalanced parentheses in formula part {text!r}")
    pieces.append((op, text[start:].strip()))
    return pieces


def _bar_split(inner: str) -> tuple[str, str, bool] | None:
    """``"x | g"`` -> ``("x", "g", True)``; ``"x || g"`` -> uncorrelated; else None."""
    depth = 0
    for i, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == "|":
            double = inner[i + 1 : i + 2] == "|"
            rhs = inner[i + 2 :] if double else inner[i + 1 :]
            return inner[:i].strip(), rhs.strip(), not double
    return None


_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$|^`[^`]+`$")


def _split_names(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside backticks: ``"`a/b`/c"`` -> ``["`a/b`", "c"]``."""
    parts, start, quoted = [], 0, False
    for i, ch in enumerate(text):
        if ch == "`":
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def _grouping_factors(group: str, formula: str) -> list[tuple[str, ...]]:
    """``"a/b/c"`` -> ``[("a",), ("a", "b"), ("a", "b", "c")]``; ``"a:b"`` -> ``[("a", "b")]``.

    A backtick-quoted name (``(1 | `my group`)``) is the column of that name.
    """
    nested = [part.strip() for part in _split_names(group, "/")]
    out, prefix = [], ()
    for part in nested:
        names = tuple(p.strip() for p in _split_names(part, ":"))
        for name in names:
            if not name or not _NAME.match(name):
                raise ValueError(
                    f"grouping factor {part!r} in {formula!r} must be a column name "
                    "or an interaction of column names such as 'a:b' or 'a/b'"
                )
        prefix = prefix + tuple(name.strip("`") for name in names)
        out.append(prefix)
    return out


def _lhs_columns(expr: str) -> list[str]:
    """The pieces of a random-effects left-hand side, each as its own term.

    Used by ``||``: ``"x + z"`` -> ``["1", "0 + x", "0 + z"]`` (lme4's
    ``expandDoubleVerts``).
    """
    pieces = _split_top_level(expr, "+-")
    intercept = True
    terms = []
    for op, piece in pieces:
        if piece in ("0", "-1") or (op == "-" and piece == "1"):
            intercept = False
        elif piece == "1":
            intercept = op == "+"
        elif piece:
            if op == "-":
                raise ValueError(f"cannot subtract {piece!r} in random-effects term ({expr} || ...)")
            terms.append(f"0 + {piece}")
    return (["1"] if intercept else []) + terms


def r_arithmetic(text: str) -> str:
    """R's power inside function calls: ``I(x^2)`` -> ``I(x**2)``.

    A ``^`` is arithmetic when some parenthesis around it opens a function call
    (a name before it); at the formula's own level, or inside bare grouping
    parentheses such as ``(a + b)^2``, it is formula crossing and stays.
    """
    out, calls = [], []  # calls: for each open parenthesis, whether it opens a call
    for i, ch in enumerate(text):
        if ch == "(":
            before = text[:i].rstrip()
            calls.append(bool(before) and (before[-1].isalnum() or before[-1] in "._`"))
        elif ch == ")" and calls:
            calls.pop()
        out.append("**" if ch == "^" and any(calls) else ch)
    return "".join(out)


def _offset_expr(op: str, piece: str, formula: str) -> str | None:
    """The expression inside an ``offset(...)`` term, or None for any other term."""
    if not (piece.startswith("offset(") and piece.endswith(")")):
        return None
    if op == "-":
        raise ValueError(f"cannot subtract {piece} in {formula!r}; write + offset(-(...)) instead")
    return piece[len("offset("):-1].strip()


def _cbind_parts(response: str, formula: str) -> tuple[str, str] | None:
    """``"cbind(s, n - s)"`` -> ``("s", "n - s")``; None for any other response."""
    if not (response.startswith("cbind(") and response.endswith(")")):
        return None
    parts = [piece for _, piece in _split_top_level(response[len("cbind("):-1], ",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"cbind() in {formula!r} takes two columns or expressions: "
                         "cbind(successes, failures)")
    return parts[0], parts[1]


_DOTTED_CALL = re.compile(r"(?<![\w.`])([A-Za-z][\w]*\.[\w.]+)\s*\(")


def _check_fixed_part(fixed: str, formula: str) -> None:
    """R constructs that formulaic would misread or fail on with a message about Python."""
    if any(piece == "." for _, piece in _split_top_level(fixed, "+-")):
        raise ValueError(f"R's '.' (every other column) in {formula!r} is not supported: "
                         "name the columns")
    if "%in%" in fixed:
        raise ValueError(f"%in% in {formula!r} is not supported (formulaic reads it differently from R): "
                         "write a:b for R's a %in% b")
    dotted = [m.group(1) for m in _DOTTED_CALL.finditer(fixed) if not m.group(1).startswith("np.")]
    if dotted:
        raise ValueError(f"function {dotted[0]!r} in {formula!r} is not available "
                         "(R's dotted function names are not Python names): transform the column "
                         "in the data frame first")


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4 formula into response (or cbind() counts), fixed part, offsets and random-effects terms."""
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(f"a formula needs exactly one '~' between response and terms, got {formula!r}")
    response, rhs = (s.strip() for s in r_arithmetic(formula).split("~"))
    if not response:
        raise ValueError(f"formula {formula!r} has no response left of '~'")
    fixed, random, offsets = [], [], []
    for op, piece in _split_top_level(rhs, "+-"):
        bar = _bar_split(piece[1:-1]) if piece.startswith("(") and piece.endswith(")") else None
        if bar is None:
            offset = _offset_expr(op, piece, formula)
            if offset is not None:
                offsets.append(offset)
            elif piece:
                fixed.append(f"{op} {piece}")
            continue
        if op == "-":
            raise ValueError(f"cannot subtract the random-effects term {piece} in {formula!r}")
        expr, group, correlated = bar
        if not expr:
            raise ValueError(f"random-effects term {piece} in {formula!r} has nothing left of '|' "
                             "(R: syntax error); write (1 | g) for a random intercept")
        if not group:
            raise ValueError(f"random-effects term {piece} in {formula!r} has no grouping factor "
                             "right of '|'")
        exprs = [expr] if correlated else _lhs_columns(expr)
        for factors in _grouping_factors(group, formula):
            if "/" in group:  # lme4 names a nested factor innermost first: "state:region"
                factors = tuple(reversed(factors))
            random.extend(RandomTerm(e, factors, ":".join(factors)) for e in exprs)
    fixed_rhs = " ".join(fixed).lstrip("+ ").strip() or "1"
    _check_fixed_part(fixed_rhs, formula)
    return ParsedFormula(formula, response, fixed_rhs, tuple(random), tuple(offsets),
                         _cbind_parts(response, formula))
