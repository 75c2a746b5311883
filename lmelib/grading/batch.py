"""Grading a folder of submissions into a signed gradebook, resumably.

``grade_batch`` finds the submissions, keeps the gradebook rows that are
still valid (signed by this grader, same file, key, sandbox and feedback),
and grades the rest, ``jobs`` at a time, each in its own sandbox slot
(``grader.grade_submission``).  After each student it writes that student's
feedback and rewrites the gradebook, each atomically (``gradebook``), so a
crash in the middle of a batch leaves complete files holding everyone
graded so far, and running the same command again grades only what is
missing, changed, or was not written by the grader.
"""

from __future__ import annotations

import hashlib
import json
import queue
import tempfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path

from . import grader
from .gradebook import FINAL_STATUSES, Gradebook, atomic_write, feedback_stem, fmt, row_for
from .grader import feedback_markdown, grade_failure, inspect_submission
from .runner import staged_lmelib
from .sandbox import Sandbox, SandboxUnavailable, find_sandbox

__all__ = ["grade_batch", "find_submissions", "SandboxUnavailable"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


def _as_keys(keys: dict) -> tuple[dict[str, dict], str | None]:
    """A single key decides the chapter of every submission; a mapping
    {chapter: key} (a key folder) lets each submission's metadata decide."""
    if "questions" in keys:
        return {keys["chapter"]: keys}, keys["chapter"]
    return dict(keys), None


def _check_feedback_stems(subs: list[tuple[str, Path]]) -> None:
    """Two students whose feedback files would have the same name: an error naming both."""
    stems: dict[str, str] = {}
    for student, _ in subs:
        if stems.setdefault(feedback_stem(student), student) != student:
            raise RuntimeError(f"students {student!r} and {stems[feedback_stem(student)]!r} would "
                               "share a feedback file; rename one")


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
        _check_feedback_stems(subs)
        existing, forged = self.book.load_existing(keep=not regrade)
        names = {s for s, _ in subs}
        self.note_forged(forged, names)
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

    def note_forged(self, forged, names: set[str]) -> None:
        """Rows whose signature did not match: graded again (with a note) or dropped."""
        for student in forged:
            note = ("This submission's gradebook row had been changed by something other than the "
                    "grader (its signature did not match), so it was graded again.")
            if student in names:
                self.pending_notes.setdefault(student, []).append(note)
            self.log(f"{student}: gradebook row not written by the grader: "
                     + ("graded again" if student in names else "dropped (see the .bak copy)"))

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
        slots = _Slots(jobs, task)
        if jobs <= 1:
            for student, path in todo:
                self.in_progress(student, path)
                self.finish(student, slots.grade(student, path), [student])
            return
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            self._run_parallel(list(todo), jobs, pool, slots)

    def _run_parallel(self, todo: list[tuple[str, Path]], jobs: int, pool, slots: "_Slots") -> None:
        """Keep ``jobs`` submissions running; finish each as it completes."""
        pending: dict = {}
        while todo or pending:
            while todo and len(pending) < jobs:
                student, path = todo.pop(0)
                self.check_tampering(list(pending.values()))  # before the gradebook is rewritten
                self.in_progress(student, path)
                pending[pool.submit(slots.grade, student, path)] = student
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            running = list(pending.values())
            for fut in done:
                student = pending.pop(fut)
                self.finish(student, fut.result(), running)
                running = list(pending.values())


class _Slots:
    """The sandbox slots 0 .. jobs − 1: each submission runs in a slot no other one holds."""

    def __init__(self, jobs: int, task):
        self.task, self.free = task, queue.Queue()
        for i in range(max(jobs, 1)):
            self.free.put(i)

    def grade(self, student: str, path: Path) -> dict:
        slot = self.free.get()
        try:
            return self.task(student, path, slot)
        finally:
            self.free.put(slot)


def _choose_keys(keys: dict, chapter: str | None) -> tuple[dict[str, dict], str | None]:
    """The answer keys by chapter, and the chapter forced on every submission (if any)."""
    keys, forced = _as_keys(keys)
    if chapter is None:
        return keys, forced
    if chapter not in keys:
        raise ValueError(f"no answer key for chapter {chapter!r} (keys: {', '.join(sorted(keys))})")
    return keys, chapter


def _grade_one(student: str, path: Path, slot: int, *, keys: dict, forced: str | None, lib: Path,
               sandbox, timeout: float, cell_timeout: float) -> dict:
    """One submission's report; a grader bug becomes that submission's failure, not the batch's."""
    sub = inspect_submission(student, path, keys, forced)
    try:
        return grader.grade_submission(sub, lib=lib, sandbox=sandbox, timeout=timeout,
                                       cell_timeout=cell_timeout, slot=slot)
    except Exception as exc:  # noqa: BLE001 - a grader bug must not stop the batch
        return grade_failure(sub, exc, sandbox)


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
    keys, forced = _choose_keys(keys, chapter)
    gradebook = Path(gradebook).resolve()
    feedback_dir = Path(feedback_dir).resolve() if feedback_dir else gradebook.with_name(
        gradebook.stem + "_feedback")
    with tempfile.TemporaryDirectory(prefix="lmelib-grading-lib-") as tmp:
        lib = lib or staged_lmelib(Path(tmp) / "lib")
        sandbox = find_sandbox(lib) if sandbox == "auto" else sandbox
        batch = _Batch(keys, forced, gradebook, feedback_dir, sandbox, list(key_files), log)
        batch.check_hidden([gradebook.parent, feedback_dir, Path(submissions).resolve(),
                            *[Path(p).resolve() for p in key_files]])
        todo = batch.plan(find_submissions(Path(submissions)), regrade)
        batch.run(todo, jobs, partial(_grade_one, keys=keys, forced=forced, lib=lib, sandbox=sandbox,
                                      timeout=timeout, cell_timeout=cell_timeout))
    batch.book.flush()
    return batch.reports
