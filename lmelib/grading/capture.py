"""Turn answer objects into plain JSON data, and back into comparable form.

This module runs in two places: inside the student's kernel, where
:func:`snapshot` serialises the answer variables after every cell, and in the
grader, which compares the serialised answers with the key.  Answers cross
the process boundary only as JSON text (never as pickles), so nothing a
submission puts into a variable can run code in the grader.

The encoding is a small tagged format, ``{"t": kind, ...}``:

========== ===========================================================
``t``      fields
========== ===========================================================
none       (``None``)
ellipsis   (``...``: the placeholder of an unanswered question)
bool       ``v``
int        ``v``
float      ``v`` (a JSON number, or ``"nan"``, ``"inf"``, ``"-inf"``)
str        ``v``
list       ``v``: encoded items (also tuples, ``"tuple": true``)
dict       ``v``: {str(key): encoded value}
array      ``shape``, ``v`` (nested lists of numbers, bools or strings)
series     ``index`` (labels as strings), ``v`` (values), ``name``
frame      ``index``, ``columns`` (labels as strings), ``v`` (rows)
sparse     ``shape``, ``nnz``
other      ``type``, ``repr`` (anything else: functions, models, ...)
error      ``error`` (evaluating or encoding the answer raised)
missing    (the variable is not defined)
========== ===========================================================

Only the standard library is imported at module level; numpy and pandas are
looked up in ``sys.modules`` so that encoding never imports them itself.
"""

from __future__ import annotations

import json
import math
import sys

__all__ = ["encode", "snapshot", "MAX_ELEMENTS"]

#: Larger answers are not serialised (an answer is a number or a small table).
MAX_ELEMENTS = 200_000
_MAX_DEPTH = 4


def _scalar(x):
    """A JSON-safe Python scalar from a numpy/pandas/Python scalar."""
    if x is None:
        return None
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return _float(x)
    if isinstance(x, str):
        return x
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(x, np.bool_):
            return bool(x)
        if isinstance(x, np.integer):
            return int(x)
        if isinstance(x, np.floating):
            return _float(float(x))
    pd = sys.modules.get("pandas")
    if pd is not None:
        try:
            if x is pd.NA or x is pd.NaT:
                return "nan"
        except Exception:  # pragma: no cover - exotic pandas versions
            pass
    return str(x)


def _float(v: float):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _label(x) -> str:
    """Index and column labels are compared as strings (category labels,
    integer school codes and their string forms are the same label)."""
    v = _scalar(x)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, tuple):  # pragma: no cover - MultiIndex handled below
        return "/".join(map(str, v))
    return str(v)


def _labels(index) -> list[str]:
    out = []
    for lab in list(index):
        if isinstance(lab, tuple):
            out.append("/".join(_label(part) for part in lab))
        else:
            out.append(_label(lab))
    return out


def _values(values) -> list:
    return [_scalar(v) for v in list(values)]


def encode(obj, depth: int = 0) -> dict:
    """Encode ``obj`` as tagged JSON-ready data (see the module docstring)."""
    if obj is None:
        return {"t": "none"}
    if obj is Ellipsis:
        return {"t": "ellipsis"}
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if isinstance(obj, bool) or (np is not None and isinstance(obj, np.bool_)):
        return {"t": "bool", "v": bool(obj)}
    if isinstance(obj, int) or (np is not None and isinstance(obj, np.integer)):
        return {"t": "int", "v": int(obj)}
    if isinstance(obj, float) or (np is not None and isinstance(obj, np.floating)):
        return {"t": "float", "v": _float(float(obj))}
    if isinstance(obj, str):
        if len(obj) > MAX_ELEMENTS:
            return {"t": "error", "error": "the string is too long to grade"}
        return {"t": "str", "v": obj}
    if pd is not None:
        if isinstance(obj, pd.Series):
            if obj.size > MAX_ELEMENTS:
                return {"t": "error", "error": f"too large to grade ({obj.size} values)"}
            return {"t": "series", "index": _labels(obj.index),
                    "v": _values(obj.to_numpy(dtype=object)),
                    "name": None if obj.name is None else _label(obj.name)}
        if isinstance(obj, pd.DataFrame):
            if obj.size > MAX_ELEMENTS:
                return {"t": "error", "error": f"too large to grade ({obj.size} values)"}
            return {"t": "frame", "index": _labels(obj.index),
                    "columns": _labels(obj.columns),
                    "v": [_values(row) for row in obj.to_numpy(dtype=object)]}
        if isinstance(obj, pd.Index):
            obj = obj.to_numpy(dtype=object)
        elif isinstance(obj, pd.Categorical):
            obj = obj.to_numpy(dtype=object)
    if np is not None and isinstance(obj, np.ndarray):
        if obj.size > MAX_ELEMENTS:
            return {"t": "error", "error": f"too large to grade ({obj.size} values)"}
        if obj.ndim == 0:
            return encode(obj[()], depth)
        flat = [_scalar(v) for v in obj.astype(object).ravel().tolist()]
        return {"t": "array", "shape": list(obj.shape), "v": flat}
    scipy_sparse = sys.modules.get("scipy.sparse")
    if scipy_sparse is not None and scipy_sparse.issparse(obj):
        return {"t": "sparse", "shape": [int(s) for s in obj.shape], "nnz": int(obj.nnz)}
    if isinstance(obj, (list, tuple)):
        if depth >= _MAX_DEPTH or len(obj) > MAX_ELEMENTS:
            return {"t": "error", "error": "the list is too large or too deeply nested to grade"}
        out = {"t": "list", "v": [encode(v, depth + 1) for v in obj]}
        if isinstance(obj, tuple):
            out["tuple"] = True
        return out
    if isinstance(obj, dict):
        if depth >= _MAX_DEPTH or len(obj) > MAX_ELEMENTS:
            return {"t": "error", "error": "the dict is too large or too deeply nested to grade"}
        return {"t": "dict", "v": {_label(k): encode(v, depth + 1) for k, v in obj.items()}}
    # numbers from other libraries (e.g. decimal, sympy) that convert cleanly
    if not callable(obj):
        try:
            return {"t": "float", "v": _float(float(obj)), "from": type(obj).__name__}
        except Exception:
            pass
    try:
        text = repr(obj)
    except Exception as exc:  # a hostile __repr__
        text = f"<unprintable: {type(exc).__name__}>"
    return {"t": "other", "type": type(obj).__name__, "repr": text[:200]}


def _safe_encode(get) -> dict:
    try:
        return encode(get())
    except BaseException as exc:  # noqa: BLE001 - anything the answer raises
        msg = f"{type(exc).__name__}: {exc}"
        return {"t": "error", "error": msg[:300]}


def snapshot(namespace: dict, answers: dict) -> str:
    """Encode the answers found in ``namespace`` (the kernel's user globals).

    ``answers`` maps an answer's key to ``None`` (the key is a variable name)
    or to a Python expression evaluated in ``namespace`` (e.g. a call of a
    function the student wrote).  Returns the JSON text of
    ``{key: encoded value}``.
    """
    out = {}
    for key, expr in answers.items():
        if expr is None:
            if key not in namespace:
                out[key] = {"t": "missing"}
                continue
            out[key] = _safe_encode(lambda: namespace[key])
        else:
            out[key] = _safe_encode(lambda: eval(expr, namespace))  # noqa: S307
    return json.dumps(out)
