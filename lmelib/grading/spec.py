"""Question specifications: ``book/exercises/<chapter>.yml``.

A specification says, for one chapter notebook, which of its exercises are
graded, which named answers each one asks for, what kind of value each answer
is, how many points the question is worth and how closely a number must
match.  It holds no expected values: those are computed by running the
chapter's own solution code (``lmelib.grading assign``), so they always
come from the solution.  Example::

    chapter: 03_random_intercept.ipynb   # the notebook, relative to book/
    defaults: {rtol: 1.0e-4, atol: 1.0e-8}
    questions:
      ex-ri-icc-english:                 # the {exercise}'s :label:
        points: 1
        answers:
          icc_english: float             # short form: name: kind
      ex-ri-ml-reml:
        points: 3
        answers:
          sigma2_u_ml: float
          sigma2_u_reml: float
          sigma2_u_ml_hand: {kind: float, rtol: 2.0e-3}

Answer fields: ``kind`` (``float``, ``pvalue``, ``int``, ``bool``, ``str``,
``tuple``, ``series``, ``frame``), ``rtol``/``atol`` (numbers; a ``pvalue``
is compared on the log scale, ``|ln p - ln expected| <= rtol``, and an
``int`` exactly, see ``compare``), ``ordered`` (index
order matters), ``weight`` (share of the question's points, default 1),
``expr`` (a Python expression evaluated in the student's namespace instead
of reading the variable, e.g. ``"reml_criterion([0.5, 0, 0.05])"``).
Question fields: ``points`` (default 1), ``answers``, ``stub`` (the code
put in the student's answer cell, default ``name = ...`` per answer).
Top level: ``chapter``, ``defaults``, ``questions``, ``files`` (extra data
files the chapter reads, as paths relative to ``book/``; they are copied to
the same relative place next to the notebook when it runs, e.g.
``../tests/reference/lmer_reference.json``, at most one folder up).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .compare import KINDS

__all__ = ["SpecError", "load_spec", "spec_path", "book_dir", "find_specs"]

_DEFAULTS = {"rtol": 1e-4, "atol": 1e-8}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SpecError(ValueError):
    """A question specification is malformed."""


def book_dir() -> Path:
    """The book/ folder of the checkout lmelib was imported from (lmelib/grading/ is two levels
    below it)."""
    return Path(__file__).resolve().parents[2] / "book"


def spec_path(chapter: str | Path, book: Path | None = None) -> Path:
    stem = Path(chapter).stem
    return (book or book_dir()) / "exercises" / f"{stem}.yml"


def find_specs(book: Path | None = None) -> list[Path]:
    return sorted(((book or book_dir()) / "exercises").glob("*.yml"))


def _num(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where} must be a number, got {value!r}")
    if value < 0:
        raise SpecError(f"{where} must not be negative")
    return float(value)


def load_spec(path: str | Path) -> dict:
    """Read and check a specification; return it in normalised form."""
    import yaml

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    unknown = set(raw) - {"chapter", "defaults", "questions", "files"}
    if unknown:
        raise SpecError(f"{path}: unknown keys {sorted(unknown)}")
    chapter = raw.get("chapter")
    if not isinstance(chapter, str) or not chapter.endswith(".ipynb"):
        raise SpecError(f"{path}: 'chapter' must name the notebook, e.g. 03_random_intercept.ipynb")
    defaults = dict(_DEFAULTS)
    for key, value in (raw.get("defaults") or {}).items():
        if key not in _DEFAULTS:
            raise SpecError(f"{path}: unknown default {key!r}")
        defaults[key] = _num(value, f"{path}: defaults.{key}")
    questions_raw = raw.get("questions")
    if not isinstance(questions_raw, dict) or not questions_raw:
        raise SpecError(f"{path}: 'questions' must map exercise labels to questions")
    questions, seen = [], set()
    for label, q in questions_raw.items():
        where = f"{path}: question {label!r}"
        if not isinstance(q, dict):
            raise SpecError(f"{where}: expected a mapping")
        unknown = set(q) - {"points", "answers", "stub"}
        if unknown:
            raise SpecError(f"{where}: unknown keys {sorted(unknown)}")
        points = _num(q.get("points", 1), f"{where}: points")
        answers_raw = q.get("answers")
        if not isinstance(answers_raw, dict) or not answers_raw:
            raise SpecError(f"{where}: 'answers' must map answer names to kinds")
        answers = []
        for name, a in answers_raw.items():
            awhere = f"{where}, answer {name!r}"
            if isinstance(a, str):
                a = {"kind": a}
            if not isinstance(a, dict):
                raise SpecError(f"{awhere}: expected a kind or a mapping")
            unknown = set(a) - {"kind", "rtol", "atol", "ordered", "weight", "expr"}
            if unknown:
                raise SpecError(f"{awhere}: unknown keys {sorted(unknown)}")
            if a.get("kind") not in KINDS:
                raise SpecError(f"{awhere}: kind must be one of {', '.join(KINDS)}")
            expr = a.get("expr")
            if expr is None and not _NAME.match(str(name)):
                raise SpecError(f"{awhere}: not a Python name (use 'expr' for an expression)")
            if expr is not None:
                if not isinstance(expr, str):
                    raise SpecError(f"{awhere}: expr must be a string")
                try:
                    compile(expr, "<expr>", "eval")
                except SyntaxError as exc:
                    raise SpecError(f"{awhere}: expr is not a Python expression: {exc}") from None
            if name in seen:
                raise SpecError(f"{awhere}: the answer name is used twice in this chapter")
            seen.add(name)
            answers.append({
                "name": str(name), "kind": a["kind"], "expr": expr,
                "rtol": _num(a.get("rtol", defaults["rtol"]), f"{awhere}: rtol"),
                "atol": _num(a.get("atol", defaults["atol"]), f"{awhere}: atol"),
                "ordered": bool(a.get("ordered", False)),
                "weight": _num(a.get("weight", 1), f"{awhere}: weight"),
            })
        if sum(a["weight"] for a in answers) <= 0:
            raise SpecError(f"{where}: the weights add up to zero")
        stub = q.get("stub")
        if stub is not None and not isinstance(stub, str):
            raise SpecError(f"{where}: stub must be a string of code")
        questions.append({"label": str(label), "points": points, "answers": answers, "stub": stub})
    files = raw.get("files") or []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise SpecError(f"{path}: 'files' must be a list of paths relative to book/")
    for f in files:
        parts = Path(f).parts
        if Path(f).is_absolute() or parts.count("..") > 1 or ".." in parts[1:] or \
                (parts and parts[0] == ".." and len(parts) < 3):
            raise SpecError(f"{path}: file {f!r} must be inside book/ or one folder below "
                            "its parent (e.g. ../tests/reference/x.json)")
    return {"chapter": chapter, "name": Path(chapter).stem, "questions": questions,
            "files": files, "sha256": hashlib.sha256(text.encode()).hexdigest()}
