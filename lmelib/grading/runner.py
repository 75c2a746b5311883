"""Run a notebook's code in its own sandbox and processes, and get its answers.

``run_notebook`` is the one place where submitted code runs.  For every
notebook it

1. starts a worker process (``lmelib.grading.worker``) inside a fresh
   bubblewrap sandbox (``sandbox.Sandbox``): its own PID, mount, network,
   IPC and UTS namespaces, the system and the Python installation
   read-only, a staged read-only copy of lmelib and its data, and a private
   size-limited tmpfs as the only writable folder; the notebook's code
   cells, a copy of the submitted file and the chapter's data files are
   handed to the worker on its stdin;
2. the worker starts a kernel and runs the cells (see the worker for the
   per-cell time limit, interrupts and restarts), reporting a JSON record on
   a pipe after every cell;
3. waits at most the notebook's time limit plus a grace period, then kills
   the sandbox, which takes every process in it along;
4. keeps the last complete record read from the pipe, checked and bounded
   in size: a submission that had to be killed keeps what it computed before.

The answers come back as JSON data (``capture.encode``) and are checked
against the key in the grader process; the key never enters the sandbox.
Without a sandbox (``sandbox=None``, the grader's ``--no-sandbox``) the
worker runs as the grader's user in a temporary folder, with a minimal
environment, and nothing stops it from reading or writing what that user can.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .. import datasets
from .sandbox import LIB, ROOT, Limits, Sandbox

__all__ = ["RunResult", "run_notebook", "staged_lmelib"]

_GRACE = 150.0  # kernel start-ups (restarts too) and the final read of the answers
_MACHINE = "GRADER ERROR: "  # the worker's prefix for failures of the machine, not the notebook


@dataclass
class RunResult:
    answers: dict = field(default_factory=dict)   # key -> encoded answer
    cells: dict = field(default_factory=dict)     # cell index (str) -> state
    events: list = field(default_factory=list)    # notes on the run as a whole
    grader_error: str = ""                        # the machine failed, not the notebook


def _lmelib_sources() -> tuple[Path, Path]:
    """The lmelib package this module belongs to, and its data folder."""
    return Path(__file__).resolve().parents[1], Path(datasets.DATA_DIR).resolve()


def staged_lmelib(dest: Path) -> Path:
    """Copy lmelib and its data to ``dest`` (``dest/lmelib``, ``dest/data``).

    The grader stages one copy when it starts, outside the checkout, and
    binds it read-only into every sandbox, so a submission cannot change the
    code that it or later submissions run.  The copy is world-readable (the
    sandbox runs as another uid when the grader is root).
    """
    pkg, data = _lmelib_sources()
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(pkg, dest / "lmelib", ignore=ignore, dirs_exist_ok=True)
    if data.is_dir():
        shutil.copytree(data, dest / "data", ignore=ignore, dirs_exist_ok=True)
    for folder, dirs, files in os.walk(dest):
        os.chmod(folder, 0o755)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o644)
    os.chmod(dest.parent, os.stat(dest.parent).st_mode | stat.S_IXOTH)
    return dest


def sandbox_env(root: str, lib: str) -> dict[str, str]:
    """The whole environment of the worker and the kernel: nothing of the grader's."""
    bindir = os.path.dirname(sys.executable)
    return {"PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin", "HOME": f"{root}/home",
            "TMPDIR": f"{root}/tmp", "LANG": "C.UTF-8", "PYTHONPATH": lib, "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{root}/home/.mpl",
            "IPYTHONDIR": f"{root}/home/.ipython", "JUPYTER_RUNTIME_DIR": f"{root}/run",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def _kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError, OSError):
            pass


def _clean_message(text: str, root: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text))
    return text.replace(f"{root}/work", "<notebook folder>").replace(root, "<sandbox>")


class _RecordReader(threading.Thread):
    """Reads the worker's records from its stdout; keeps the last complete one.

    A record longer than ``cap`` bytes is dropped (and noted), so a flood of
    output costs the grader no memory.
    """

    def __init__(self, stream, cap: int):
        super().__init__(daemon=True)
        self.stream, self.cap = stream, cap
        self.last: bytes | None = None
        self.dropped = 0

    def run(self) -> None:
        buf = bytearray()
        skipping = False
        while chunk := self.stream.read1(1 << 16):
            buf += chunk
            while (nl := buf.find(b"\n")) >= 0:
                if not skipping:
                    self.last = bytes(buf[:nl])
                skipping = False
                del buf[:nl + 1]
            if len(buf) > self.cap:
                buf.clear()
                skipping = True
                self.dropped += 1


