"""Answer keys, student versions, and grading one submission.

``build_key`` runs a chapter's solution (the chapter notebook itself) in a
sandbox and records the value of every answer its specification names: the
expected values always come from the solution code.  ``assign`` writes the
key and the student version.  ``inspect_submission`` reads and hashes a
submitted file before anything of it runs and chooses its key from its own
metadata (``choose_key``); ``grade_submission`` runs a copy of it in its own
sandbox and kernel (``runner.run_notebook``) and checks the answers against
the key in this process.  Batches, the gradebook and resuming are in
``batch``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import compare
from .gradebook import atomic_write, fmt
from .notebook import (
    MAX_NOTEBOOK_BYTES,
    SubmissionError,
    claimed_chapter,
    code_cells,
    exercises_in,
    make_student_notebook,
    read_submission,
)
from .runner import run_notebook
from .sandbox import Sandbox
from .spec import SpecError, load_spec

__all__ = ["build_key", "assign", "grade_submission", "inspect_submission", "load_key", "KeyBuildError",
           "choose_key", "feedback_markdown"]

KEY_FORMAT = 1


class KeyBuildError(RuntimeError):
    """The solution did not run cleanly or did not produce its answers."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _answer_keys(questions: list[dict]) -> tuple[dict, dict]:
    """(read after every cell, read at the end): answer name -> None or expr."""
    every, final = {}, {}
    for q in questions:
        for a in q["answers"]:
            final[a["name"]] = a["expr"]
            if a["expr"] is None:
                every[a["name"]] = None
    return every, final


# --------------------------------------------------------------------------
# keys


def build_key(spec: dict, chapter_path: Path, *, book: Path, lib: Path, sandbox: Sandbox | None,
              timeout: float = 900.0, cell_timeout: float = 600.0) -> tuple[dict, list[str]]:
    """Run the solution (in ``sandbox``, like a submission) and return (key, warnings)."""
    chapter_path = Path(chapter_path)
    source = chapter_path.read_bytes()
    nb = nbformat.reads(source.decode("utf-8"), as_version=4)
    exercises = exercises_in(nb)
    warnings = []
    for q in spec["questions"]:
        if q["label"] not in exercises:
            raise SpecError(f"{spec['name']}: no exercise labelled {q['label']!r} in {chapter_path.name} "
                            f"(its exercises: {', '.join(exercises) or 'none'})")
        code = exercises[q["label"]]["solution_code"]
        for a in q["answers"]:
            if a["expr"] is None and not re.search(rf"\b{re.escape(a['name'])}\b", code):
                warnings.append(f"{q['label']}: the solution code does not mention `{a['name']}`")
    graded = {q["label"] for q in spec["questions"]}
    for label in exercises:
        if label not in graded:
            warnings.append(f"exercise {label!r} has no question in the specification (not graded)")
    files = {}
    for rel in spec["files"]:
        files[rel] = (book / rel).read_bytes()
    every, final = _answer_keys(spec["questions"])
    result = run_notebook(code_cells(nb), every, final_answers=final, lib=lib, sandbox=sandbox,
                          files=files, notebook_name=chapter_path.name, timeout=timeout,
                          cell_timeout=cell_timeout, max_restarts=0)
    failed = [(i, s) for i, s in result.cells.items() if s.get("status") != "ok"]
    if result.grader_error:
        raise KeyBuildError(f"the solution notebook {chapter_path.name} could not be run: "
                            f"{result.grader_error}")
    if failed or result.events:
        lines = [f"cell {int(i) + 1}: {s.get('status')} {s.get('ename', '')} {s.get('evalue', '')}".strip()
                 for i, s in failed[:5]]
        raise KeyBuildError(f"the solution notebook {chapter_path.name} did not run cleanly: "
                            + "; ".join(lines + result.events))
    questions = []
    for q in spec["questions"]:
        answers = []
        for a in q["answers"]:
            enc = result.answers.get(a["name"], {"t": "missing"})
            try:
                structure = compare.structure_of(enc, a["kind"])
            except ValueError as exc:
                raise SpecError(f"{spec['name']}: {q['label']}: answer `{a['name']}`: {exc}") from None
            answers.append({**a, "expected": enc, "structure": structure})
        questions.append({"label": q["label"], "points": q["points"], "stub": q["stub"],
                          "answers": answers})
    key = {"format": KEY_FORMAT, "chapter": spec["name"], "notebook": chapter_path.name,
           "source_sha256": _sha(source), "spec_sha256": spec["sha256"], "questions": questions,
           "files": {k: base64.b64encode(v).decode() for k, v in files.items()}}
    key["id"] = _sha(json.dumps(key, sort_keys=True).encode())[:16]
    return key, warnings


