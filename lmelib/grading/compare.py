"""The checks applied to an answer, on its encoded form (see ``capture``).

The same functions give the student's instant feedback (``Checker``, in the
kernel) and the grade (in the grader process), so the two can never
disagree about what a visible check means.

Every check returns ``(passed, message)``.  Equivalent answers are accepted:

* a number may be a Python ``float`` or ``int``, a numpy scalar, or a
  container holding exactly one number (a 1-element array, Series, list);
* an integer may also be a float with an integral value or the string of one;
* a label (kind ``str``) may be a string, an integer code or a category
  value: labels are compared as strings;
* a Series may also be a one-column DataFrame or a dict; a one-column
  DataFrame may also be a Series; index and column labels are compared as
  strings, and the order of the rows does not matter unless the question
  says so (``ordered: true``);
* a tuple may be a list or a 1-d array.

How values are compared: an integer (kind ``int``, and integers inside
tuples, Series and DataFrames) and a label exactly; a number with
``|x - expected| <= atol + rtol * |expected|``; a ``pvalue`` (a number in
[0, 1]) on the log scale, ``|ln p - ln expected| <= rtol`` (``atol`` is not
used), which is a relative tolerance that holds at every magnitude: with
``rtol = 0.01`` the naive p of 3.0e-26 does not pass for the corrected
1.5e-26, nor does 0 (values below the smallest normal double, 2.2e-308,
count as that value); a bool only as a bool.
"""

from __future__ import annotations

import math
import sys

__all__ = ["KINDS", "describe", "check_kind", "check_structure", "check_value",
           "structure_of", "KIND_TEXT"]

#: The answer kinds a question can ask for, and how they are described.
KIND_TEXT = {
    "float": "a number",
    "pvalue": "a p-value (a number from 0 to 1)",
    "int": "an integer",
    "bool": "a bool (True or False)",
    "str": "a label (a string)",
    "tuple": "a tuple",
    "series": "a pandas Series",
    "frame": "a pandas DataFrame",
}
KINDS = tuple(KIND_TEXT)

_NUMBER_TAGS = ("int", "float")
_SCALAR_KINDS = ("float", "pvalue", "int", "bool", "str")
_TINY = sys.float_info.min  # p-values below this are compared as this


def describe(enc: dict) -> str:
    """A short description of an encoded answer, for feedback messages."""
    t = enc.get("t")
    if t == "missing":
        return "not defined"
    if t == "ellipsis":
        return "still the placeholder `...`"
    if t == "error":
        return f"an error ({enc.get('error', '')})"
    if t == "none":
        return "None"
    if t == "bool":
        return "a bool"
    if t == "int":
        return "an integer"
    if t == "float":
        return "a number"
    if t == "str":
        return "a string"
    if t == "list":
        kind = "tuple" if enc.get("tuple") else "list"
        return f"a {kind} of length {len(enc['v'])}"
    if t == "dict":
        return f"a dict with {len(enc['v'])} entries"
    if t == "array":
        return f"a numpy array of shape {tuple(enc['shape'])}"
    if t == "series":
        return f"a Series of length {len(enc['v'])}"
    if t == "frame":
        return f"a DataFrame with {len(enc['index'])} rows and {len(enc['columns'])} columns"
    if t == "sparse":
        return f"a sparse matrix of shape {tuple(enc['shape'])}"
    return f"an object of type {enc.get('type', '?')}"


# --------------------------------------------------------------------------
# coercion of an encoded answer to the kind a question asks for


def _single(enc: dict):
    """The one element of a size-1 container, encoded; else None."""
    t = enc.get("t")
    if t == "list" and len(enc["v"]) == 1:
        return enc["v"][0]
    if t in ("array", "series") and len(enc["v"]) == 1:
        return _scalar_enc(enc["v"][0])
    if t == "frame" and len(enc["v"]) == 1 and len(enc["v"][0]) == 1:
        return _scalar_enc(enc["v"][0][0])
    return None


def _scalar_enc(v) -> dict:
    if isinstance(v, bool):
        return {"t": "bool", "v": v}
    if isinstance(v, int):
        return {"t": "int", "v": v}
    if isinstance(v, float) or v in ("nan", "inf", "-inf"):
        return {"t": "float", "v": v}
    if v is None:
        return {"t": "none"}
    return {"t": "str", "v": str(v)}


