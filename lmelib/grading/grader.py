"""Answer keys, student versions, and batch grading into a gradebook.

``build_key`` runs a chapter's solution (the chapter notebook itself) in a
sandbox and records the value of every answer its specification names: the
expected values always come from the solution code.  ``assign`` writes the
key and the student version.  ``grade_batch`` reads and hashes every
submission, decides its chapter from its own metadata (or the instructor's
``--chapter``), runs a copy of it in its own sandbox and kernel
(``runner.run_notebook``), checks the answers against the key in this
process, and after each student rewrites the signed gradebook and writes
that student's feedback (``gradebook``), so a crash in the middle of a batch
leaves complete files holding everyone graded so far; running the same
command again grades only what is not in the gradebook yet, has changed, or
was not written by the grader.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import re
import tempfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import compare
from .gradebook import FINAL_STATUSES, Gradebook, atomic_write, feedback_stem, fmt, row_for
from .notebook import (
    MAX_NOTEBOOK_BYTES,
    SubmissionError,
    claimed_chapter,
    code_cells,
    exercises_in,
    make_student_notebook,
    read_submission,
)
from .runner import run_notebook, staged_lmelib
from .sandbox import Sandbox, SandboxUnavailable, find_sandbox
from .spec import SpecError, load_spec

__all__ = ["build_key", "assign", "grade_submission", "grade_batch", "load_key", "KeyBuildError",
           "choose_key", "find_submissions", "SandboxUnavailable"]

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


def find_submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, path) for every ``*.ipynb`` under ``folder``.

    ``folder/alice.ipynb`` is student ``alice``; ``folder/alice/any.ipynb``
    is also ``alice`` (if a folder holds several notebooks, each is
    ``alice/<name>``).  Checkpoint folders, hidden files and symbolic links
    are skipped.
    """
    folder = Path(folder)
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_symlink() or not p.is_file() or p.suffix.lower() != ".ipynb":
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        found.append((rel, p))
    ids: dict[str, list] = {}
    for rel, p in found:
        sid = rel.stem if len(rel.parts) == 1 else rel.parts[0]
        ids.setdefault(sid, []).append((rel, p))
    out = []
    for sid, items in ids.items():
        if len(items) == 1:
            out.append((sid, items[0][1]))
        else:
            out.extend((str(rel.with_suffix("")), p) for rel, p in items)
    return sorted(out)


# --------------------------------------------------------------------------
# a batch


def _as_keys(keys: dict) -> tuple[dict[str, dict], str | None]:
    """A single key decides the chapter of every submission; a mapping
    {chapter: key} (a key folder) lets each submission's metadata decide."""
    if "questions" in keys:
        return {keys["chapter"]: keys}, keys["chapter"]
    return dict(keys), None


