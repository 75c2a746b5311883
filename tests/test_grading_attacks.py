"""Hostile submissions against ``lmelib.grading``: each attack of issue 16.

Every test grades tiny notebooks against a hand-made answer key (no chapter
is run), and asserts that the attacker earns no point it did not earn and
that nothing else changes: the other students' rows, files and feedback,
the key, the staged code, the instructor's checkout, the host's processes.

The sandbox (bubblewrap) is required: CI runs as root and installs it
(``.ci/run``), so these tests fail, not skip, where it is missing.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import textwrap
from pathlib import Path

import nbformat
import pytest

import lmelib
from lmelib.grading import compare
from lmelib.grading.capture import encode
from lmelib.grading.gradebook import feedback_stem
from lmelib.grading.batch import grade_batch
from lmelib.grading.grader import choose_key
from lmelib.grading.notebook import SubmissionError, read_submission
from lmelib.grading.runner import run_notebook, staged_lmelib
from lmelib.grading.sandbox import UID_BASE, Limits, SandboxUnavailable, find_sandbox
from lmelib.grading.spec import book_dir, load_spec

TIMEOUT = 60
SECRET_VALUE = 0.6180339887  # the one expected answer: not guessable


def _key(chapter: str, value: float = SECRET_VALUE) -> dict:
    """A one-question key: `x`, a float worth 1 point."""
    answer = {"name": "x", "kind": "float", "expr": None, "rtol": 1e-6, "atol": 0.0, "ordered": False,
              "weight": 1.0, "expected": {"t": "float", "v": value}, "structure": {}}
    key = {"format": 1, "chapter": chapter, "notebook": f"{chapter}.ipynb", "files": {},
           "questions": [{"label": f"{chapter}-q", "points": 1.0, "stub": None, "answers": [answer]}]}
    key["id"] = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return key


def _notebook(*sources: str, chapter: str | None = "98_attack") -> str:
    nb = nbformat.v4.new_notebook()
    if chapter is not None:
        nb.metadata["lmelib_grading"] = {"chapter": chapter}
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(s)) for s in sources]
    return nbformat.writes(nb)


HONEST = f"x = {SECRET_VALUE}"


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return staged_lmelib(tmp_path_factory.mktemp("lib") / "lib")


@pytest.fixture(scope="module")
def sandbox(lib):
    return find_sandbox(lib)


@pytest.fixture()
def course(tmp_path):
    """Where an instructor keeps things: the key, submissions, the gradebook."""
    key = _key("98_attack")
    key_path = tmp_path / "dist" / "autograder" / "98_attack.json"
    key_path.parent.mkdir(parents=True)
    key_path.write_text(json.dumps(key))
    key_path.chmod(0o600)
    subs = tmp_path / "subs"
    subs.mkdir()
    return {"key": key, "key_path": key_path, "subs": subs, "gradebook": tmp_path / "out" / "gradebook.csv"}


def _grade(course, lib, sandbox, keys=None, **kw):
    """Grade the course's submissions; return (reports, log messages)."""
    logs: list[str] = []
    reports = grade_batch(course["subs"], keys or course["key"], course["gradebook"], lib=lib,
                          sandbox=sandbox, timeout=TIMEOUT, cell_timeout=20, key_files=[course["key_path"]],
                          log=logs.append, **kw)
    return reports, logs


def _rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def _feedback(course, student: str) -> str:
    return (course["gradebook"].parent / "gradebook_feedback" / f"{feedback_stem(student)}.md").read_text()


# ---------------------------------------------------------------------------
# what a kernel can see and do inside the sandbox


