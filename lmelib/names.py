"""lme4's names: coefficient names as R writes them, and R's ``abbreviate()``.

formulaic names a model-matrix column after Python's spelling of the term and
patsy's level syntax: ``urban[T.Y]``, ``livch[T.3+]``, ``I(age ** 2)``,
``poly(Days, 2)[1]``.  R pastes the deparsed term and the level together:
``urbanY``, ``livch3+``, ``I(age^2)``, ``poly(Days, 2)1``.  :func:`coef_names`
gives R's name of every column of a formulaic model spec; every name lmelib
shows (fixef, vcov, coef_table, confint, anova, ranef columns, summaries) is
made here.

:func:`abbreviate` is R's ``abbreviate(names, minlength)`` (method
"left.kept"), which lme4's summary uses for the headers of the correlation of
fixed effects (``(Intr)``, ``I(g^2)``).
"""

from __future__ import annotations

import ast
import re

__all__ = ["coef_names", "r_deparse", "abbreviate", "INTERCEPT"]

INTERCEPT = "(Intercept)"

# Python's operator precedence (higher binds tighter), used to decide parentheses
_PREC = {ast.Or: 1, ast.And: 2, ast.Not: 3, ast.Compare: 4, ast.Add: 5, ast.Sub: 5, ast.Mult: 6,
         ast.Div: 6, ast.FloorDiv: 6, ast.Mod: 6, ast.USub: 7, ast.UAdd: 7, ast.Pow: 8}
# R's spelling of each operator; R's deparse writes ^ and / without spaces
_R_OP = {ast.Add: " + ", ast.Sub: " - ", ast.Mult: " * ", ast.Div: "/", ast.Pow: "^",
         ast.FloorDiv: " %/% ", ast.Mod: " %% ", ast.And: " & ", ast.Or: " | ", ast.Eq: " == ",
         ast.NotEq: " != ", ast.Lt: " < ", ast.LtE: " <= ", ast.Gt: " > ", ast.GtE: " >= ",
         ast.USub: "-", ast.UAdd: "+", ast.Not: "!"}


def r_deparse(expr: str) -> str:
    """A Python expression as R's ``deparse`` writes it: ``I(age ** 2)`` -> ``I(age^2)``,
    ``log(base / 4)`` -> ``log(base/4)``, ``'a'`` -> ``"a"``, ``True`` -> ``TRUE``."""
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:  # e.g. a backtick-quoted name: leave it as written
        return expr.replace(" ** ", "^")
    try:
        return _deparse(tree)
    except KeyError:  # an operator R has no spelling for: Python's own text
        return expr


def _prec(node) -> int:
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp)):
        return _PREC[type(node.op)]
    return _PREC[ast.Compare] if isinstance(node, ast.Compare) else 99


def _wrap(node, parent: int, right: bool = False) -> str:
    """``node`` deparsed, in parentheses where it binds less tightly than its parent operator."""
    text, p = _deparse(node), _prec(node)
    return f"({text})" if p < parent or (p == parent and right) else text


def _deparse(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.Attribute):
        return f"{_deparse(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        args = [_deparse(a) for a in node.args] + [f"{k.arg} = {_deparse(k.value)}" for k in node.keywords]
        return f"{_deparse(node.func)}({', '.join(args)})"
    if isinstance(node, ast.BinOp):
        p = _prec(node)
        pow_ = isinstance(node.op, ast.Pow)  # right-associative
        right = (_deparse(node.right) if pow_ and isinstance(node.right, ast.UnaryOp)  # 2^-x
                 else _wrap(node.right, p, right=not pow_))
        return _wrap(node.left, p, right=pow_) + _R_OP[type(node.op)] + right
    if isinstance(node, ast.UnaryOp):
        return _R_OP[type(node.op)] + _wrap(node.operand, _prec(node))
    if isinstance(node, ast.BoolOp):
        return _R_OP[type(node.op)].join(_wrap(v, _prec(node)) for v in node.values)
    if isinstance(node, ast.Compare):
        parts = [_wrap(node.left, _PREC[ast.Compare], right=True)]
        for op, right in zip(node.ops, node.comparators):
            parts += [_R_OP[type(op)], _wrap(right, _PREC[ast.Compare], right=True)]
        return "".join(parts)
    return ast.unparse(node)


def _constant(value) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# ----------------------------------------------------------- coefficient names


def _r_level(field: str) -> str:
    """A level as R's factor() labels it: ``T.3+`` -> ``3+``, ``True`` -> ``TRUE``, ``2.0`` -> ``2``."""
    field = field[2:] if field.startswith("T.") else field
    if field in ("True", "False"):
        return field.upper()
    return field[:-2] if re.fullmatch(r"-?\d+\.0", field) else field


