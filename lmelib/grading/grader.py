"""Answer keys, student versions, and batch grading into a gradebook.

``build_key`` runs a chapter's solution (the chapter notebook itself) in a
sandbox and records the value of every answer its specification names: the
expected values always come from the solution code.  ``assign`` writes the
key and the student version.  ``grade_batch`` runs every submission in its
own sandbox and kernel (``runner.run_notebook``), checks the answers against
the key in this process, and after each student rewrites the gradebook (CSV)
and writes that student's feedback, each atomically (temporary file and
``os.replace``), so a crash in the middle of a batch leaves complete files
holding everyone graded so far; running the same command again grades only
the submissions that are not in the gradebook yet (or have changed).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import nbformat

from . import compare
from .notebook import SubmissionError, code_cells, exercises_in, make_student_notebook, read_submission
from .runner import run_notebook, staged_lmelib
from .spec import SpecError, load_spec

__all__ = ["build_key", "assign", "grade_submission", "grade_batch", "load_key", "KeyBuildError"]

KEY_FORMAT = 1


class KeyBuildError(RuntimeError):
    """The solution did not run cleanly or did not produce its answers."""


# --------------------------------------------------------------------------
# small helpers


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, data: str | bytes, private: bool = False) -> None:
    """Write ``path`` via a temporary file in the same folder and os.replace.

    The file gets the usual permissions (0666 less the umask), or 0600 if
    ``private`` (answer keys).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o600 if private else _MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fmt(x: float) -> str:
    x = round(float(x), 4)
    return str(int(x)) if x.is_integer() else f"{x:g}"


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


def build_key(spec: dict, chapter_path: Path, *, book: Path, lib: Path, timeout: float = 900.0,
              cell_timeout: float = 600.0) -> tuple[dict, list[str]]:
    """Run the solution and return (key, warnings)."""
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
    result = run_notebook(code_cells(nb), every, final_answers=final, lib=lib, files=files,
                          notebook_name=chapter_path.name, timeout=timeout, cell_timeout=cell_timeout,
                          max_restarts=0)
    failed = [(i, s) for i, s in result.cells.items() if s.get("status") != "ok"]
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
           timeout: float = 900.0) -> tuple[Path, Path, list[str]]:
    """Write ``out/autograder/<chapter>.json`` and ``out/student/<chapter>.ipynb``."""
    spec = load_spec(spec_file)
    key, warnings = build_key(spec, chapter_path, book=book, lib=lib, timeout=timeout)
    nb = nbformat.read(chapter_path, as_version=4)
    student = make_student_notebook(nb, spec, visible_checks(key), key["id"])
    key_path = Path(out) / "autograder" / f"{spec['name']}.json"
    nb_path = Path(out) / "student" / f"{spec['name']}.ipynb"
    atomic_write(key_path, json.dumps(key, indent=1) + "\n", private=True)
    atomic_write(nb_path, nbformat.writes(student) + "\n")
    return nb_path, key_path, warnings


# --------------------------------------------------------------------------
# grading one submission


def _first_line(src: str) -> str:
    for line in src.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            line = line.strip()
            return line if len(line) <= 60 else line[:57] + "..."
    return ""


def grade_answers(key: dict, answers: dict) -> dict:
    """Per-question results for encoded ``answers`` (name -> encoding)."""
    out = {}
    for q in key["questions"]:
        total_w = sum(a["weight"] for a in q["answers"])
        q_res = {"possible": q["points"], "points": 0.0, "answers": []}
        for a in q["answers"]:
            possible = q["points"] * a["weight"] / total_w
            enc = answers.get(a["name"], {"t": "missing"})
            if not isinstance(enc, dict) or "t" not in enc:
                enc = {"t": "error", "error": "unreadable"}
            shown = f"`{a['expr']}`" if a["expr"] else f"`{a['name']}`"
            checks = []
            if enc["t"] in ("missing", "ellipsis", "error"):
                why = compare.describe(enc)
                if enc["t"] == "missing":
                    why += (" when the notebook finished: the cell that computes it did not run, "
                            "raised an error, or was deleted")
                checks.append({"check": "answered", "visible": True, "passed": False,
                               "message": f"{shown} is {why}"})
            else:
                ok, msg = compare.check_kind(enc, a["kind"], a["structure"])
                checks.append({"check": "kind", "visible": True, "passed": ok, "message": f"{shown} {msg}"})
                if ok and a["structure"]:
                    ok, msg = compare.check_structure(enc, a["kind"], a["structure"], a["ordered"])
                    checks.append({"check": "structure", "visible": True, "passed": ok,
                                   "message": f"{shown} {msg}"})
                if ok:
                    ok, msg = compare.check_value(enc, a["kind"], a["expected"], a["rtol"], a["atol"],
                                                  a["ordered"])
                    checks.append({"check": "value", "visible": False, "passed": ok,
                                   "message": f"{shown} {msg}"})
            passed = all(c["passed"] for c in checks)
            earned = possible if passed else 0.0
            q_res["points"] += earned
            q_res["answers"].append({"name": a["name"], "possible": round(possible, 6),
                                     "points": round(earned, 6), "checks": checks})
        q_res["points"] = round(q_res["points"], 6)
        out[q["label"]] = q_res
    return out


