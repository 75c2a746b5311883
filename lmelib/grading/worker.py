"""Run one submission's code cells in a fresh kernel and record its answers.

This is the process the grader starts for every notebook it runs
(``python -I .../lmelib/grading/worker.py``, with a job description on
stdin; run as a file so that it does not import lmelib),
inside the submission's sandbox (``sandbox``).  It lays out the scratch
folder it is given (``work/`` with a copy of the notebook and its data files,
the kernel's working directory; ``run/`` for its own files), owns one kernel
at a time, and reports its progress on its standard output, one JSON record
per line, after every cell: the grader keeps the last complete record, so
whatever happens later (a cell that never returns, a kernel that dies, this
process being killed) the answers computed so far are kept.  The record
channel is a pipe that the kernel does not inherit, and this process makes
itself non-dumpable, so the kernel (same uid) cannot open it through
``/proc``.

Per cell: the cell runs with a time limit (``cell_timeout``, capped by what
is left of the notebook's limit); a cell that runs over is interrupted like
Ctrl-C in Jupyter, and the next cells still run.  After every cell the answer
variables are serialised in the kernel (``capture.snapshot``) and sent back
in the reply to an empty, silent execute request (``user_expressions``).
If the kernel dies, or does not answer after an interrupt, the offending cell
is marked, the kernel is restarted and the notebook is run again without
that cell (at most ``max_restarts`` times, within the notebook's limit).

A record (one line of JSON)::

    {"cells": {"<index>": {"status": "ok" | "error" | "timeout" | "killed-kernel"
                                     | "hung" | "skipped" | "not-run",
                           "ename": ..., "evalue": ...}},
     "answers": {"<key>": <encoded answer>},
     "events": ["..."], "done": true | false}
"""

from __future__ import annotations

import ast
import asyncio
import base64
import ctypes
import json
import os
import sys
import time
from pathlib import Path
from queue import Empty

__all__ = ["main"]

_TIMEOUT_ENAME = "CellTimeout"


def _current_env_spec_manager():
    """A kernel spec manager whose python3 kernel is this interpreter."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class CurrentEnv(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):  # noqa: D401, ARG002
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="Python 3 (grading)", language="python",
                resource_dir=os.path.dirname(__file__), env={}, metadata={},
            )

        def find_kernel_specs(self):
            return {"python3": os.path.dirname(__file__)}

    return CurrentEnv()


def _not_dumpable() -> None:
    """Keep processes of the same uid (the kernel) out of /proc/<this pid>/fd."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _record_channel():
    """A private handle on stdout for the records; fd 1 then points to stderr,
    so that stray prints of libraries cannot corrupt the records."""
    fd = os.dup(1)  # not inheritable: the kernel never gets it
    os.dup2(2, 1)
    return os.fdopen(fd, "w", encoding="utf-8")