def _split_column(column: str, exprs: list[str]) -> list[tuple[str, str | None]] | None:
    """``"urban[T.Y]:livch[T.1]"`` with exprs ``["urban", "livch"]`` -> ``[("urban", "T.Y"), ("livch", "T.1")]``.

    A factor without a bracketed field (a numeric column) gets None; None if the
    column is not spelled as expected.
    """
    out, pos = [], 0
    for i, expr in enumerate(exprs):
        if not column.startswith(expr, pos):
            return None
        pos += len(expr)
        field = None
        if column.startswith("[", pos):
            last = i == len(exprs) - 1
            end = len(column) - 1 if last else column.find("]:" + exprs[i + 1], pos)
            if end < 0 or column[end] != "]":
                return None
            field, pos = column[pos + 1:end], end + 1
        out.append((expr, field))
        if i < len(exprs) - 1:
            if not column.startswith(":", pos):
                return None
            pos += 1
    return out if pos == len(column) else None


def _r_part(expr: str, field: str | None, logical: set[str], number: int) -> str:
    """R's name of one factor's part of a column; ``number``: the column's place among the
    factor's columns (R numbers the columns of sum, Helmert and difference contrasts)."""
    if field is None:  # a numeric column; a logical one is R's xTRUE
        return r_deparse(expr) + ("TRUE" if expr in logical else "")
    if re.match(r"[SHD]\.", field):
        return r_deparse(expr) + str(number)
    return r_deparse(expr) + _r_level(field)


def _fallback(column: str) -> str:
    """R's spelling by pattern, for a column whose parts could not be matched to its factors."""
    column = re.sub(r"\[T\.([^\]]*)\]", r"\1", column)
    return re.sub(r"\[([^\]]*)\]", r"\1", column).replace(" ** ", "^")


def _term_names(columns: list[str], exprs: list[str], logical: set[str]) -> list[str]:
    parts = [_split_column(c, exprs) for c in columns]
    fields = [list(dict.fromkeys(p[i][1] for p in parts if p)) for i in range(len(exprs))]
    return [_fallback(c) if p is None else
            ":".join(_r_part(e, f, logical, fields[i].index(f) + 1) for i, (e, f) in enumerate(p))
            for c, p in zip(columns, parts)]


def coef_names(spec, data=None) -> list[str]:
    """R's names of the columns of a formulaic ModelSpec, in its column order.

    ``data`` (optional) tells which plain columns are logical, which R names ``xTRUE``.
    """
    logical = set()
    if data is not None:
        logical = {c for c in data.columns if getattr(data[c].dtype, "kind", "") == "b"}
    names = []
    for term in spec.structure:
        if list(term.columns) == ["Intercept"]:
            names.append(INTERCEPT)
        else:
            names += _term_names(list(term.columns), [f.expr for f in term.term.factors], logical)
    return names


# ----------------------------------------------------------------- abbreviate


def _strip_one(s: list[str], minlength: int, keep) -> bool:
    """Remove, from the right, each character ``keep`` rejects; True once short enough."""
    i = len(s) - 1
    while i > 0:
        if not keep(s, i):
            del s[i]
            if _length(s) <= minlength:
                return True
        i -= 1
    return False


def _length(s: list[str]) -> int:
    return sum(1 for c in s if c != " ")


def _word_start(s, i) -> bool:
    return s[i - 1] == " "


def _word_end(s, i) -> bool:
    return s[i - 1] != " " and (i + 1 == len(s) or s[i + 1] == " ")


def _vowel(c: str) -> bool:
    return c in "aeiou"


def _lower(c: str) -> bool:
    return "a" <= c <= "z"


_STEPS = (
    lambda s, i: not (_vowel(s[i]) and _word_end(s, i)),    # lower-case vowels ending a word
    lambda s, i: not (_vowel(s[i]) and not _word_start(s, i)),  # other vowels but a word's first
    lambda s, i: not (_lower(s[i]) and _word_end(s, i)),    # lower-case letters ending a word
    lambda s, i: not (_lower(s[i]) and not _word_start(s, i)),  # other lower-case letters
    lambda s, i: _word_start(s, i) or s[i] == " ",           # anything but a word's first
)


def _abbreviate_one(name: str, minlength: int) -> str:
    s = list(name.lstrip())
    if len(s) < minlength:
        return "".join(s)
    while len(s) > 1 and s[-1] == " ":  # trailing spaces go first
        s.pop()
    if _length(s) > minlength:
        for step in _STEPS:
            if _strip_one(s, minlength, step):
                break
    return "".join(c for c in s if c != " ") if len(s) > minlength else "".join(s)


def abbreviate(names, minlength: int = 4) -> list[str]:
    """R's ``abbreviate(names, minlength)``: each name shortened to about ``minlength``
    characters by dropping lower-case vowels, then lower-case letters, then other
    characters, from the right, never a word's first; names that would coincide
    are abbreviated again with ``minlength`` one larger until they differ."""
    names = [str(n).strip(" ") for n in names]
    unique = list(dict.fromkeys(names))
    out = {n: _abbreviate_one(n, minlength) for n in unique}
    length = minlength
    while True:
        seen, dup = set(), set()
        for n in unique:
            (dup if out[n] in seen else seen).add(out[n])
        if not dup:
            return [out[n] for n in names]
        length += 1
        for n in unique:
            if out[n] in dup:
                out[n] = _abbreviate_one(n, length)