def load_key(path: Path) -> dict:
    key = json.loads(Path(path).read_text(encoding="utf-8"))
    if key.get("format") != KEY_FORMAT or "questions" not in key:
        raise ValueError(f"{path} is not an answer key written by `lmelib.grading assign`")
    return key


def visible_checks(key: dict) -> dict:
    """What the student's notebook may know: kinds and structures, no values."""
    return {"chapter": key["chapter"], "key": key["id"], "questions": {
        q["label"]: {"points": q["points"], "answers": {
            a["name"]: {"kind": a["kind"], "expr": a["expr"], "ordered": a["ordered"],
                        "structure": a["structure"]} for a in q["answers"]}}
        for q in key["questions"]}}


def assign(chapter_path: Path, spec_file: Path, out: Path, *, book: Path, lib: Path,
           sandbox: Sandbox | None, timeout: float = 900.0) -> tuple[Path, Path, list[str]]:
    """Write ``out/autograder/<chapter>.json`` and ``out/student/<chapter>.ipynb``."""
    spec = load_spec(spec_file)
    key, warnings = build_key(spec, chapter_path, book=book, lib=lib, sandbox=sandbox, timeout=timeout)
    nb = nbformat.read(chapter_path, as_version=4)
    student = make_student_notebook(nb, spec, visible_checks(key), key["id"])
    key_path = Path(out) / "autograder" / f"{spec['name']}.json"
    nb_path = Path(out) / "student" / f"{spec['name']}.ipynb"
    atomic_write(key_path, json.dumps(key, indent=1) + "\n", private=True)
    atomic_write(nb_path, nbformat.writes(student) + "\n")
    return nb_path, key_path, warnings


# --------------------------------------------------------------------------
# checking the answers of one submission


def _first_line(src: str) -> str:
    for line in src.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            line = line.strip()
            return line if len(line) <= 60 else line[:57] + "..."
    return ""


def _answer_checks(a: dict, enc: dict) -> list[dict]:
    """The visible and hidden checks of one answer (``enc``, encoded)."""
    shown = f"`{a['expr']}`" if a["expr"] else f"`{a['name']}`"
    if enc["t"] in ("missing", "ellipsis", "error"):
        why = compare.describe(enc)
        if enc["t"] == "missing":
            why += (" when the notebook finished: the cell that computes it did not run, "
                    "raised an error, or was deleted")
        return [{"check": "answered", "visible": True, "passed": False, "message": f"{shown} is {why}"}]
    ok, msg = compare.check_kind(enc, a["kind"], a["structure"])
    checks = [{"check": "kind", "visible": True, "passed": ok, "message": f"{shown} {msg}"}]
    if ok and a["structure"]:
        ok, msg = compare.check_structure(enc, a["kind"], a["structure"], a["ordered"])
        checks.append({"check": "structure", "visible": True, "passed": ok, "message": f"{shown} {msg}"})
    if ok:
        ok, msg = compare.check_value(enc, a["kind"], a["expected"], a["rtol"], a["atol"], a["ordered"])
        checks.append({"check": "value", "visible": False, "passed": ok, "message": f"{shown} {msg}"})
    return checks