PROBE = """\
import os, socket
probe = {"uid": os.getuid()}
pids = [p for p in os.listdir("/proc") if p.isdigit()]
probe["npids"] = len(pids)
cmd = []
for p in pids:
    try:
        cmd.append(open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
    except OSError:
        pass
probe["cmdlines"] = " | ".join(cmd)
found = []
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if not (root == "/" and d in ("proc", "sys", "dev", "usr"))]
    found += [os.path.join(root, f) for f in files if f.endswith(("gradebook.csv", "98_attack.json"))
              or "pytest-of" in root]
probe["found"] = found[:20]
def attempt(f):
    try:
        f()
        return "ok"
    except BaseException as exc:
        return type(exc).__name__
probe["read_key"] = attempt(lambda: open(KEY).read())
probe["read_parent_env"] = attempt(lambda: open(f"/proc/{os.getppid()}/environ").read())
probe["write_usr"] = attempt(lambda: open("/usr/lib/x", "w"))
probe["write_lib"] = attempt(lambda: open("/opt/lmelib-grading/lmelib/grading/compare.py", "a"))
probe["write_checkout"] = attempt(lambda: open(CHECKOUT_FILE, "a"))
probe["big_file"] = attempt(lambda: open("big", "wb").write(b"0" * (100 * 2**20)))
probe["memory"] = attempt(lambda: bytearray(6 * 2**30))
probe["network"] = attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
probe["env"] = sorted(os.environ)
"""


def test_the_sandbox_hides_the_grader_and_its_files(lib, sandbox, course):
    """Reading the key via /proc (the grader's cmdline, environ, cwd) or its
    --key path, walking the whole file system, writing outside the scratch
    folder, the network, a huge file, a huge allocation: all fail."""
    checkout_file = Path(lmelib.__file__).resolve().parent / "grading" / "compare.py"
    before = checkout_file.read_bytes()
    cells = [(0, f"KEY = {str(course['key_path'])!r}\nCHECKOUT_FILE = {str(checkout_file)!r}"), (1, PROBE)]
    res = run_notebook(cells, {"probe": None}, lib=lib, sandbox=sandbox, timeout=TIMEOUT, cell_timeout=50)
    assert res.cells["1"]["status"] == "ok", res.cells
    probe = {k: (v["v"] if v["t"] != "list" else [e["v"] for e in v["v"]])
             for k, v in res.answers["probe"]["v"].items()}
    assert probe["uid"] == UID_BASE  # not root, and not the grader's uid
    assert probe["npids"] <= 5  # bwrap's init, the worker, the kernel (and ps-like helpers)
    # the grader's command line (and so its --key) is not among them
    assert "test_grading_attacks" not in probe["cmdlines"] and str(course["key_path"]) not in probe["cmdlines"]
    assert probe["found"] == []
    assert probe["read_key"] == "FileNotFoundError"
    assert probe["read_parent_env"] == "PermissionError"  # the worker is not dumpable
    for k in ("write_usr", "write_lib", "write_checkout"):
        assert probe[k] in ("OSError", "PermissionError", "FileNotFoundError"), (k, probe[k])
    assert probe["big_file"] == "OSError"  # the file-size limit / the scratch tmpfs is full
    assert probe["memory"] == "MemoryError"
    assert probe["network"] == "OSError"
    assert not any("PYTEST" in k or "LMELIB_GRADING" in k for k in probe["env"])
    assert checkout_file.read_bytes() == before


def test_reading_the_key_earns_nothing(lib, sandbox, course):
    """A blank notebook that hunts for the key through /proc and its --key
    path scores 0; the honest student next to it is untouched."""
    (course["subs"] / "honest.ipynb").write_text(_notebook(HONEST))
    (course["subs"] / "thief.ipynb").write_text(_notebook(f"""\
        import json, os
        from pathlib import Path
        paths = [{str(course['key_path'])!r}]
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            try:
                args = Path(f"/proc/{{pid}}/cmdline").read_bytes().split(b"\\0")
                paths += [a.decode() for a in args if a.endswith(b".json")]
                paths.append(os.path.join(os.readlink(f"/proc/{{pid}}/cwd"), "dist/autograder/98_attack.json"))
            except OSError:
                pass
        for p in paths:
            try:
                x = json.loads(Path(p).read_text())["questions"][0]["answers"][0]["expected"]["v"]
            except (OSError, ValueError, KeyError):
                pass
        """))
    _grade(course, lib, sandbox)
    rows = _rows(course["gradebook"])
    assert rows["thief"]["total"] == "0" and rows["honest"]["total"] == "1"
    assert "`x` is not defined" in _feedback(course, "thief")


