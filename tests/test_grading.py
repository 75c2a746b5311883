"""Tests of lmelib.grading: student versions, instant checks, offline grading.

A tiny synthetic chapter (made in a temporary folder, so nbval never sees
it) is turned into a student version and an answer key; then a batch of
crafted submissions (correct, blank, equivalent answers, raising, looping,
hanging, kernel-killing, deleted and reordered cells, invalid JSON, an empty
file, reading the key at its path, overwriting the gradebook and the key) is
graded and every score is checked exactly.  One real chapter
(03_random_intercept, the quickest) is graded too: its solution scores full
marks and its blank student version zero.  Everything runs in the bubblewrap
sandbox, which these tests require (CI installs it); the attacks of issue 16
are in ``test_grading_attacks.py``.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import nbformat
import pytest

from lmelib.grading import Checker, compare
from lmelib.grading.capture import encode, snapshot
from lmelib.grading.gradebook import feedback_stem
from lmelib.grading.batch import find_submissions, grade_batch
from lmelib.grading.grader import assign, load_key
from lmelib.grading.notebook import SubmissionError, make_student_notebook, read_submission
from lmelib.grading.runner import run_notebook, staged_lmelib
from lmelib.grading.sandbox import find_sandbox
from lmelib.grading.spec import SpecError, book_dir, load_spec

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

# ---------------------------------------------------------------------------
# a tiny chapter: three exercises, 6 points

SETUP = """\
import numpy as np
import pandas as pd
data = pd.DataFrame({"g": pd.Categorical(["a", "b", "a", "c"]), "y": [1.0, 2.0, 3.0, 5.0]})"""

TINY_CELLS = [
    ("markdown", "# A tiny chapter\n\n## Overview\n\nFour numbers in three groups."),
    ("code", SETUP),
    ("markdown", textwrap.dedent("""\
        (tiny-exercises)=
        ## Exercises

        ```{exercise}
        :label: ex-mean

        Compute the mean of `y` as `y_mean`.
        ```

        ```{solution-start} ex-mean
        :class: dropdown
        ```""")),
    ("code", 'y_mean = data["y"].mean()'),
    ("markdown", textwrap.dedent("""\
        ```{solution-end}
        ```

        ```{exercise}
        :label: ex-groups

        Store the group means of `y` as the Series `g_means`, the group with the
        largest mean as `top_g` and the number of groups as `n_g`.
        ```

        ```{solution-start} ex-groups
        :class: dropdown
        ```

        SOLUTION PROSE: group with `groupby`.""")),
    ("code", 'g_means = data.groupby("g", observed=True)["y"].mean()\ntop_g = g_means.idxmax()\nn_g = len(g_means)'),
    ("markdown", textwrap.dedent("""\
        ```{solution-end}
        ```

        ```{exercise}
        :label: ex-frame

        Tabulate the mean and count of `y` by group as the DataFrame `summary`,
        and write a function `scale(x)` that doubles its argument.
        ```

        ```{solution-start} ex-frame
        :class: dropdown
        ```""")),
    ("code", 'summary = data.groupby("g", observed=True)["y"].agg(["mean", "count"])\n'
             "def scale(x):\n    return 2 * x"),
    ("markdown", "SOLUTION PROSE: agg takes a list.\n\n```{solution-end}\n```\n\nThat is all."),
]

TINY_SPEC = """\
chapter: 99_tiny.ipynb
questions:
  ex-mean:
    answers:
      y_mean: float
  ex-groups:
    points: 3
    answers:
      g_means: series
      top_g: str
      n_g: int
  ex-frame:
    points: 2
    answers:
      summary: frame
      scale_3: {kind: float, expr: "scale(3.0)"}
    stub: |
      summary = ...  # a DataFrame
      def scale(x):
          ...