def grade_answers(key: dict, answers: dict) -> dict:
    """Per-question results for encoded ``answers`` (name -> encoding)."""
    out = {}
    for q in key["questions"]:
        total_w = sum(a["weight"] for a in q["answers"])
        q_res = {"possible": q["points"], "points": 0.0, "answers": []}
        for a in q["answers"]:
            possible = q["points"] * a["weight"] / total_w
            enc = answers.get(a["name"], {"t": "missing"})
            if not isinstance(enc, dict) or not isinstance(enc.get("t"), str):
                enc = {"t": "error", "error": "unreadable"}
            try:
                checks = _answer_checks(a, enc)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError):
                checks = [{"check": "answered", "visible": True, "passed": False,
                           "message": f"`{a['name']}` could not be read (a malformed answer record)"}]
            earned = possible if all(c["passed"] for c in checks) else 0.0
            q_res["points"] += earned
            q_res["answers"].append({"name": a["name"], "possible": round(possible, 6),
                                     "points": round(earned, 6), "checks": checks})
        q_res["points"] = round(q_res["points"], 6)
        out[q["label"]] = q_res
    return out


def _cell_notes(result, cells: list[tuple[int, str]], timeout: float) -> list[str]:
    sources = dict(cells)
    notes = []
    for idx, state in sorted(result.cells.items(), key=lambda kv: int(kv[0])):
        status = state.get("status")
        if status == "ok":
            continue
        where = f"Cell {int(idx) + 1}"
        first = _first_line(sources.get(int(idx), ""))
        if first:
            where += f" (`{first}`)"
        if status == "error":
            notes.append(f"{where} raised {state.get('ename')}: {state.get('evalue')}")
        elif status == "timeout":
            notes.append(f"{where} ran longer than the time limit per cell ({state.get('evalue')}) "
                         "and was interrupted")
        elif status == "not-run":
            notes.append(f"{where} was not run: the notebook's time limit ({timeout:g} s) was used up")
        elif status == "skipped":
            notes.append(f"{where}: {state.get('evalue')}; the notebook was run again from the top "
                         "in a new kernel without this cell")
        elif status in ("killed-kernel", "hung"):
            notes.append(f"{where}: {state.get('evalue')}; the cells after it were not run")
    if len(notes) > 25:
        notes = notes[:25] + [f"... and {len(notes) - 25} more cells"]
    return notes


def _report(key: dict | None, file: str, sha: str, answers: dict, notes: list[str], status: str,
            sandbox: Sandbox | None) -> dict:
    questions = grade_answers(key, answers) if key else {}
    return {"file": file, "sha256": sha, "chapter": key["chapter"] if key else "",
            "key": key.get("id", "") if key else "", "questions": questions,
            "total": round(sum(q["points"] for q in questions.values()), 6),
            "possible": round(sum(q["possible"] for q in questions.values()), 6),
            "notes": notes, "status": status,
            "sandbox": sandbox.name if sandbox is not None else "unsandboxed"}


# --------------------------------------------------------------------------
# which key a submission is graded with


def choose_key(meta: dict, keys: dict[str, dict], forced: str | None) -> tuple[dict | None, list[str]]:
    """The key for one submission, from its own metadata, and notes on it.

    ``forced`` (the instructor's ``--chapter``, or a single key file) wins;
    a notebook that names another chapter gets a note.  Otherwise the
    notebook's own chapter is used; if it names none (or one without a key)
    and there is exactly one key, that one, with a note; else no key.
    Nothing depends on the other submissions.
    """
    claimed = claimed_chapter(meta)
    if forced is not None:
        notes = [] if claimed in (None, forced) else [
            f"This notebook says it is for chapter {claimed!r}; it was graded as {forced!r}."]
        return keys[forced], notes
    if claimed in keys:
        return keys[claimed], []
    said = "does not say which chapter it is for" if claimed is None else \
        f"says it is for chapter {claimed!r}, which has no answer key here"
    if len(keys) == 1:
        only = next(iter(keys))
        return keys[only], [f"This notebook {said}; it was graded as {only!r}."]
    return None, [f"This notebook {said}, so it was not graded (the instructor can choose one "
                  "with --chapter)."]