def _num(v):
    """A float from an encoded scalar value, or None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if v in ("nan", "inf", "-inf"):
        return float(v)
    return None


def coerce(enc: dict, kind: str, expected: dict | None = None):
    """``(value, None)`` in the canonical form of ``kind``, or ``(None, why)``."""
    t = enc.get("t")
    if t in ("missing", "ellipsis", "error"):
        return None, describe(enc)
    if kind in _SCALAR_KINDS and t in ("list", "array", "series", "frame"):
        inner = _single(enc)
        if inner is not None:
            return coerce(inner, kind)
    if kind == "float":
        if t in _NUMBER_TAGS:
            return _num(enc["v"]), None
    elif kind == "pvalue":
        if t in _NUMBER_TAGS:
            x = _num(enc["v"])
            if x is not None and 0.0 <= x <= 1.0:
                return x, None
            return None, "a number outside [0, 1]"
    elif kind == "int":
        if t == "int":
            return enc["v"], None
        if t == "float":
            x = _num(enc["v"])
            if x is not None and math.isfinite(x) and x.is_integer():
                return int(x), None
        if t == "str" and enc["v"].strip().lstrip("-").isdigit():
            return int(enc["v"].strip()), None
    elif kind == "bool":
        if t == "bool":
            return enc["v"], None
    elif kind == "str":
        if t == "str":
            return enc["v"].strip(), None
        if t == "int":
            return str(enc["v"]), None
        if t == "float":
            x = _num(enc["v"])
            if x is not None and math.isfinite(x) and x.is_integer():
                return str(int(x)), None
    elif kind == "tuple":
        if t == "list":
            return [_plain(e) for e in enc["v"]], None
        if t == "array" and len(enc["shape"]) == 1:
            return list(enc["v"]), None
        if t == "series":
            return list(enc["v"]), None
    elif kind == "series":
        if t == "series":
            return (enc["index"], enc["v"]), None
        if t == "frame" and len(enc["columns"]) == 1:
            return (enc["index"], [row[0] for row in enc["v"]]), None
        if t == "dict" and all(e.get("t") in ("int", "float", "bool", "str") for e in enc["v"].values()):
            return (list(enc["v"]), [e["v"] for e in enc["v"].values()]), None
    elif kind == "frame":
        if t == "frame":
            return (enc["index"], enc["columns"], enc["v"]), None
        if t == "series" and expected is not None and len(expected.get("columns", [])) == 1:
            return (enc["index"], expected["columns"], [[v] for v in enc["v"]]), None
    return None, describe(enc)


def _plain(enc: dict):
    """A scalar value from an encoded scalar (for tuple items)."""
    if enc.get("t") in ("bool", "int", "float", "str"):
        return enc["v"]
    inner = _single(enc)
    if inner is not None:
        return _plain(inner)
    return describe(enc)


# --------------------------------------------------------------------------
# the three checks


def check_kind(enc: dict, kind: str, expected: dict | None = None):
    value, why = coerce(enc, kind, expected)
    want = KIND_TEXT[kind]
    if why is None:
        return True, f"is {want}"
    return False, f"should be {want}, but it is {why}"


def structure_of(enc: dict, kind: str) -> dict:
    """What the visible structure check compares: labels, columns, length."""
    value, why = coerce(enc, kind)
    if why is not None:
        raise ValueError(f"the solution's answer is {why}, not {KIND_TEXT[kind]}")
    if kind == "series":
        return {"index": list(value[0])}
    if kind == "frame":
        return {"index": list(value[0]), "columns": list(value[1])}
    if kind == "tuple":
        return {"len": len(value)}
    return {}


def _label_diff(got: list, want: list, what: str, ordered: bool):
    if len(got) != len(set(got)):
        return f"its {what} labels are not unique"
    missing = [w for w in want if w not in set(got)]
    extra = [g for g in got if g not in set(want)]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(repr(m) for m in missing[:5])
                         + (" ..." if len(missing) > 5 else ""))
        if extra:
            parts.append("unexpected " + ", ".join(repr(e) for e in extra[:5])
                         + (" ..." if len(extra) > 5 else ""))
        return f"its {what} labels differ from the expected ones ({'; '.join(parts)})"
    if ordered and list(got) != list(want):
        return f"its {what} labels are not in the expected order"
    return None


def check_structure(enc: dict, kind: str, structure: dict, ordered: bool = False):
    value, why = coerce(enc, kind, structure)
    if why is not None:
        return False, f"should be {KIND_TEXT[kind]}, but it is {why}"
    if kind == "series":
        problem = _label_diff(value[0], structure["index"], "index", ordered)
        if problem:
            return False, problem
        return True, f"has the expected {len(structure['index'])} index labels"
    if kind == "frame":
        for got, key, what in ((value[0], "index", "row"), (value[1], "columns", "column")):
            problem = _label_diff(got, structure[key], what, ordered)
            if problem:
                return False, problem
        return True, (f"has the expected {len(structure['index'])} rows and "
                      f"{len(structure['columns'])} columns")
    if kind == "tuple":
        if len(value) != structure["len"]:
            return False, f"has length {len(value)}, expected {structure['len']}"
        return True, f"has the expected length {structure['len']}"
    return True, "has the expected form"


def _close_p(a: float, e: float, rtol: float) -> bool:
    """Two p-values on the log scale (see the module docstring)."""
    return abs(math.log(max(a, _TINY)) - math.log(max(e, _TINY))) <= rtol


def _close(a, e, rtol: float, atol: float, exact_ints: bool = True) -> bool:
    """Whether actual scalar ``a`` matches expected scalar ``e``.

    An integer ``e`` is matched exactly (a count is right or wrong), unless
    ``exact_ints`` is false (kind ``float`` whose solution happens to be an int).
    """
    if isinstance(e, bool):
        return isinstance(a, bool) and a == e
    ef = _num(e)
    if ef is not None:
        af = _num(a)
        if af is None:
            return False
        if math.isnan(ef) or math.isnan(af):
            return math.isnan(ef) and math.isnan(af)
        if math.isinf(ef) or math.isinf(af):
            return ef == af
        if isinstance(e, int) and exact_ints:
            return af == ef
        return abs(af - ef) <= atol + rtol * abs(ef)
    if e is None:
        return a is None or a == "nan"
    return str(a).strip() == str(e).strip()


def _tol_text(rtol: float, atol: float) -> str:
    return f"relative tolerance {rtol:g}, absolute {atol:g}"


def check_value(enc: dict, kind: str, expected: dict, rtol: float, atol: float,
                ordered: bool = False):
    """Compare the answer with the solution's (``expected``, encoded)."""
    exp, why = coerce(expected, kind, expected)
    if why is not None:  # pragma: no cover - the key is checked when it is built
        raise ValueError(f"bad key: the solution's answer is {why}")
    value, why = coerce(enc, kind, structure_of(expected, kind) if kind == "frame" else None)
    if why is not None:
        return False, f"should be {KIND_TEXT[kind]}, but it is {why}"
    if kind == "pvalue":
        if _close_p(value, exp, rtol):
            return True, "has the expected value"
        return False, f"is not the expected value (compared on the log scale: |ln p - ln p̂| <= {rtol:g})"
    if kind in _SCALAR_KINDS:
        if _close(value, exp, rtol, atol, exact_ints=kind != "float"):
            return True, "has the expected value"
        if kind == "float":
            return False, f"is not the expected value ({_tol_text(rtol, atol)})"
        return False, "is not the expected value"
    if kind == "tuple":
        if len(value) != len(exp):
            return False, f"has length {len(value)}, expected {len(exp)}"
        bad = [i for i, (a, e) in enumerate(zip(value, exp)) if not _close(a, e, rtol, atol)]
        if bad:
            return False, f"element {bad[0]} is not the expected value"
        return True, "has the expected values"
    if kind == "series":
        labels, vals = value
        problem = _label_diff(labels, exp[0], "index", ordered)
        if problem:
            return False, problem
        got = dict(zip(labels, vals))
        bad = [lab for lab, e in zip(exp[0], exp[1]) if not _close(got[lab], e, rtol, atol)]
        if bad:
            return False, (f"{len(bad)} of {len(exp[0])} values are not the expected ones "
                           f"(e.g. at {bad[0]!r}; {_tol_text(rtol, atol)})")
        return True, f"has the expected {len(exp[0])} values"
    if kind == "frame":
        index, columns, rows = value
        for got_l, want_l, what in ((index, exp[0], "row"), (columns, exp[1], "column")):
            problem = _label_diff(got_l, want_l, what, ordered)
            if problem:
                return False, problem
        rpos = {lab: i for i, lab in enumerate(index)}
        cpos = {lab: j for j, lab in enumerate(columns)}
        bad = []
        for i_e, r in enumerate(exp[0]):
            for j_e, c in enumerate(exp[1]):
                if not _close(rows[rpos[r]][cpos[c]], exp[2][i_e][j_e], rtol, atol):
                    bad.append((r, c))
        if bad:
            n = len(exp[0]) * len(exp[1])
            return False, (f"{len(bad)} of {n} entries are not the expected ones "
                           f"(e.g. row {bad[0][0]!r}, column {bad[0][1]!r}; {_tol_text(rtol, atol)})")
        return True, "has the expected values"
    raise ValueError(f"unknown kind {kind!r}")  # pragma: no cover