def grade_submission(path: Path, key: dict, *, lib: Path, timeout: float = 900.0,
                     cell_timeout: float = 300.0, hide: list[str] | None = None) -> dict:
    """Run one submitted notebook and grade it; never raises for a bad submission."""
    notes: list[str] = []
    answers: dict = {}
    sha = ""
    status = "graded"
    try:
        data = Path(path).read_bytes()
        sha = _sha(data)
        cells, meta = read_submission(data)
    except (OSError, SubmissionError) as exc:
        notes.append(f"The notebook could not be graded: {exc}.  Every question scores 0.")
        cells, meta = None, {}
    if cells is not None:
        claimed = (meta.get("lmelib_grading") or {}).get("chapter") if isinstance(
            meta.get("lmelib_grading"), dict) else None
        if claimed and claimed != key["chapter"]:
            notes.append(f"This notebook says it is for chapter {claimed!r}; it was graded as "
                         f"{key['chapter']!r}.")
        if not cells:
            notes.append("The notebook has no code cells.")
        files = {k: base64.b64decode(v) for k, v in key.get("files", {}).items()}
        every, final = _answer_keys(key["questions"])
        result = run_notebook(cells, every, final_answers=final, lib=lib, files=files,
                              notebook_bytes=data, notebook_name=Path(path).name,
                              timeout=timeout, cell_timeout=cell_timeout, hide=hide)
        answers = result.answers
        sources = dict(cells)
        cell_notes = []
        for idx, state in sorted(result.cells.items(), key=lambda kv: int(kv[0])):
            cstatus = state.get("status")
            if cstatus == "ok":
                continue
            where = f"Cell {int(idx) + 1}"
            first = _first_line(sources.get(int(idx), ""))
            if first:
                where += f" (`{first}`)"
            if cstatus == "error":
                cell_notes.append(f"{where} raised {state.get('ename')}: {state.get('evalue')}")
            elif cstatus == "timeout":
                cell_notes.append(f"{where} ran longer than the time limit per cell "
                                  f"({state.get('evalue')}) and was interrupted")
            elif cstatus == "not-run":
                cell_notes.append(f"{where} was not run: the notebook's time limit ({timeout:g} s) "
                                  "was used up")
            elif cstatus == "skipped":
                cell_notes.append(f"{where}: {state.get('evalue')}; the notebook was run again from "
                                  "the top in a new kernel without this cell")
            elif cstatus in ("killed-kernel", "hung"):
                cell_notes.append(f"{where}: {state.get('evalue')}; the cells after it were not run")
        if len(cell_notes) > 25:
            cell_notes = cell_notes[:25] + [f"... and {len(cell_notes) - 25} more cells"]
        notes.extend(cell_notes)
        grader_errors = [e for e in result.events if e.startswith("GRADER ERROR: ")]
        notes.extend(e[0].upper() + e[1:] for e in result.events if e and e not in grader_errors)
        for e in grader_errors:
            e = e.removeprefix("GRADER ERROR: ")
            notes.append(e[0].upper() + e[1:] + " (the grader runs this notebook again when the "
                         "command is repeated)")
        if grader_errors:
            status = "error"
    questions = grade_answers(key, answers)
    total = round(sum(q["points"] for q in questions.values()), 6)
    possible = round(sum(q["possible"] for q in questions.values()), 6)
    return {"file": str(path), "sha256": sha, "chapter": key["chapter"], "key": key.get("id", ""),
            "questions": questions, "total": total, "possible": possible, "notes": notes,
            "status": status}


# --------------------------------------------------------------------------
# feedback and gradebook