# ---------------------------------------------------------------------------
# the gradebook: only the grader writes it, and a resume trusts only its rows


def test_a_forged_gradebook_is_regraded_on_resume(lib, sandbox, course):
    (course["subs"] / "honest.ipynb").write_text(_notebook(HONEST))
    (course["subs"] / "forger.ipynb").write_text(_notebook(f"""\
        from pathlib import Path
        for p in [{str(course['gradebook'])!r}, "../gradebook.csv", "/sandbox/../gradebook.csv"]:
            try:
                Path(p).write_text("student,total\\nforger,1\\n")
            except OSError:
                pass
        """))
    _grade(course, lib, sandbox)
    gb = course["gradebook"]
    rows = _rows(gb)
    assert rows["forger"]["total"] == "0" and rows["honest"]["total"] == "1"
    assert "restored" not in _feedback(course, "forger")  # it could not even reach the file
    # someone edits the gradebook by hand: full marks for the forger with its
    # real sha256, zero for the honest student, and a row for nobody
    text = gb.read_text()
    forged = text.replace(",0,1,graded", ",1,1,graded")  # forger: q, total
    lines = forged.splitlines()
    lines = [ln.replace(f"{rows['honest']['98_attack-q']},1,1,graded", "0,0,1,graded")
             if ln.startswith("honest,") else ln for ln in lines]
    lines.append(lines[-1].replace("honest,", "ghost,", 1))
    gb.write_text("\n".join(lines) + "\n")
    assert _rows(gb)["forger"]["total"] == "1" and _rows(gb)["honest"]["total"] == "0"
    _, logs = _grade(course, lib, sandbox)
    rows = _rows(gb)
    assert rows["forger"]["total"] == "0" and rows["honest"]["total"] == "1"
    assert "ghost" not in rows
    assert "signature did not match" in _feedback(course, "forger")
    assert any("ghost" in m and "dropped" in m for m in logs)
    assert (gb.parent / "gradebook.csv.bak").read_text() == "\n".join(lines) + "\n"
    # a third run trusts the rows it wrote: nothing is graded
    _, logs = _grade(course, lib, sandbox)
    assert any("2 submission(s) already in gradebook.csv; grading 0" in m for m in logs)


def test_a_swapped_feedback_file_is_regraded(lib, sandbox, course):
    (course["subs"] / "a.ipynb").write_text(_notebook(HONEST))
    (course["subs"] / "b.ipynb").write_text(_notebook("x = 0"))
    _grade(course, lib, sandbox)
    fb = course["gradebook"].parent / "gradebook_feedback"
    a_md = fb / f"{feedback_stem('a')}.md"
    a_md.write_text(a_md.read_text().replace("1 of 1", "0 of 1"))
    _, logs = _grade(course, lib, sandbox)
    assert any("1 submission(s) already" in m for m in logs)
    assert "Total: 1 of 1" in a_md.read_text()


# ---------------------------------------------------------------------------
# harming others: their files, the staged code, processes left behind


def test_other_submissions_and_the_staged_code_cannot_be_changed(lib, sandbox, course):
    """The attacker (graded first) overwrites the victim's notebook and patches
    the staged grading code and the checkout; the victim still gets full marks."""
    checkout = Path(lmelib.__file__).resolve().parent / "grading" / "capture.py"
    before = {p: p.read_bytes() for p in [checkout, lib / "lmelib" / "grading" / "capture.py"]}
    victim = course["subs"] / "victim.ipynb"
    victim.write_text(_notebook(HONEST))
    victim_bytes = victim.read_bytes()
    (course["subs"] / "attacker.ipynb").write_text(_notebook(f"""\
        import glob, os
        from pathlib import Path
        blank = Path("attacker.ipynb").read_text()
        for p in [{str(victim)!r}, "../victim.ipynb", *glob.glob("/sandbox/**/*.ipynb", recursive=True)]:
            try:
                Path(p).write_text(blank)
            except OSError:
                pass
        import lmelib.grading.capture as cap
        for p in [cap.__file__, {str(checkout)!r}]:
            try:
                with open(p, "a") as fh:
                    fh.write("\\ndef snapshot(*a):\\n    return '{{}}'\\n")
            except OSError:
                pass
        """))
    _grade(course, lib, sandbox, jobs=1)
    rows = _rows(course["gradebook"])
    assert rows["victim"]["total"] == "1" and rows["attacker"]["total"] == "0"
    assert victim.read_bytes() == victim_bytes
    assert all(p.read_bytes() == b for p, b in before.items())