"""

FULL = {  # correct answers, written in equivalent forms
    "ex-mean": 'y_mean = np.float64(data["y"].to_numpy().mean())',
    "ex-groups": ('g_means = data.groupby("g", observed=True)[["y"]].mean()  # a one-column frame\n'
                  'top_g = data.groupby("g", observed=True)["y"].mean().idxmax()  # a category label\n'
                  "n_g = 3.0"),
    "ex-frame": ('summary = data.groupby("g", observed=True)["y"].agg(["count", "mean"]).iloc[::-1]\n'
                 "def scale(x):\n    return x + x"),
}

CELL_TIMEOUT = 10  # the setup cell imports lmelib: seconds on a busy machine
TIMEOUT = 120


def _make_book(root: Path) -> Path:
    book = root / "book"
    (book / "exercises").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, (kind, src) in enumerate(TINY_CELLS):
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(src)
        cell.id = f"tiny-{i}"
        nb.cells.append(cell)
    nbformat.write(nb, book / "99_tiny.ipynb")
    (book / "exercises" / "99_tiny.yml").write_text(TINY_SPEC)
    return book


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return staged_lmelib(tmp_path_factory.mktemp("lib") / "lib")


@pytest.fixture(scope="module")
def sandbox(lib):
    """The bubblewrap sandbox; CI runs as root and installs it (.ci/run), so
    its absence fails these tests rather than skipping them."""
    return find_sandbox(lib)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, lib, sandbox):
    root = tmp_path_factory.mktemp("tiny")
    book = _make_book(root)
    out = root / "dist"
    nb_path, key_path, warnings = assign(book / "99_tiny.ipynb", book / "exercises" / "99_tiny.yml", out,
                                         book=book, lib=lib, sandbox=sandbox, timeout=TIMEOUT)
    assert warnings == []
    return {"root": root, "book": book, "student": nb_path, "key_path": key_path,
            "key": load_key(key_path)}


def _answer_cell(nb, label: str, role: str = "answer") -> int:
    for i, c in enumerate(nb.cells):
        meta = c.metadata.get("lmelib_grading", {})
        if meta.get("role") == role and meta.get("question") == label:
            return i
    raise KeyError(label)


def _filled(student_path: Path, answers: dict) -> nbformat.NotebookNode:
    nb = nbformat.read(student_path, as_version=4)
    for label, src in answers.items():
        nb.cells[_answer_cell(nb, label)].source = src
    return nb


# ---------------------------------------------------------------------------
# the student version and the key


def test_student_version_has_no_solutions(tiny):
    nb = nbformat.read(tiny["student"], as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "SOLUTION PROSE" not in text
    assert "solution-start" not in text and "solution-end" not in text
    assert 'data["y"].mean()' not in text and "agg([" not in text
    assert "That is all." in text  # prose after a solution is kept
    # one setup cell, then per exercise: the exercise, an answer cell, a check cell
    roles = [c.metadata.get("lmelib_grading", {}).get("role") for c in nb.cells]
    assert roles.count("setup") == 1 and roles.count("answer") == 3 and roles.count("check") == 3
    assert nb.cells[_answer_cell(nb, "ex-mean")].source == "y_mean = ...  # a number"
    assert "def scale(x):" in nb.cells[_answer_cell(nb, "ex-frame")].source
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    assert nb.metadata["lmelib_grading"]["chapter"] == "99_tiny"
    # the visible checks carry no expected values
    setup = nb.cells[roles.index("setup")].source
    assert "expected" not in setup and "2.75" not in setup
    nbformat.validate(nb)


def test_key_values_come_from_the_solution(tiny):
    key = tiny["key"]
    assert (tiny["key_path"].stat().st_mode & 0o077) == 0  # private
    answers = {a["name"]: a for q in key["questions"] for a in q["answers"]}
    assert answers["y_mean"]["expected"] == {"t": "float", "v": 2.75}
    assert answers["g_means"]["structure"] == {"index": ["a", "b", "c"]}
    assert answers["top_g"]["expected"]["v"] == "c"
    assert answers["scale_3"]["expected"] == {"t": "float", "v": 6.0}
    assert answers["summary"]["structure"] == {"index": ["a", "b", "c"], "columns": ["mean", "count"]}


def test_assign_is_reproducible(tiny, tmp_path):
    nb = nbformat.read(tiny["book"] / "99_tiny.ipynb", as_version=4)
    spec = load_spec(tiny["book"] / "exercises" / "99_tiny.yml")
    from lmelib.grading.grader import visible_checks

    again = make_student_notebook(nb, spec, visible_checks(tiny["key"]), tiny["key"]["id"])
    assert nbformat.writes(again) + "\n" == tiny["student"].read_text()


def test_spec_errors(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("chapter: x.ipynb\nquestions:\n  q:\n    answers:\n      a: complex\n")
    with pytest.raises(SpecError, match="kind must be one of"):
        load_spec(bad)
    bad.write_text("chapter: x.ipynb\nquestions:\n  q:\n    answers:\n      not a name: float\n")
    with pytest.raises(SpecError, match="not a Python name"):
        load_spec(bad)


def test_book_specs_match_their_chapters():
    """Every chapter with exercises has a specification in book/exercises that
    names exactly its exercises, and every answer is computed by the solution
    (read from the notebooks, nothing is run)."""
    import re

    from lmelib.grading.notebook import exercises_in

    book = book_dir()
    problems = []
    for nb_path in sorted(book.glob("*.ipynb")):
        exercises = exercises_in(nbformat.read(nb_path, as_version=4))
        spec_file = book / "exercises" / f"{nb_path.stem}.yml"
        if not spec_file.exists():
            if exercises:
                problems.append(f"{nb_path.name} has exercises but no {spec_file.relative_to(book.parent)}")
            continue
        spec = load_spec(spec_file)
        assert spec["chapter"] == nb_path.name
        labels = [q["label"] for q in spec["questions"]]
        problems += [f"{spec_file.name}: exercise {x!r} is not graded (add it)" for x in exercises
                     if x not in labels]
        problems += [f"{spec_file.name}: {x!r} is not an exercise of {nb_path.name}" for x in labels
                     if x not in exercises]
        for q in spec["questions"]:
            code = exercises.get(q["label"], {}).get("solution_code", "")
            problems += [f"{spec_file.name}: the solution of {q['label']!r} does not compute `{a['name']}`"
                         for a in q["answers"] if q["label"] in exercises and a["expr"] is None
                         and not re.search(rf"\b{re.escape(a['name'])}\b", code)]
    for path in sorted((book / "exercises").glob("*.yml")):
        if not (book / load_spec(path)["chapter"]).exists():
            problems.append(f"{path.name}: no chapter {load_spec(path)['chapter']}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# checks on encoded answers, and the instant feedback


def test_equivalent_answers_are_accepted():
    def value_ok(actual, expected, kind, **kw):
        exp = encode(expected)
        structure = compare.structure_of(exp, kind)
        ok_kind = compare.check_kind(encode(actual), kind, structure)[0]
        return ok_kind and compare.check_value(encode(actual), kind, exp, kw.get("rtol", 1e-4),
                                               kw.get("atol", 1e-8))[0]

    s = pd.Series([1.0, 2.0], index=pd.Index(["1", "2"], name="school"))
    assert value_ok(np.float64(0.5), 0.5, "float")
    assert value_ok(np.array([0.5]), 0.5, "float")              # a 1-element array
    assert value_ok(pd.Series([0.5]), 0.5, "float")
    assert value_ok(0.50001, 0.5, "float", rtol=1e-4)
    assert not value_ok(0.51, 0.5, "float")
    assert value_ok(3.0, 3, "int") and value_ok(np.int64(3), 3, "int") and value_ok("3", 3, "int")
    assert not value_ok(3.5, 3, "int")
    assert value_ok(12, "12", "str")                             # a school code as an int
    cat = pd.Categorical(["12", "7"])
    assert value_ok(cat[0], "12", "str")                         # a category label
    assert value_ok(np.bool_(True), True, "bool") and not value_ok(1, True, "bool")
    assert value_ok(s.to_frame(), s, "series")                   # a one-column DataFrame
    assert value_ok(pd.Series([2.0, 1.0], index=[2, 1]), s, "series")  # int labels, other order
    assert value_ok({"1": 1.0, "2": 2.0}, s, "series")
    assert not value_ok(pd.Series([1.0, 2.0], index=["1", "3"]), s, "series")
    assert value_ok(s, s.to_frame("v"), "frame")
    assert value_ok([887, 48], (887, 48), "tuple") and value_ok(np.array([887, 48]), (887, 48), "tuple")
    assert value_ok(float("nan"), float("nan"), "float")
    assert not value_ok("0.5", 0.5, "float")


def test_snapshot_is_plain_json():
    ns = {"a": np.float64(1.5), "b": ..., "f": lambda t: t + 1,
          "big": np.zeros(10**6)}
    out = json.loads(snapshot(ns, {"a": None, "b": None, "c": None, "f2": "f(1)", "boom": "1/0",
                                   "big": None}))
    assert out["a"] == {"t": "float", "v": 1.5}
    assert out["b"] == {"t": "ellipsis"} and out["c"] == {"t": "missing"}
    assert out["f2"] == {"t": "int", "v": 2}
    assert out["boom"]["t"] == "error" and "ZeroDivisionError" in out["boom"]["error"]
    assert out["big"]["t"] == "error"


def test_checker_gives_instant_feedback(tiny):
    nb = nbformat.read(tiny["student"], as_version=4)
    setup = next(c.source for c in nb.cells if c.metadata.get("lmelib_grading", {}).get("role") == "setup")
    ns: dict = {}
    exec(setup, ns)  # noqa: S102 - our own generated cell
    grader = ns["grader"]
    assert isinstance(grader, Checker)
    exec(SETUP, ns)  # noqa: S102
    ns["y_mean"] = ...
    res = grader.check("ex-mean", ns)
    assert not res.passed and "placeholder" in repr(res)
    ns["y_mean"] = 2.0  # wrong, but a number: visible checks pass (values are hidden)
    assert grader.check("ex-mean", ns).passed
    ns.update(g_means=pd.Series([1.0], index=["a"]), top_g="c", n_g=3)
    res = grader.check("ex-groups", ns)
    assert not res.passed and "missing 'b', 'c'" in repr(res)
    assert "<li>" in res._repr_html_()
    assert not grader.check("no-such-exercise", ns).passed


def test_read_submission_rejects_non_notebooks():
    for data, msg in [(b"", "empty"), (b"   \n", "empty"), (b"{not json", "not valid JSON"),
                      (b"[1, 2]", "not a notebook"), (b'{"cells": 3}', "no list of cells"),
                      (b"\xff\xfe\x00", "not UTF-8")]:
        with pytest.raises(SubmissionError, match=msg):
            read_submission(data)
    cells, _ = read_submission(json.dumps({"cells": [
        {"cell_type": "code", "source": ["x = 1\n", "y = 2"]}, {"cell_type": "markdown", "source": "hi"},
        {"cell_type": "code", "source": "   "}]}).encode())
    assert cells == [(0, "x = 1\ny = 2")]


def test_run_notebook_keeps_answers_when_time_runs_out(lib, sandbox):
    cells = [(0, "x = 1"), (1, "import time\ntime.sleep(1)"), (2, "time.sleep(1)"), (3, "time.sleep(1)"),
             (4, "time.sleep(1)"), (5, "y = 2")]
    res = run_notebook(cells, {"x": None, "y": None}, lib=lib, sandbox=sandbox, timeout=3, cell_timeout=30)
    assert res.answers["x"] == {"t": "int", "v": 1}
    assert res.answers["y"] == {"t": "missing"}
    assert res.cells["0"]["status"] == "ok" and res.cells["5"]["status"] == "not-run"


# ---------------------------------------------------------------------------
# a batch of crafted submissions


def _write(nb, path: Path) -> None:
    path.write_text(nbformat.writes(nb))


def _submissions(tiny, folder: Path, gradebook: Path) -> dict[str, int | float]:
    """Write the crafted submissions; return the expected totals."""
    folder.mkdir()
    student = tiny["student"]
    expected = {}

    # the chapter itself (with its solutions) and the blank student version
    (folder / "solution.ipynb").write_bytes((tiny["book"] / "99_tiny.ipynb").read_bytes())
    expected["solution"] = 6
    (folder / "blank.ipynb").write_bytes(student.read_bytes())
    expected["blank"] = 0

    _write(_filled(student, FULL), folder / "full.ipynb")
    expected["full"] = 6

    # one answer raises; the others still count
    _write(_filled(student, {**FULL, "ex-mean": "y_mean = 1 / 0"}), folder / "raises.ipynb")
    expected["raises"] = 5

    # an infinite loop in one answer cell: interrupted after the cell limit
    _write(_filled(student, {**FULL, "ex-groups": "while True:\n    pass"}), folder / "loop.ipynb")
    expected["loop"] = 3

    # a cell that kills its own kernel, and one that ignores the interrupt
    # after the time limit: each time the kernel is killed and the notebook is
    # run again without the offending cell
    nb = _filled(student, FULL)
    nb.cells.insert(_answer_cell(nb, "ex-groups"), nbformat.v4.new_code_cell("import os\nos._exit(3)"))
    nb.cells.insert(_answer_cell(nb, "ex-frame"), nbformat.v4.new_code_cell(
        "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n"
        "        pass"))
    _write(nb, folder / "kernel.ipynb")
    expected["kernel"] = 6

    # the last cell kills the process that runs the kernel: what was recorded
    # after each cell counts; the function answer (scale_3, read at the end) is lost
    nb = _filled(student, FULL)
    nb.cells.append(nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"))
    _write(nb, folder / "killer.ipynb")
    expected["killer"] = 5

    # deleted answer cells (ex-frame's answer and check)
    nb = _filled(student, FULL)
    i = _answer_cell(nb, "ex-frame")
    del nb.cells[i:i + 2]
    _write(nb, folder / "deleted.ipynb")
    expected["deleted"] = 4

    # reordered: ex-mean's answer moved above the cell that loads the data;
    # ex-frame's answer moved above ex-groups' (still fine)
    nb = _filled(student, FULL)
    mean_cell = nb.cells.pop(_answer_cell(nb, "ex-mean"))
    nb.cells.insert(0, mean_cell)
    frame_cell = nb.cells.pop(_answer_cell(nb, "ex-frame"))
    nb.cells.insert(_answer_cell(nb, "ex-groups"), frame_cell)
    _write(nb, folder / "reordered.ipynb")
    expected["reordered"] = 5

    (folder / "invalid.ipynb").write_text('{"cells": [ {"cell_type": "code", "source": "y_mean = 2.75"')
    expected["invalid"] = 0
    (folder / "empty.ipynb").write_bytes(b"")
    expected["empty"] = 0

    # tries to read the key where the grader keeps it (its absolute path, as if
    # guessed) and in guessed relative places, then overwrites the gradebook and
    # the key: in the sandbox none of them exists; only its answer to ex-mean is lost
    nb = _filled(student, {**FULL, "ex-mean": textwrap.dedent(f"""\
        import json
        from pathlib import Path
        for guess in [{str(tiny["key_path"])!r}, "../autograder/99_tiny.json", "autograder/99_tiny.json",
                      "../book/exercises/99_tiny.yml"]:
            key = json.loads(Path(guess).read_text())
        y_mean = key["questions"][0]["answers"][0]["expected"]["v"]"""),
        "ex-groups": textwrap.dedent(f"""\
        for p in [{str(gradebook)!r}, {str(tiny["key_path"])!r}, "gradebook.csv", "../gradebook.csv"]:
            try:
                Path(p).write_text("student,total\\nhostile,1000\\n")
            except OSError:
                pass
        """) + FULL["ex-groups"]})
    _write(nb, folder / "hostile.ipynb")
    expected["hostile"] = 5
    return expected


@pytest.fixture(scope="module")
def batch(tiny, tmp_path_factory, lib, sandbox):
    root = tmp_path_factory.mktemp("batch")
    gradebook = root / "out" / "gradebook.csv"
    expected = _submissions(tiny, root / "subs", gradebook)
    key_bytes = tiny["key_path"].read_bytes()
    reports = grade_batch(root / "subs", tiny["key"], gradebook, lib=lib, sandbox=sandbox, timeout=TIMEOUT,
                          cell_timeout=CELL_TIMEOUT, jobs=2, key_files=[tiny["key_path"]], log=lambda m: None)
    return {"root": root, "gradebook": gradebook, "expected": expected, "reports": reports,
            "key_bytes": key_bytes}


def _rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def test_batch_scores_exactly(batch):
    rows = _rows(batch["gradebook"])
    assert set(rows) == set(batch["expected"])
    got = {s: float(r["total"]) for s, r in rows.items()}
    assert got == {s: float(v) for s, v in batch["expected"].items()}
    assert all(r["status"] == "graded" and r["possible"] == "6" for r in rows.values()
               if r["student"] not in ("invalid", "empty"))
    assert rows["invalid"]["status"] == rows["empty"]["status"] == "unreadable"
    assert all(r["sandbox"] == "bubblewrap" and r["chapter"] == "99_tiny" for r in rows.values())
    # per question
    assert rows["raises"]["ex-mean"] == "0" and rows["raises"]["ex-groups"] == "3"
    assert rows["loop"]["ex-groups"] == "0" and rows["loop"]["ex-frame"] == "2"
    assert rows["deleted"]["ex-frame"] == "0" and rows["deleted"]["ex-mean"] == "1"


def _feedback(batch, student: str, suffix: str = ".md") -> str:
    return (batch["gradebook"].parent / "gradebook_feedback" / f"{feedback_stem(student)}{suffix}").read_text()


def test_feedback_explains_what_failed(batch):
    assert "6 of 6 points" in _feedback(batch, "full")
    fb = _feedback(batch, "raises")
    assert "raised ZeroDivisionError: division by zero" in fb
    assert "FAILED (visible check): `y_mean` is not defined" in fb
    assert "passed (hidden check): `top_g` has the expected value" in fb
    assert "time limit per cell" in _feedback(batch, "loop")
    fb = _feedback(batch, "kernel")
    assert "did not stop when it was interrupted" in fb and "kernel died" in fb
    assert fb.count("run again from the top in a new kernel without this cell") == 2
    assert "not valid JSON" in _feedback(batch, "invalid")
    assert "the file is empty" in _feedback(batch, "empty")
    fb = _feedback(batch, "killer")
    assert "stopped by the submission" in fb and "`scale(3.0)` is not defined" in fb
    fb = _feedback(batch, "reordered")
    assert "NameError" in fb and "`y_mean` is not defined" in fb
    blank = _feedback(batch, "blank")
    assert "still the placeholder `...`" in blank and "Running your notebook" not in blank
    report = json.loads(_feedback(batch, "raises", ".json"))
    assert report["questions"]["ex-mean"]["points"] == 0


def test_the_key_and_gradebook_are_out_of_reach(batch, tiny):
    """The hostile notebook found no key at its absolute path and could not
    overwrite the gradebook or the key: nothing had to be restored."""
    assert tiny["key_path"].read_bytes() == batch["key_bytes"]
    rows = _rows(batch["gradebook"])
    assert rows["hostile"]["total"] == "5" and len(rows) == len(batch["expected"])
    fb = _feedback(batch, "hostile")
    assert "FileNotFoundError" in fb and "5 of 6 points" in fb
    assert "restored" not in fb


def test_grading_is_reproducible_and_resumable(batch, tiny, lib, sandbox):
    gradebook = batch["gradebook"]
    first = gradebook.read_bytes()
    fb_dir = gradebook.parent / "gradebook_feedback"
    # run again on the same gradebook: nothing to do, nothing lost
    grade_batch(batch["root"] / "subs", tiny["key"], gradebook, lib=lib, sandbox=sandbox, timeout=TIMEOUT,
                cell_timeout=CELL_TIMEOUT, key_files=[tiny["key_path"]], log=lambda m: None)
    assert gradebook.read_bytes() == first
    # regrade a few submissions from scratch into a new gradebook: same rows and feedback
    subs2 = batch["root"] / "subs2"
    subs2.mkdir()
    for name in ["raises", "invalid"]:
        (subs2 / f"{name}.ipynb").write_bytes((batch["root"] / "subs" / f"{name}.ipynb").read_bytes())
    gb2 = batch["root"] / "again" / "gradebook.csv"
    grade_batch(subs2, tiny["key"], gb2, lib=lib, sandbox=sandbox, timeout=TIMEOUT, cell_timeout=CELL_TIMEOUT,
                jobs=2, log=lambda m: None)
    rows1, rows2 = _rows(gradebook), _rows(gb2)
    varying = ("file", "signature", "feedback_sha256")  # paths, and each gradebook's own secret
    for name in ["raises", "invalid"]:
        a = {k: v for k, v in rows1[name].items() if k not in varying}
        b = {k: v for k, v in rows2[name].items() if k not in varying}
        assert a == b
        fb = f"{feedback_stem(name)}.md"
        assert (fb_dir / fb).read_text() == (gb2.parent / "gradebook_feedback" / fb).read_text()


def test_a_crash_mid_batch_leaves_a_whole_gradebook(tiny, tmp_path, monkeypatch):
    """The grader itself dies on the third notebook: the gradebook on disk
    holds the first two, and running again grades only the rest."""
    from lmelib.grading import grader as grader_mod

    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ["a", "b", "c", "d"]:
        (subs / f"{name}.ipynb").write_bytes(tiny["student"].read_bytes())
    calls = []

    def fake(sub, **kw):
        calls.append(sub.path.stem)
        if sub.path.stem == "c" and len(calls) == 3:
            raise KeyboardInterrupt  # the instructor's Ctrl-C, or the grader killed
        return grader_mod._report(sub.key, str(sub.path), sub.sha, {"y_mean": {"t": "float", "v": 2.75}},
                                  [], "graded", None)

    monkeypatch.setattr(grader_mod, "grade_submission", fake)
    gb = tmp_path / "gb.csv"
    with pytest.raises(KeyboardInterrupt):
        grade_batch(subs, tiny["key"], gb, lib=tmp_path, sandbox=None, log=lambda m: None)
    rows = _rows(gb)
    assert rows["a"]["total"] == "1" and rows["b"]["total"] == "1"
    assert rows["c"]["status"] == "in progress" and "d" not in rows
    grade_batch(subs, tiny["key"], gb, lib=tmp_path, sandbox=None, log=lambda m: None)
    assert calls == ["a", "b", "c", "c", "d"]
    rows = _rows(gb)
    assert [rows[s]["status"] for s in "abcd"] == ["graded"] * 4
    assert not list(tmp_path.glob(".gb.csv.*.tmp"))  # no temporary files left behind
    # --regrade keeps a copy of the old gradebook
    before = gb.read_bytes()
    grade_batch(subs, tiny["key"], gb, lib=tmp_path, sandbox=None, regrade=True, log=lambda m: None)
    assert (tmp_path / "gb.csv.bak").read_bytes() == before and len(calls) == 9


def test_find_submissions(tmp_path):
    (tmp_path / "alice.ipynb").write_text("{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "hw.ipynb").write_text("{}")
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol" / "v1.ipynb").write_text("{}")
    (tmp_path / "carol" / "v2.ipynb").write_text("{}")
    (tmp_path / "bob" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "bob" / ".ipynb_checkpoints" / "hw-checkpoint.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    assert [s for s, _ in find_submissions(tmp_path)] == ["alice", "bob", "carol/v1", "carol/v2"]


# ---------------------------------------------------------------------------
# a real chapter


def test_real_chapter_solution_full_marks_blank_zero(tmp_path, lib, sandbox):
    book = book_dir()
    chapter = book / "03_random_intercept.ipynb"
    spec = book / "exercises" / "03_random_intercept.yml"
    if not chapter.exists() or not spec.exists():
        pytest.skip("chapter 03 not present")
    nb_path, key_path, warnings = assign(chapter, spec, tmp_path / "dist", book=book, lib=lib, sandbox=sandbox,
                                         timeout=300)
    assert warnings == []
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "solution.ipynb").write_bytes(chapter.read_bytes())
    (subs / "blank.ipynb").write_bytes(nb_path.read_bytes())
    key = load_key(key_path)
    gb = tmp_path / "gradebook.csv"
    grade_batch(subs, key, gb, lib=lib, sandbox=sandbox, timeout=300, cell_timeout=120, jobs=2,
                log=lambda m: None)
    rows = _rows(gb)
    possible = sum(q["points"] for q in key["questions"])
    assert float(rows["solution"]["total"]) == possible
    assert float(rows["blank"]["total"]) == 0
    assert rows["blank"]["notes"] == ""  # the blank notebook runs without errors


def test_a_kernel_that_cannot_start_is_a_grader_error(tiny, tmp_path, lib, sandbox):
    """Not the student's fault: the row says `error`, and the next run grades it again."""
    import shutil

    broken = tmp_path / "broken-lib"
    shutil.copytree(lib, broken)
    (broken / "ipykernel_launcher.py").write_text("raise SystemExit(1)\n")  # shadows the real one
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "solution.ipynb").write_bytes((tiny["book"] / "99_tiny.ipynb").read_bytes())
    gb = tmp_path / "gb.csv"
    grade_batch(subs, tiny["key"], gb, lib=broken, sandbox=sandbox, timeout=TIMEOUT, log=lambda m: None)
    row = _rows(gb)["solution"]
    assert row["status"] == "error" and row["total"] == "0"
    assert "could not be started" in row["notes"] and "grading machine" in row["notes"]
    grade_batch(subs, tiny["key"], gb, lib=lib, sandbox=sandbox, timeout=TIMEOUT, log=lambda m: None)
    row = _rows(gb)["solution"]
    assert row["status"] == "graded" and row["total"] == "6"