def feedback_markdown(student: str, report: dict) -> str:
    lines = [f"# Feedback for {student}: {report['chapter']}", "",
             f"Total: {_fmt(report['total'])} of {_fmt(report['possible'])} points.", ""]
    if report["notes"]:
        lines += ["## Running your notebook", ""]
        lines += [f"- {n}" for n in report["notes"]]
        lines.append("")
    for label, q in report["questions"].items():
        lines += [f"## {label}: {_fmt(q['points'])} of {_fmt(q['possible'])} points", ""]
        for a in q["answers"]:
            lines.append(f"- `{a['name']}`: {_fmt(a['points'])} of {_fmt(a['possible'])} points")
            for c in a["checks"]:
                mark = "passed" if c["passed"] else "FAILED"
                kind = "visible check" if c["visible"] else "hidden check"
                lines.append(f"  - {mark} ({kind}): {c['message']}")
        lines.append("")
    return "\n".join(lines)


def _short_notes(report: dict) -> str:
    notes = report["notes"]
    if not notes:
        return ""
    first = notes[0]
    return first if len(notes) == 1 else f"{first} (+{len(notes) - 1} more, see feedback)"


class Gradebook:
    """Rows in memory; the CSV on disk is rewritten whole after every change."""

    def __init__(self, path: Path, labels: list[str]):
        self.path = Path(path)
        self.labels = labels
        self.rows: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.written: bytes | None = None

    @property
    def header(self) -> list[str]:
        return ["student", *self.labels, "total", "possible", "status", "notes", "file", "sha256", "key"]

    def load_existing(self, keep: bool) -> dict[str, dict]:
        """Rows of an existing gradebook with the same questions (for resuming).

        An existing file that is not resumed (``keep`` false, or other
        questions) is first copied to ``<name>.bak`` (``.bak1``, ...), so
        nothing graded before is lost.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return {}
        rows = list(csv.DictReader(io.StringIO(text)))
        if keep and rows and list(rows[0].keys()) == self.header:
            return {r["student"]: r for r in rows}
        n = 0
        while (backup := self.path.with_name(self.path.name + (f".bak{n}" if n else ".bak"))).exists():
            n += 1
        atomic_write(backup, text)
        return {}

    def render(self) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.header)
        for student in sorted(self.rows):
            r = self.rows[student]
            w.writerow([r.get(h, "") for h in self.header])
        return buf.getvalue().encode("utf-8")

    def set(self, student: str, row: dict) -> None:
        with self.lock:
            self.rows[student] = row
            self.flush()

    def flush(self) -> None:
        data = self.render()
        atomic_write(self.path, data)
        self.written = data

    def tampered(self) -> bool:
        try:
            return self.written is not None and self.path.read_bytes() != self.written
        except OSError:
            return True


def row_for(student: str, report: dict, status: str = "graded") -> dict:
    row = {"student": student, "total": _fmt(report["total"]), "possible": _fmt(report["possible"]),
           "status": status, "notes": _short_notes(report), "file": report["file"],
           "sha256": report["sha256"], "key": report.get("key", "")}
    for label, q in report["questions"].items():
        row[label] = _fmt(q["points"])
    return row


def find_submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, path) for every ``*.ipynb`` under ``folder``.

    ``folder/alice.ipynb`` is student ``alice``; ``folder/alice/any.ipynb``
    is also ``alice`` (if a folder holds several notebooks, each is
    ``alice/<name>``).  Checkpoint folders and hidden files are skipped.
    """
    folder = Path(folder)
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or p.suffix.lower() != ".ipynb":
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


