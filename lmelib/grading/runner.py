"""Run a notebook's code in a sandbox, in its own processes, and get its answers.

``run_notebook`` is the one place where submitted code runs.  For every
notebook it

1. makes a fresh temporary directory, the sandbox, holding the notebook
   (``work/``, the kernel's working directory) and a private copy of lmelib
   with its data files (``lib/``, the kernel's ``PYTHONPATH``); the answer
   key, the gradebook and the other submissions are not in it;
2. starts a worker process (``lmelib.grading.worker``) in a new session,
   which starts a fresh kernel in ``work/`` and runs the cells (see the
   worker for the per-cell time limit, interrupts and restarts);
3. waits at most the notebook's time limit plus a grace period, then kills
   the worker and the kernel (and anything the kernel started);
4. reads the worker's result file, written after every cell, so a
   submission that had to be killed keeps what it computed before.

The answers come back as JSON data (``capture.encode``) and are checked
against the key in the grader process; the key never enters the sandbox.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RunResult", "run_notebook", "staged_lmelib"]

_GRACE = 150.0  # kernel start-ups (restarts too) and the final read of the answers


@dataclass
class RunResult:
    answers: dict = field(default_factory=dict)   # key -> encoded answer
    cells: dict = field(default_factory=dict)     # cell index (str) -> state
    events: list = field(default_factory=list)    # notes on the run as a whole


def _lmelib_sources() -> tuple[Path, Path]:
    import lmelib
    from lmelib import datasets

    return Path(lmelib.__file__).resolve().parent, Path(datasets.DATA_DIR).resolve()


def staged_lmelib(dest: Path) -> Path:
    """Copy lmelib and its data to ``dest`` (``dest/lmelib``, ``dest/data``).

    The grader stages one copy when it starts and gives every sandbox a copy
    of that, so a submission that edits files cannot change the code that
    later submissions (or the grader's workers) run.
    """
    pkg, data = _lmelib_sources()
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(pkg, dest / "lmelib", ignore=ignore, dirs_exist_ok=True)
    if data.is_dir():
        shutil.copytree(data, dest / "data", ignore=ignore, dirs_exist_ok=True)
    return dest


def _kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError, OSError):
            pass


def _clean_message(text: str, sandbox: Path) -> str:
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text))
    text = text.replace(str(sandbox / "work"), "<notebook folder>").replace(str(sandbox), "<sandbox>")
    return text


def run_notebook(cells: list[tuple[int, str]], answers: dict, *, final_answers: dict | None = None,
                 lib: Path, files: dict[str, bytes] | None = None, notebook_bytes: bytes | None = None,
                 notebook_name: str = "submission.ipynb", timeout: float = 900.0,
                 cell_timeout: float = 300.0, max_restarts: int = 2,
                 hide: list[str] | None = None) -> RunResult:
    """Run ``cells`` ((index, source) pairs) and return the answers they leave.

    ``answers`` maps answer keys to ``None`` (a variable name) or an
    expression; they are read after every cell.  ``final_answers`` (default:
    ``answers``) are read once at the end and may include expressions that
    call the student's functions.  ``lib`` is a staged lmelib
    (:func:`staged_lmelib`); ``files`` are extra data files written next to
    the notebook.  Environment variables whose values mention a path in
    ``hide`` (the gradebook's and key's folders) are not passed on.
    """
    final_answers = answers if final_answers is None else final_answers
    sandbox = Path(tempfile.mkdtemp(prefix="lmelib-sandbox-"))
    private = Path(tempfile.mkdtemp(prefix="lmelib-run-"))
    worker = None
    try:
        work = sandbox / "work"
        work.mkdir()
        if notebook_bytes is not None:
            (work / notebook_name).write_bytes(notebook_bytes)
        for name, data in (files or {}).items():
            target = (work / name).resolve()
            if not target.is_relative_to(sandbox.resolve()) or target.parent == sandbox.resolve():
                raise ValueError(f"data file {name!r} would land outside the sandbox")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        shutil.copytree(lib, sandbox / "lib", ignore=shutil.ignore_patterns("__pycache__"))

        hidden = [h for h in (hide or []) if h and h != os.sep]
        kernel_env = {k: v for k, v in os.environ.items()
                      if not k.startswith(("LMELIB_GRADING", "JPY_", "PYTEST", "COV_"))
                      and k not in ("PWD", "OLDPWD", "_")
                      and (k == "PATH" or not any(h in v for h in hidden))}
        kernel_env.update({"PYTHONPATH": str(sandbox / "lib"), "PYTHONHASHSEED": "0",
                           "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
                           "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
        result_path = private / "result.json"
        job = {"cells": cells, "answers": answers, "final_answers": final_answers,
               "cwd": str(work), "kernel_env": kernel_env, "cell_timeout": cell_timeout,
               "timeout": timeout, "result": str(result_path), "pidfile": str(private / "kernel.pid"),
               "kernel_log": str(private / "kernel.log"), "max_restarts": max_restarts}
        worker_env = dict(kernel_env)
        worker_env["PYTHONPATH"] = str(lib)
        with open(private / "worker.log", "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "lmelib.grading.worker"], stdin=subprocess.PIPE,
                stdout=log, stderr=log, cwd=private, env=worker_env, start_new_session=True)
            try:
                worker.stdin.write(json.dumps(job).encode())
                worker.stdin.close()
            except BrokenPipeError:
                pass
            events = []
            try:
                worker.wait(timeout=timeout + _GRACE)
            except subprocess.TimeoutExpired:
                events.append(f"the notebook was stopped after the time limit of {timeout:g} s")
            else:
                if worker.returncode != 0:
                    events.append("the grading process for this notebook was stopped by the submission "
                                  f"(exit status {worker.returncode})")
        result = RunResult(events=events)
        try:
            data = json.loads(result_path.read_text(encoding="utf-8"))
            result.answers = data.get("answers", {})
            result.cells = data.get("cells", {})
            result.events = [*data.get("events", []), *events]
            if not data.get("done") and not events:
                result.events.append("the run did not finish")
        except (OSError, ValueError):
            result.events.append("no result was recorded for this notebook")
        result.events = [_clean_message(e, sandbox) for e in result.events]
        for state in result.cells.values():
            for k in ("evalue", "ename"):
                if k in state:
                    state[k] = _clean_message(state[k], sandbox)
        for enc in result.answers.values():
            if isinstance(enc, dict) and "error" in enc:
                enc["error"] = _clean_message(enc["error"], sandbox)
        return result
    finally:
        if worker is not None:
            if worker.poll() is None:
                _kill_group(worker.pid)
                worker.wait()
            else:
                _kill_group(worker.pid)  # anything left in its session
        try:
            pids = (private / "kernel.pid").read_text().split()
        except OSError:
            pids = []
        for pid in pids:
            if pid.isdigit():
                _kill_group(int(pid))
        shutil.rmtree(sandbox, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
        # give killed processes a moment to release files before the next run
        time.sleep(0.05)