class Job:
    def __init__(self, spec: dict, out):
        self.cells = [(int(i), str(src)) for i, src in spec["cells"]]
        self.answers = spec["answers"]              # key -> None | expr (after each cell)
        self.final_answers = spec["final_answers"]  # including expressions (at the end)
        self.root = Path(spec["root"])              # the scratch folder
        self.cwd = str(self.root / "work")
        self.run_dir = self.root / "run"
        self.files = spec.get("files", {})          # path relative to work/ -> base64
        self.kernel_env = spec["kernel_env"]
        self.cell_timeout = float(spec["cell_timeout"])
        self.timeout = float(spec["timeout"])
        self.deadline: float | None = None  # set when the first kernel is ready
        self.out = out
        self.pidfile = str(self.run_dir / "kernel.pid")
        self.kernel_log = str(self.run_dir / "kernel.log")
        self.max_restarts = int(spec.get("max_restarts", 2))
        self.cells_state: dict[str, dict] = {}
        self.answers_out: dict[str, dict] = {}
        self.events: list[str] = []

    def prepare(self) -> None:
        """Lay out the scratch folder: work/ (the notebook and its files), run/,
        home/ and tmp/."""
        for name in ("work", "home", "tmp"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for rel, data in self.files.items():
            target = Path(os.path.normpath(os.path.join(self.cwd, rel)))
            if not target.is_relative_to(self.root) or target.parent == self.root:
                raise ValueError(f"data file {rel!r} would land outside the scratch folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(data))
        os.chdir(self.run_dir)  # jupyter_client puts its IPC sockets here

    def start_clock(self) -> None:
        """The notebook's time limit counts from when its first kernel is ready."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout

    def remaining(self) -> float:
        if self.deadline is None:
            return self.timeout
        return self.deadline - time.monotonic()

    def save(self, done: bool = False) -> None:
        data = {"cells": self.cells_state, "answers": self.answers_out,
                "events": self.events, "done": done}
        try:
            self.out.write(json.dumps(data) + "\n")
            self.out.flush()
        except (OSError, ValueError):  # the grader stopped reading: nothing to report to
            pass

    def merge_answers(self, new: dict) -> None:
        for key, enc in new.items():
            old = self.answers_out.get(key)
            # an answer that exists from an earlier attempt is not replaced by
            # "missing" from a later, shorter one
            if enc.get("t") == "missing" and old is not None and old.get("t") != "missing":
                continue
            self.answers_out[key] = enc


class Stop(Exception):
    """The kernel is dead or stuck in cell ``index``."""

    def __init__(self, index: int, status: str, message: str):
        super().__init__(message)
        self.index, self.status, self.message = index, status, message


_CAPTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "capture.py")


async def _snapshot(client, answers: dict, timeout: float):
    """Encoded answers from the kernel, or None if it does not reply in time.

    ``capture.py`` (standard library only) is run from its file, so reading
    the answers does not import lmelib into a kernel that did not.
    """
    expr = f"__import__('runpy').run_path({_CAPTURE!r})['snapshot'](globals(), {answers!r})"
    kc = client.kc
    msg_id = kc.execute("", silent=True, store_history=False,
                        user_expressions={"answers": expr}, allow_stdin=False,
                        stop_on_error=False)
    end = time.monotonic() + max(timeout, 0.5)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        try:
            msg = await kc.shell_channel.get_msg(timeout=min(left, 1.0))
        except Empty:
            if not await client.km.is_alive():
                return None
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        res = msg["content"].get("user_expressions", {}).get("answers", {})
        if res.get("status") != "ok":
            err = f"{res.get('ename', 'Error')}: {res.get('evalue', '')}"[:300]
            return {k: {"t": "error", "error": "could not read the answer: " + err} for k in answers}
        try:
            text = ast.literal_eval(res["data"]["text/plain"])
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a dict")
        except Exception as exc:  # noqa: BLE001
            return {k: {"t": "error", "error": f"could not read the answer ({type(exc).__name__})"}
                    for k in answers}
        return {k: (v if isinstance(v, dict) and "t" in v else {"t": "error", "error": "bad answer record"})
                for k, v in data.items() if k in answers}


class StartupFailed(Exception):
    """The kernel did not start (nothing of the submission has run yet)."""


async def _attempt(job: Job, skip: dict[int, str], attempt: int = 0) -> None:
    """Run the notebook once in a new kernel; raise Stop if the kernel fails."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    job.cells_state = {}  # the states of this attempt (answers are kept across attempts)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for _, src in job.cells]
    # IPC sockets in this run's private folder: no TCP ports, so kernels
    # started at the same time by parallel workers cannot collide
    km = AsyncKernelManager(
        kernel_name="python3", kernel_spec_manager=_current_env_spec_manager(), transport="ipc",
        connection_file=str(job.run_dir / f"kernel-{attempt}.json"))
    replies: dict[int, dict] = {}

    def on_executed(cell, cell_index, execute_reply):
        replies[cell_index] = execute_reply.get("content", {}) if execute_reply else {}

    client = NotebookClient(
        nb, km=km, timeout=int(job.cell_timeout), interrupt_on_timeout=True,
        error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": "", "traceback": []},
        allow_errors=True, startup_timeout=120, iopub_timeout=5,
        raise_on_iopub_timeout=False, record_timing=False, on_cell_executed=on_executed,
        shutdown_kernel="immediate",
    )
    log = open(job.kernel_log, "ab")  # noqa: SIM115 - closed below
    started = False
    try:
        async with client.async_setup_kernel(env=job.kernel_env, cwd=job.cwd, stdout=log, stderr=log):
            started = True
            job.start_clock()
            pid = getattr(km.provisioner, "pid", None)
            if pid:
                with open(job.pidfile, "a", encoding="utf-8") as fh:
                    fh.write(f"{pid}\n")
            for pos, (index, _src) in enumerate(job.cells):
                key = str(index)
                if index in skip:
                    job.cells_state[key] = {"status": "skipped", "evalue": skip[index]}
                    continue
                left = job.remaining()
                if left <= 1:
                    job.cells_state[key] = {"status": "not-run"}
                    continue
                client.timeout = max(1, int(min(job.cell_timeout, left)))
                cell = nb.cells[pos]
                try:
                    await client.async_execute_cell(cell, pos)
                except DeadKernelError:
                    raise Stop(index, "killed-kernel", "the kernel died while running this cell") from None
                content = replies.get(pos, {})
                if content.get("status") == "error":
                    if content.get("ename") == _TIMEOUT_ENAME:
                        job.cells_state[key] = {"status": "timeout", "evalue": f"{client.timeout} s"}
                    else:
                        job.cells_state[key] = {"status": "error", "ename": str(content.get("ename", ""))[:100],
                                                "evalue": str(content.get("evalue", ""))[:300]}
                else:
                    job.cells_state[key] = {"status": "ok"}
                # a kernel that ignored the interrupt does not answer this
                snap_timeout = (max(5.0, min(20.0, job.cell_timeout))
                                if job.cells_state[key]["status"] == "timeout" else 120.0)
                snap = await _snapshot(client, job.answers, min(snap_timeout, max(job.remaining(), 5.0)))
                if snap is None:
                    if not await km.is_alive():
                        raise Stop(index, "killed-kernel", "the kernel died while running this cell")
                    raise Stop(index, "hung", "the cell did not stop when it was interrupted")
                job.merge_answers(snap)
                job.save()
            final = await _snapshot(client, job.final_answers, max(min(job.remaining() + 30.0, 120.0), 10.0))
            if final is None:
                job.events.append("the answers could not be read at the end of the notebook")
            else:
                job.merge_answers(final)
            job.save()
    except Exception as exc:
        if not started:
            raise StartupFailed(f"{type(exc).__name__}: {exc}") from exc
        raise
    finally:
        log.close()


async def _run(job: Job) -> None:
    skip: dict[int, str] = {}
    startups = 0
    attempt = 0
    while True:
        try:
            await _attempt(job, skip, attempt + startups)
            return
        except StartupFailed as exc:
            # not the submission's doing: try again, at most three times in all
            startups += 1
            if startups < 3:
                await asyncio.sleep(1.0)
                continue
            job.events.append(f"GRADER ERROR: the kernel could not be started ({exc}); this is a "
                              "problem of the grading machine, not of the notebook")
            job.save()
            return
        except Stop as stop:
            job.cells_state[str(stop.index)] = {"status": stop.status, "evalue": stop.message}
            if attempt < job.max_restarts and job.remaining() > 5:
                skip[stop.index] = stop.message  # the next attempt marks it "skipped"
                attempt += 1
                job.save()
                continue
            job.save()
            return
        except Exception as exc:  # noqa: BLE001 - e.g. the kernel would not start
            job.events.append(f"GRADER ERROR: the notebook could not be run: {type(exc).__name__}: {exc}"[:400])
            job.save()
            return


def main() -> None:
    _not_dumpable()
    out = _record_channel()
    job = Job(json.loads(sys.stdin.read()), out)
    job.prepare()
    job.save()  # the first record: the worker is up, no submitted code has run yet
    asyncio.run(_run(job))
    job.save(done=True)


if __name__ == "__main__":
    main()