@dataclass
class Submission:
    """A submitted file as read (once, before anything of it runs)."""

    student: str
    path: Path
    data: bytes = b""
    sha: str = ""
    cells: list | None = None
    error: str = ""                      # why it is unreadable
    key: dict | None = None
    notes: list = field(default_factory=list)


def inspect_submission(student: str, path: Path, keys: dict[str, dict], forced: str | None) -> Submission:
    """Read, hash and parse a submission; choose its key."""
    sub = Submission(student, Path(path))
    try:
        size = sub.path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise SubmissionError(f"the file is too large to be a notebook ({size // 2**20} MiB)")
        sub.data = sub.path.read_bytes()
        sub.sha = _sha(sub.data)
        sub.cells, meta = read_submission(sub.data)
    except (OSError, SubmissionError) as exc:
        sub.error, meta = str(exc), {}
    if sub.error:
        sub.key = keys[forced] if forced else (next(iter(keys.values())) if len(keys) == 1 else None)
    else:
        sub.key, sub.notes = choose_key(meta, keys, forced)
    return sub


def grade_submission(sub: Submission, *, lib: Path, sandbox: Sandbox | None, timeout: float = 900.0,
                     cell_timeout: float = 300.0, slot: int = 0) -> dict:
    """Run one inspected submission and grade it; never raises for a bad submission."""
    file = str(sub.path)
    if sub.error:
        return _report(sub.key, file, sub.sha, {}, [f"The notebook could not be read: {sub.error}.  "
                                                    "Every question scores 0."], "unreadable", sandbox)
    if sub.key is None:
        return _report(None, file, sub.sha, {}, sub.notes, "no key", sandbox)
    key, notes = sub.key, list(sub.notes)
    if not sub.cells:
        notes.append("The notebook has no code cells.")
    files = {k: base64.b64decode(v) for k, v in key.get("files", {}).items()}
    every, final = _answer_keys(key["questions"])
    result = run_notebook(sub.cells, every, final_answers=final, lib=lib, sandbox=sandbox, files=files,
                          notebook_bytes=sub.data, notebook_name=sub.path.name, timeout=timeout,
                          cell_timeout=cell_timeout, slot=slot)
    notes += _cell_notes(result, sub.cells, timeout)
    notes += [e[0].upper() + e[1:] for e in result.events if e]
    status = "graded"
    if result.grader_error:
        status = "error"
        notes.append(f"The grader failed: {result.grader_error} (it is graded again when the command "
                     "is repeated)")
    return _report(key, file, sub.sha, result.answers, notes, status, sandbox)


def grade_failure(sub: Submission, exc: BaseException, sandbox: Sandbox | None) -> dict:
    return _report(sub.key, str(sub.path), sub.sha, {}, [
        f"The grader failed on this notebook ({type(exc).__name__}: {exc}); please report it."],
        "error", sandbox)


# --------------------------------------------------------------------------
# feedback


def feedback_markdown(student: str, report: dict) -> str:
    chapter = report["chapter"] or "no chapter"
    lines = [f"# Feedback for {student}: {chapter}", "",
             f"Total: {fmt(report['total'])} of {fmt(report['possible'])} points.", ""]
    if report["sandbox"] == "unsandboxed":
        lines += ["(Graded without a sandbox.)", ""]
    if report["notes"]:
        lines += ["## Running your notebook", ""]
        lines += [f"- {n}" for n in report["notes"]]
        lines.append("")
    for label, q in report["questions"].items():
        lines += [f"## {label}: {fmt(q['points'])} of {fmt(q['possible'])} points", ""]
        for a in q["answers"]:
            lines.append(f"- `{a['name']}`: {fmt(a['points'])} of {fmt(a['possible'])} points")
            for c in a["checks"]:
                mark = "passed" if c["passed"] else "FAILED"
                kind = "visible check" if c["visible"] else "hidden check"
                lines.append(f"  - {mark} ({kind}): {c['message']}")
        lines.append("")
    return "\n".join(lines)