def _checked(raw: bytes | None) -> dict | None:
    """A record from the worker as plain, well-formed data, or None."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    cells = data.get("cells") if isinstance(data.get("cells"), dict) else {}
    answers = data.get("answers") if isinstance(data.get("answers"), dict) else {}
    events = data.get("events") if isinstance(data.get("events"), list) else []
    return {"cells": {str(k): v for k, v in cells.items() if isinstance(v, dict) and str(k).isdigit()},
            "answers": {str(k): v for k, v in answers.items() if isinstance(v, dict)
                        and isinstance(v.get("t"), str)},
            "events": [str(e)[:500] for e in events[:50]], "done": data.get("done") is True}


def _job(cells, answers, final_answers, files, *, root: str, lib: str, timeout, cell_timeout,
         max_restarts) -> dict:
    return {"cells": cells, "answers": answers, "final_answers": final_answers, "root": root,
            "files": {k: base64.b64encode(v).decode() for k, v in files.items()},
            "kernel_env": sandbox_env(root, lib), "cell_timeout": cell_timeout,
            "timeout": timeout, "max_restarts": max_restarts}


def _start(job: dict, sandbox: Sandbox | None, lib: Path, slot: int, log) -> subprocess.Popen:
    # run from its file in isolated mode: importing lmelib would cost seconds
    here = LIB if sandbox is not None else str(lib)
    argv = [sys.executable, "-I", f"{here}/lmelib/grading/worker.py"]
    if sandbox is not None:
        cmd, env, cwd = sandbox.command(argv, lib=lib, env=job["kernel_env"], slot=slot), {}, None
    else:
        os.makedirs(job["root"])
        cmd, env, cwd = argv, job["kernel_env"], job["root"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                            cwd=cwd, env=env, start_new_session=True)
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    return proc


def _files(files: dict[str, bytes] | None, notebook_bytes: bytes | None, notebook_name: str) -> dict:
    out = {}
    if notebook_bytes is not None:
        out[Path(notebook_name).name] = notebook_bytes
    for name, data in (files or {}).items():
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts[1:] or parts.count("..") > 1 or \
                (parts and parts[0] == ".." and len(parts) < 3):
            raise ValueError(f"data file {name!r} would land outside the sandbox")
        out[name] = data
    return out


def run_notebook(cells: list[tuple[int, str]], answers: dict, *, final_answers: dict | None = None,
                 lib: Path, sandbox: Sandbox | None, files: dict[str, bytes] | None = None,
                 notebook_bytes: bytes | None = None, notebook_name: str = "submission.ipynb",
                 timeout: float = 900.0, cell_timeout: float = 300.0, max_restarts: int = 2,
                 slot: int = 0) -> RunResult:
    """Run ``cells`` ((index, source) pairs) and return the answers they leave.

    ``answers`` maps answer keys to ``None`` (a variable name) or an
    expression; they are read after every cell.  ``final_answers`` (default:
    ``answers``) are read once at the end and may include expressions that
    call the student's functions.  ``lib`` is a staged lmelib
    (:func:`staged_lmelib`); ``files`` are extra data files placed next to
    the notebook (paths relative to it, at most one folder up).  ``sandbox``
    is the checked sandbox (``sandbox.find_sandbox``), or None to run
    without one; ``slot`` (0, 1, ... for notebooks run at the same time)
    picks the sandbox's uid.
    """
    final_answers = answers if final_answers is None else final_answers
    private = Path(tempfile.mkdtemp(prefix="lmelib-run-"))  # the grader's own, never in a sandbox
    root = ROOT if sandbox is not None else str(private / "scratch")
    limits = sandbox.limits if sandbox is not None else Limits()
    job = _job(cells, answers, final_answers, _files(files, notebook_bytes, notebook_name), root=root,
               lib=LIB if sandbox is not None else str(lib), timeout=timeout, cell_timeout=cell_timeout,
               max_restarts=max_restarts)
    proc = None
    try:
        with open(private / "worker.log", "wb") as log:
            proc = _start(job, sandbox, lib, slot, log)
            reader = _RecordReader(proc.stdout, limits.output_mb * 1024 * 1024)
            reader.start()
            events = []
            try:
                proc.wait(timeout=timeout + _GRACE)
            except subprocess.TimeoutExpired:
                events.append(f"the notebook was stopped after the time limit of {timeout:g} s")
                _kill_group(proc.pid)
                proc.wait()
            reader.join(timeout=30)
        return _result(reader, proc.returncode, events, private / "worker.log", root)
    finally:
        _cleanup(proc, private, sandbox is None)


def _result(reader: _RecordReader, returncode: int, events: list[str], log: Path, root: str) -> RunResult:
    data = _checked(reader.last)
    if reader.dropped:
        events.append(f"{reader.dropped} result record(s) were larger than the limit and were dropped")
    if data is None:
        # the first record is sent before any submitted code runs: without it
        # the machine failed (the sandbox or the worker did not start)
        tail = log.read_bytes()[-2000:].decode("utf-8", "replace").strip().splitlines()
        why = tail[-1][:300] if tail else f"exit status {returncode}"
        return RunResult(events=events, grader_error=f"the notebook's worker did not start ({why}); this "
                         "is a problem of the grading machine, not of the notebook")
    machine = [e.removeprefix(_MACHINE) for e in data["events"] if e.startswith(_MACHINE)]
    result = RunResult(answers=data["answers"], cells=data["cells"], grader_error="; ".join(machine),
                       events=[*(e for e in data["events"] if not e.startswith(_MACHINE)), *events])
    if returncode != 0 and not events:
        result.events.append("the grading process for this notebook was stopped by the submission "
                             f"(exit status {returncode})")
    elif not data["done"] and not events:
        result.events.append("the run did not finish")
    result.events = [_clean_message(e, root) for e in result.events]
    result.grader_error = _clean_message(result.grader_error, root)
    for state in result.cells.values():
        for k in ("evalue", "ename"):
            if k in state:
                state[k] = _clean_message(state[k], root)[:500]
    for enc in result.answers.values():
        if "error" in enc:
            enc["error"] = _clean_message(enc["error"], root)[:500]
    return result


def _cleanup(proc, private: Path, unsandboxed: bool) -> None:
    if proc is not None:
        _kill_group(proc.pid)  # the sandbox (and all in it), or the unsandboxed worker's session
        proc.wait()
    if unsandboxed:  # kernels started in sessions of their own
        try:
            pids = (private / "scratch" / "run" / "kernel.pid").read_text().split()
        except OSError:
            pids = []
        for pid in pids:
            if pid.isdigit():
                _kill_group(int(pid))
    shutil.rmtree(private, ignore_errors=True)