def _host_processes(token: str) -> list[str]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        if token in cmd or UID_BASE <= uid < UID_BASE + 4:
            out.append(f"{pid} (uid {uid}): {cmd}")
    return out


def test_orphans_and_fork_bombs_die_with_the_sandbox(lib, sandbox, course):
    """setsid() children, a double fork and a fork bomb: nothing survives the
    notebook, the bomb is held by the process limit, and the submission
    graded at the same time (another uid) is not starved."""
    small = dataclasses.replace(sandbox, limits=Limits(processes=64))
    (course["subs"] / "bomber.ipynb").write_text(_notebook("""\
        import os, subprocess, sys
        subprocess.Popen(["sleep", "4242.5"], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "4243.5"])
            os._exit(0)
        subprocess.Popen([sys.executable, "-c", "import os, time\\nwhile True:\\n    try:\\n"
                          "        os.fork()\\n    except OSError:\\n        time.sleep(0.2)"],
                         start_new_session=True)
        """, "import time\ntime.sleep(3)", "x = 1.0"))
    (course["subs"] / "neighbour.ipynb").write_text(_notebook("import time\ntime.sleep(2)", HONEST))
    _grade(course, lib, small, jobs=2)
    rows = _rows(course["gradebook"])
    assert rows["neighbour"]["total"] == "1"
    assert rows["bomber"]["total"] == "0" and rows["bomber"]["status"] == "graded"
    assert _host_processes("4242.5") == [] and _host_processes("4243.5") == []


# ---------------------------------------------------------------------------
# names and chapters


def test_feedback_names_are_unique_and_stable():
    names = ["Zoë Ann", "Zoé Ann", "Zoe\u0308 Ann", "王伟", "李娜", "alice", "alice/v1", "..", "a b"]
    stems = [feedback_stem(n) for n in names]
    assert len(set(stems)) == len(names)
    assert stems == [feedback_stem(n) for n in names]  # stable
    assert stems[0].startswith("Zoe_Ann-") and stems[3].startswith("student-")
    assert all("/" not in s and not s.startswith(".") for s in stems)


def test_accent_and_cjk_names_get_their_own_feedback(lib, sandbox, course):
    (course["subs"] / "Zoë Ann.ipynb").write_text(_notebook(HONEST))
    (course["subs"] / "Zoé Ann.ipynb").write_text(_notebook("x = 0.5"))
    (course["subs"] / "王伟.ipynb").write_text(_notebook(HONEST))
    (course["subs"] / "李娜.ipynb").write_text("{not json")
    _grade(course, lib, sandbox)
    rows = _rows(course["gradebook"])
    assert {s: r["total"] for s, r in rows.items()} == {"Zoë Ann": "1", "Zoé Ann": "0", "王伟": "1", "李娜": "0"}
    for student in rows:
        assert _feedback(course, student).startswith(f"# Feedback for {student}:")
    assert len(list((course["gradebook"].parent / "gradebook_feedback").glob("*.md"))) == 4
    _, logs = _grade(course, lib, sandbox)  # resume: every feedback file is its student's own
    assert any("4 submission(s) already" in m for m in logs)