class _Batch:
    """The state of one ``grade_batch`` run: gradebook, feedback, notes."""

    def __init__(self, keys: dict[str, dict], forced: str | None, gradebook: Path, feedback_dir: Path,
                 sandbox: Sandbox | None, key_files: list[Path], log):
        self.keys, self.forced, self.sandbox, self.log = keys, forced, sandbox, log
        labels = [q["label"] for c in sorted(keys) for q in keys[c]["questions"]]
        self.book = Gradebook(gradebook, list(dict.fromkeys(labels)))
        self.feedback_dir = feedback_dir
        self.key_bytes = {Path(p): Path(p).read_bytes() for p in key_files}
        self.feedback_written: dict[Path, bytes] = {}
        self.pending_notes: dict[str, list[str]] = {}
        self.reports: dict[str, dict] = {}

    @property
    def sandbox_name(self) -> str:
        return self.sandbox.name if self.sandbox is not None else "unsandboxed"

    def check_hidden(self, folders: list[Path]) -> None:
        """Refuse to grade if a sandbox could read the grader's files."""
        if self.sandbox is None:
            return
        for f in folders:
            if self.sandbox.exposes(f):
                raise SandboxUnavailable(f"{f} is inside a folder that every sandbox can read "
                                         f"({', '.join(map(str, self.sandbox.visible()))}): move it")

    # -- resuming

    def feedback_paths(self, student: str) -> tuple[Path, Path]:
        stem = feedback_stem(student)
        return self.feedback_dir / f"{stem}.md", self.feedback_dir / f"{stem}.json"

    def feedback_hash(self, student: str) -> str:
        try:
            md, js = (p.read_bytes() for p in self.feedback_paths(student))
        except OSError:
            return ""
        return _sha(md + b"\0" + js)[:16]

    def still_valid(self, old: dict, student: str, path: Path) -> bool:
        """Whether a signed row still holds: final, same file, same key,
        sandboxed as now, and its feedback files unchanged."""
        if old.get("status") not in FINAL_STATUSES:
            return False
        sub = inspect_submission(student, path, self.keys, self.forced)
        key_id = sub.key.get("id", "") if sub.key else ""
        if old.get("sha256") != sub.sha or old.get("key") != key_id:
            return False
        if self.sandbox is not None and old.get("sandbox") != self.sandbox_name:
            return False
        return bool(old.get("feedback_sha256")) and old["feedback_sha256"] == self.feedback_hash(student)

    def plan(self, subs: list[tuple[str, Path]], regrade: bool) -> list[tuple[str, Path]]:
        """The submissions to grade; rows still valid are kept."""
        stems: dict[str, str] = {}
        for student, _ in subs:
            if stems.setdefault(feedback_stem(student), student) != student:
                raise RuntimeError(f"students {student!r} and {stems[feedback_stem(student)]!r} would "
                                   "share a feedback file; rename one")
        existing, forged = self.book.load_existing(keep=not regrade)
        names = {s for s, _ in subs}
        for student in forged:
            note = ("This submission's gradebook row had been changed by something other than the "
                    "grader (its signature did not match), so it was graded again.")
            if student in names:
                self.pending_notes.setdefault(student, []).append(note)
            self.log(f"{student}: gradebook row not written by the grader: "
                     + ("graded again" if student in names else "dropped (see the .bak copy)"))
        todo = []
        for student, path in subs:
            old = existing.get(student)
            if old and self.still_valid(old, student, path):
                self.book.rows[student] = old
            else:
                todo.append((student, path))
        for student, old in existing.items():  # signed rows of files that are gone are kept
            if student not in names:
                self.book.rows[student] = old
        self.book.flush()
        if len(todo) < len(subs):
            self.log(f"{len(subs) - len(todo)} submission(s) already in {self.book.path.name}; "
                     f"grading {len(todo)}")
        return todo

    # -- writing

    def check_tampering(self, running: list[str]) -> None:
        """Restore any of the grader's files that changed; note it for every
        submission that was running since the last check."""
        changed = []
        if self.book.tampered():
            changed.append(self.book.path.name)
            self.book.flush()
        for p, data in [*self.key_bytes.items(), *self.feedback_written.items()]:
            try:
                same = p.read_bytes() == data
            except OSError:
                same = False
            if not same:
                changed.append(p.name)
                atomic_write(p, data, private=p in self.key_bytes)
        if not changed or not running:
            return
        who = "this notebook" if len(running) == 1 else "this notebook or another one graded at the same time"
        note = f"While {who} ran, the grader's file(s) {', '.join(changed)} were changed; they were restored."
        self.log(f"{', '.join(running)}: {note}")
        for student in running:
            self.pending_notes.setdefault(student, []).append(note)

    def finish(self, student: str, report: dict, running: list[str]) -> None:
        self.check_tampering(running)
        report["notes"].extend(self.pending_notes.pop(student, []))
        self.reports[student] = report
        md_path, js_path = self.feedback_paths(student)
        md = feedback_markdown(student, report).encode("utf-8")
        js = (json.dumps({"student": student, **report}, indent=1) + "\n").encode("utf-8")
        for p, data in ((md_path, md), (js_path, js)):
            atomic_write(p, data)
            self.feedback_written[p] = data
        self.book.set(student, row_for(student, report, report["status"], _sha(md + b"\0" + js)[:16]))
        self.log(f"{student}: {fmt(report['total'])} / {fmt(report['possible'])}"
                 + (f"  ({len(report['notes'])} note(s))" if report["notes"] else ""))

    def in_progress(self, student: str, path: Path) -> None:
        placeholder = {"file": str(path), "sha256": "", "chapter": "", "questions": {}, "total": 0.0,
                       "possible": 0.0, "sandbox": self.sandbox_name,
                       "notes": ["grading did not finish: the grader stopped while this notebook ran"]}
        self.book.set(student, row_for(student, placeholder, "in progress"))

    # -- running

    def run(self, todo: list[tuple[str, Path]], jobs: int, task) -> None:
        """Grade ``todo`` with ``task(student, path, slot)``, ``jobs`` at a time."""
        slots: queue.Queue = queue.Queue()
        for i in range(max(jobs, 1)):
            slots.put(i)

        def in_slot(student: str, path: Path) -> dict:
            slot = slots.get()
            try:
                return task(student, path, slot)
            finally:
                slots.put(slot)

        if jobs <= 1:
            for student, path in todo:
                self.in_progress(student, path)
                self.finish(student, in_slot(student, path), [student])
            return
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            pending: dict = {}
            todo = list(todo)
            while todo or pending:
                while todo and len(pending) < jobs:
                    student, path = todo.pop(0)
                    self.check_tampering(list(pending.values()))  # before the gradebook is rewritten
                    self.in_progress(student, path)
                    pending[pool.submit(in_slot, student, path)] = student
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                running = list(pending.values())
                for fut in done:
                    student = pending.pop(fut)
                    self.finish(student, fut.result(), running)
                    running = list(pending.values())


