"""Instant feedback in the student's notebook: ``grader.check("label")``.

The student version of a chapter creates ``grader = Checker.from_json(...)``
in its setup cell, with the visible checks of every question: the kind of
each answer and, for Series, DataFrames and tuples, the labels or length the
solution has.  ``grader.check(label)`` runs them on the variables of the
notebook and shows what passed and what did not.  The values themselves are
checked only when the notebook is graded (hidden checks).
"""

from __future__ import annotations

import json
import sys

from . import compare
from .capture import encode

__all__ = ["Checker", "CheckResult"]


class CheckResult:
    """The outcome of ``grader.check``: printed as text, shown as HTML."""

    def __init__(self, label: str, lines: list[tuple[bool, str]], note: str = ""):
        self.label, self.lines, self.note = label, lines, note

    @property
    def passed(self) -> bool:
        return bool(self.lines) and all(ok for ok, _ in self.lines)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        n_ok = sum(ok for ok, _ in self.lines)
        head = f"{self.label}: {n_ok} of {len(self.lines)} visible checks passed"
        body = [("  ✓ " if ok else "  ✗ ") + msg for ok, msg in self.lines]
        tail = [f"  {self.note}"] if self.note else []
        return "\n".join([head, *body, *tail])

    def _repr_html_(self) -> str:
        import html

        color = "#1a7f37" if self.passed else "#b35900"
        rows = "".join(f"<li>{'✓' if ok else '✗'} {html.escape(msg)}</li>" for ok, msg in self.lines)
        n_ok = sum(ok for ok, _ in self.lines)
        note = f"<p><em>{html.escape(self.note)}</em></p>" if self.note else ""
        return (f"<div style='border-left:4px solid {color};padding-left:8px'>"
                f"<strong>{html.escape(self.label)}</strong>: {n_ok} of {len(self.lines)} visible "
                f"checks passed<ul style='margin:0'>{rows}</ul>{note}</div>")


class Checker:
    """The visible checks of one chapter's exercises."""

    def __init__(self, checks: dict):
        self.chapter = checks.get("chapter", "")
        self.questions = checks["questions"]

    @classmethod
    def from_json(cls, text: str) -> "Checker":
        return cls(json.loads(text))

    def _namespace(self, namespace):
        if namespace is not None:
            return namespace
        frame = sys._getframe(2)  # the notebook cell that called check()
        return frame.f_globals

    def check(self, label: str, namespace: dict | None = None) -> CheckResult:
        """Run the visible checks of exercise ``label`` on the notebook's variables."""
        if label not in self.questions:
            known = ", ".join(self.questions)
            return CheckResult(label, [(False, f"no exercise {label!r} here (exercises: {known})")])
        ns = self._namespace(namespace)
        return self._check(label, ns)

    def check_all(self, namespace: dict | None = None) -> list[CheckResult]:
        """Run the visible checks of every exercise."""
        ns = self._namespace(namespace)
        return [self._check(label, ns) for label in self.questions]

    def _check(self, label: str, ns: dict) -> CheckResult:
        q = self.questions[label]
        lines = []
        for name, a in q["answers"].items():
            shown = f"`{a['expr']}`" if a.get("expr") else f"`{name}`"
            try:
                if a.get("expr"):
                    enc = encode(eval(a["expr"], ns))  # noqa: S307 - the student's own code
                else:
                    enc = encode(ns[name]) if name in ns else {"t": "missing"}
            except Exception as exc:  # noqa: BLE001
                enc = {"t": "error", "error": f"{type(exc).__name__}: {exc}"}
            if enc["t"] in ("missing", "ellipsis", "error"):
                lines.append((False, f"{shown} is {compare.describe(enc)}"))
                continue
            ok, msg = compare.check_kind(enc, a["kind"], a.get("structure"))
            lines.append((ok, f"{shown} {msg}"))
            if ok and a.get("structure"):
                ok2, msg2 = compare.check_structure(enc, a["kind"], a["structure"], a.get("ordered", False))
                lines.append((ok2, f"{shown} {msg2}"))
        note = "The values are checked when the notebook is graded." if all(ok for ok, _ in lines) else ""
        return CheckResult(label, lines, note)

    def __repr__(self) -> str:
        return f"Checker({self.chapter!r}: {len(self.questions)} exercises)"