def test_the_chapter_is_chosen_per_submission():
    a, b = _key("98_attack"), _key("97_other", value=2.0)
    keys = {"98_attack": a, "97_other": b}
    meta = {"lmelib_grading": {"chapter": "97_other"}}
    assert choose_key(meta, keys, None) == (b, [])
    key, notes = choose_key(meta, keys, "98_attack")
    assert key is a and "says it is for chapter '97_other'" in notes[0]
    key, notes = choose_key({}, keys, None)
    assert key is None and "does not say" in notes[0]
    key, notes = choose_key({"lmelib_grading": {"chapter": "../../etc/passwd"}}, {"98_attack": a}, None)
    assert key is a and "does not say" in notes[0]


def test_a_folder_of_notebooks_cannot_outvote_the_class(lib, sandbox, course):
    """One student's three notebooks claim another chapter; everyone else is
    still graded with their own chapter's key, the voter with the one its
    notebooks name, and with --chapter the mismatch is a note on the voter only."""
    keys = {"98_attack": course["key"], "97_other": _key("97_other", value=2.0)}
    (course["subs"] / "honest.ipynb").write_text(_notebook(HONEST))
    (course["subs"] / "honest2.ipynb").write_text(_notebook(HONEST))
    voter = course["subs"] / "voter"
    voter.mkdir()
    for i in range(3):
        (voter / f"v{i}.ipynb").write_text(_notebook("x = 2.0", chapter="97_other"))
    _grade(course, lib, sandbox, keys=keys, jobs=2)
    rows = _rows(course["gradebook"])
    assert rows["honest"]["total"] == rows["honest2"]["total"] == "1"
    assert rows["honest"]["chapter"] == "98_attack"
    assert [rows[f"voter/v{i}"]["chapter"] for i in range(3)] == ["97_other"] * 3
    assert [rows[f"voter/v{i}"]["total"] for i in range(3)] == ["1"] * 3  # right for its own chapter
    _grade(course, lib, sandbox, keys=keys, chapter="98_attack", regrade=True, jobs=2)
    rows = _rows(course["gradebook"])
    assert rows["honest"]["total"] == "1" and rows["honest"]["notes"] == ""
    assert rows["voter/v0"]["total"] == "0" and "it was graded as '98_attack'" in rows["voter/v0"]["notes"]


# ---------------------------------------------------------------------------
# malformed notebooks


def test_deep_and_truncated_json_is_unreadable_once(lib, sandbox, course):
    deep = b'{"cells": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(SubmissionError, match="nested too deeply"):
        read_submission(deep)
    (course["subs"] / "deep.ipynb").write_bytes(deep)
    (course["subs"] / "truncated.ipynb").write_text(_notebook(HONEST)[:40])
    _grade(course, lib, sandbox)
    rows = _rows(course["gradebook"])
    for s in ("deep", "truncated"):
        assert rows[s]["status"] == "unreadable" and rows[s]["total"] == "0"
        assert "please report" not in rows[s]["notes"]
    assert "nested too deeply" in rows["deep"]["notes"] and "not valid JSON" in rows["truncated"]["notes"]
    _, logs = _grade(course, lib, sandbox)
    assert any("2 submission(s) already in gradebook.csv; grading 0" in m for m in logs)


# ---------------------------------------------------------------------------
# answers compared as they should be


def _value_ok(actual, expected, kind, rtol=1e-2, atol=1e-8) -> bool:
    exp = encode(expected)
    return compare.check_kind(encode(actual), kind)[0] and \
        compare.check_value(encode(actual), kind, exp, rtol, atol)[0]