def grade_batch(submissions: Path, keys: dict, gradebook: Path, *, chapter: str | None = None,
                feedback_dir: Path | None = None, lib: Path | None = None, sandbox="auto",
                timeout: float = 900.0, cell_timeout: float = 300.0, jobs: int = 1, regrade: bool = False,
                key_files: list[Path] = (), log=print) -> dict[str, dict]:
    """Grade every notebook in ``submissions``; return student -> report.

    ``keys`` is one answer key (every submission is graded with it) or a
    mapping chapter -> key (each submission's metadata chooses, see
    :func:`choose_key`); ``chapter`` forces one of them.  ``sandbox`` is
    ``"auto"`` (find and check bubblewrap, raise SandboxUnavailable without
    it), a :class:`Sandbox`, or None to grade without one (every row is
    marked ``unsandboxed``).
    """
    keys, forced = _as_keys(keys)
    if chapter is not None:
        if chapter not in keys:
            raise ValueError(f"no answer key for chapter {chapter!r} (keys: {', '.join(sorted(keys))})")
        forced = chapter
    gradebook = Path(gradebook).resolve()
    feedback_dir = Path(feedback_dir).resolve() if feedback_dir else gradebook.with_name(
        gradebook.stem + "_feedback")
    with tempfile.TemporaryDirectory(prefix="lmelib-grading-lib-") as tmp:
        lib = lib or staged_lmelib(Path(tmp) / "lib")
        if sandbox == "auto":
            sandbox = find_sandbox(lib)
        batch = _Batch(keys, forced, gradebook, feedback_dir, sandbox, list(key_files), log)
        batch.check_hidden([gradebook.parent, feedback_dir, Path(submissions).resolve(),
                            *[Path(p).resolve() for p in key_files]])
        todo = batch.plan(find_submissions(Path(submissions)), regrade)

        def task(student: str, path: Path, slot: int) -> dict:
            sub = inspect_submission(student, path, keys, forced)
            try:
                return grade_submission(sub, lib=lib, sandbox=sandbox, timeout=timeout,
                                        cell_timeout=cell_timeout, slot=slot)
            except Exception as exc:  # noqa: BLE001 - a grader bug must not stop the batch
                return grade_failure(sub, exc, sandbox)

        batch.run(todo, jobs, task)
    batch.book.flush()
    return batch.reports