def _safe_name(student: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"


def grade_batch(submissions: Path, key: dict, gradebook: Path, *, feedback_dir: Path | None = None,
                lib: Path | None = None, timeout: float = 900.0, cell_timeout: float = 300.0,
                jobs: int = 1, regrade: bool = False, key_file: Path | None = None,
                log=print) -> dict[str, dict]:
    """Grade every notebook in ``submissions``; return student -> report."""
    gradebook = Path(gradebook).resolve()
    feedback_dir = Path(feedback_dir).resolve() if feedback_dir else gradebook.with_name(
        gradebook.stem + "_feedback")
    labels = [q["label"] for q in key["questions"]]
    book = Gradebook(gradebook, labels)
    subs = find_submissions(Path(submissions))
    existing = book.load_existing(keep=not regrade)
    todo = []
    for student, path in subs:
        old = existing.get(student)
        try:
            sha = _sha(path.read_bytes())
        except OSError:
            sha = None
        if old and old.get("status") == "graded" and old.get("sha256") == sha and \
                old.get("key") == key.get("id", "") and (feedback_dir / f"{_safe_name(student)}.md").exists():
            book.rows[student] = old
        else:
            todo.append((student, path))
    # rows of students whose files are gone are kept (nothing graded is lost)
    for student, old in existing.items():
        if student not in book.rows and student not in dict(todo):
            book.rows[student] = old
    book.flush()
    if len(todo) < len(subs):
        log(f"{len(subs) - len(todo)} submission(s) already in {gradebook.name}; grading {len(todo)}")
    key_bytes = Path(key_file).read_bytes() if key_file else None
    feedback_written: dict[Path, bytes] = {}
    reports: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="lmelib-grading-lib-") as tmp:
        lib = lib or staged_lmelib(Path(tmp) / "lib")

        pending_notes: dict[str, list[str]] = {}

        def check_tampering(running: list[str]) -> None:
            """Restore any of the grader's files that changed; note it for every
            submission that was running since the last check."""
            changed = []
            if book.tampered():
                changed.append(gradebook.name)
                book.flush()
            if key_file is not None:
                try:
                    same = Path(key_file).read_bytes() == key_bytes
                except OSError:
                    same = False
                if not same:
                    changed.append(Path(key_file).name)
                    atomic_write(Path(key_file), key_bytes, private=True)
            for p, data in feedback_written.items():
                try:
                    same = p.read_bytes() == data
                except OSError:
                    same = False
                if not same:
                    changed.append(f"{feedback_dir.name}/{p.name}")
                    atomic_write(p, data)
            if not changed or not running:
                return
            who = "this notebook" if len(running) == 1 else \
                "this notebook or another one graded at the same time"
            note = (f"While {who} ran, the grader's file(s) {', '.join(changed)} were changed; "
                    "they were restored.")
            log(f"{', '.join(running)}: {note}")
            for student in running:
                pending_notes.setdefault(student, []).append(note)

        def finish(student: str, report: dict, running: list[str]) -> None:
            check_tampering(running)
            report["notes"].extend(pending_notes.pop(student, []))
            reports[student] = report
            fb = feedback_dir / f"{_safe_name(student)}.md"
            text = feedback_markdown(student, report).encode("utf-8")
            atomic_write(fb, text)
            feedback_written[fb] = text
            js = feedback_dir / f"{_safe_name(student)}.json"
            jtext = (json.dumps({"student": student, **report}, indent=1) + "\n").encode("utf-8")
            atomic_write(js, jtext)
            feedback_written[js] = jtext
            book.set(student, row_for(student, report, status=report.get("status", "graded")))
            log(f"{student}: {_fmt(report['total'])} / {_fmt(report['possible'])}"
                + (f"  ({len(report['notes'])} note(s))" if report["notes"] else ""))

        def in_progress(student: str, path: Path) -> None:
            placeholder = {"file": str(path), "sha256": "", "chapter": key["chapter"],
                           "questions": {label: {"points": 0.0} for label in labels},
                           "total": 0.0, "possible": sum(q["points"] for q in key["questions"]),
                           "notes": ["grading did not finish: the grader stopped while this notebook ran"]}
            book.set(student, row_for(student, placeholder, status="in progress"))

        hide = [str(gradebook.parent), str(feedback_dir), str(Path(submissions).resolve())]
        if key_file is not None:
            hide.append(str(Path(key_file).resolve().parent))

        def task(student: str, path: Path) -> dict:
            try:
                return grade_submission(path, key, lib=lib, timeout=timeout, cell_timeout=cell_timeout,
                                        hide=hide)
            except Exception as exc:  # noqa: BLE001 - a grader bug must not stop the batch
                return grade_failure(key, path, exc)

        if jobs <= 1:
            for student, path in todo:
                in_progress(student, path)
                finish(student, task(student, path), [student])
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                pending = {}
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < jobs:
                        student, path = queue.pop(0)
                        check_tampering(list(pending.values()))  # before the gradebook is rewritten
                        in_progress(student, path)
                        pending[pool.submit(task, student, path)] = student
                    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    running = list(pending.values())
                    for fut in done:
                        student = pending.pop(fut)
                        finish(student, fut.result(), running)
                        running = list(pending.values())
    book.flush()
    return reports


def grade_failure(key: dict, path, exc: BaseException) -> dict:
    questions = grade_answers(key, {})
    return {"file": str(path), "sha256": "", "chapter": key["chapter"], "key": key.get("id", ""),
            "questions": questions, "total": 0.0, "possible": sum(q["possible"] for q in questions.values()),
            "notes": [f"The grader failed on this notebook ({type(exc).__name__}: {exc}); "
                      "please report it."], "status": "error"}