def test_pvalues_are_compared_on_the_log_scale():
    corrected, naive = 1.5113535069387947e-26, 3.0227070138775893e-26
    assert _value_ok(corrected, corrected, "pvalue")
    assert _value_ok(corrected * 1.005, corrected, "pvalue")
    assert not _value_ok(naive, corrected, "pvalue")
    assert not _value_ok(0.0, corrected, "pvalue") and not _value_ok(0, corrected, "pvalue")
    assert not _value_ok(1e-30, corrected, "pvalue")
    assert _value_ok(0.2056, 0.20564432829309257, "pvalue") and not _value_ok(0.2938, 0.2056, "pvalue")
    assert not _value_ok(1.2, 1.0, "pvalue") and not _value_ok(-1e-26, corrected, "pvalue")
    assert not _value_ok("1.5e-26", corrected, "pvalue") and not _value_ok(True, 1.0, "pvalue")
    assert _value_ok(0.0, 0.0, "pvalue") and _value_ok(1e-320, 0.0, "pvalue")  # underflow
    # the same answers as plain floats, as the specs had them: everything below atol passed
    assert _value_ok(naive, corrected, "float", rtol=1e-3) and _value_ok(0.0, corrected, "float", rtol=1e-3)


def test_integers_and_bools_are_exact():
    assert not _value_ok(1954, 1953, "int", rtol=1e-3) and _value_ok(1953.0, 1953, "int", rtol=1e-3)
    assert not _value_ok((888, 48), (887, 48), "tuple", rtol=1e-3)
    assert not _value_ok((1, 0), (True, False), "tuple") and _value_ok((True, False), (True, False), "tuple")
    assert not _value_ok(1, True, "bool") and not _value_ok(-0.5, 0.5, "float")


def test_book_specs_grade_pvalues_as_pvalues():
    """The audit of book/exercises: every p-value answer is of kind pvalue,
    and no float answer relies on an absolute tolerance near its value."""
    probabilities = {"p_avg", "p_marg_probit"}  # predicted probabilities, not p-values
    problems = []
    for path in sorted((book_dir() / "exercises").glob("*.yml")):
        for q in load_spec(path)["questions"]:
            for a in q["answers"]:
                looks_like_p = a["name"].startswith("p_") or a["name"].endswith("_p")
                if looks_like_p and a["name"] not in probabilities and a["kind"] != "pvalue":
                    problems.append(f"{path.name}: {a['name']} is a {a['kind']}, not a pvalue")
                if a["kind"] == "pvalue" and not 0 < a["rtol"] < 0.1:
                    problems.append(f"{path.name}: {a['name']}: log-scale tolerance {a['rtol']}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# without the sandbox


def test_without_bwrap_the_grader_refuses(lib, monkeypatch, tmp_path):
    from lmelib.grading import __main__ as cli
    from lmelib.grading import sandbox as sandbox_mod

    monkeypatch.setattr(sandbox_mod.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        find_sandbox(lib)
    (tmp_path / "subs").mkdir()
    key = tmp_path / "k.json"
    key.write_text(json.dumps(_key("98_attack")))
    with pytest.raises(SystemExit, match="apt-get install bubblewrap"):
        cli.main(["grade", str(tmp_path / "subs"), "--key", str(key), "--out", str(tmp_path / "gb.csv")])
    assert not (tmp_path / "gb.csv").exists()


def test_no_sandbox_marks_every_row_and_is_regraded_with_one(lib, sandbox, course):
    """--no-sandbox: the notebook can reach the gradebook (it is restored and
    noted) and every row says `unsandboxed`; a later sandboxed run grades
    those rows again."""
    (course["subs"] / "honest.ipynb").write_text(_notebook(HONEST))
    (course["subs"] / "forger.ipynb").write_text(_notebook(f"""\
        from pathlib import Path
        Path({str(course['gradebook'])!r}).write_text("student,total\\nforger,1\\n")
        """))
    _grade(course, lib, None, jobs=1)
    rows = _rows(course["gradebook"])
    assert {r["sandbox"] for r in rows.values()} == {"unsandboxed"}
    assert rows["forger"]["total"] == "0" and rows["honest"]["total"] == "1"
    assert "were changed; they were restored" in _feedback(course, "forger")
    assert "Graded without a sandbox" in _feedback(course, "honest")
    _, logs = _grade(course, lib, sandbox)
    rows = _rows(course["gradebook"])
    assert {r["sandbox"] for r in rows.values()} == {"bubblewrap"}
    assert not any("already in" in m for m in logs)
