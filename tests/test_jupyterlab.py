"""The README's third command opens the chapters in JupyterLab.

``.venv/bin/jupyter lab book/`` is run from the repository root as the README
says, headless (``--no-browser``), on a free port of 127.0.0.1 and with a
random token (and ``--allow-root`` when run as root, as the README says); the test asks the server's REST API for the contents of its
root folder (``book/``) and finds every chapter notebook there as a notebook,
checks that JupyterLab's page is served, that the Python kernel is offered
and that the API refuses a request without the token, then shuts the server
down through the API and sees it exit.  Every step is bounded
in time (start: 120 s, shutdown: 20 s, then the process is killed), and the
server's configuration and runtime files go to a temporary folder so that
neither the user's Jupyter settings nor a running server interfere.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = Path(sys.executable).with_name("jupyter")
START_TIMEOUT = 120
STOP_TIMEOUT = 20


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, token: str, method: str = "GET", timeout: float = 10):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(
        url, method=method, headers={"Authorization": f"token {token}"}
    )
    with opener.open(req, timeout=timeout) as resp:
        return resp.status, resp.read()


@pytest.fixture
def lab(tmp_path):
    """The README's `jupyter lab book/`, headless; yield (base URL, token)."""
    pytest.importorskip(
        "jupyterlab", reason="JupyterLab is not installed (pip install -r requirements.txt)"
    )
    if not JUPYTER.is_file():
        pytest.skip(f"no `jupyter` command next to {sys.executable}")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        NO_PROXY="127.0.0.1,localhost",
    )
    log = tmp_path / "jupyter-lab.log"
    cmd = [
        str(JUPYTER), "lab", "book/",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
    ]  # fmt: skip
    if os.geteuid() == 0:  # as CI and containers run; JupyterLab refuses root without it
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"`jupyter lab book/` exited with {proc.returncode}:\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            try:
                if _request(f"{base}/api/status", token, timeout=5)[0] == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not answer within {START_TIMEOUT} s:\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.5)
        yield base, token, proc
    finally:
        if proc.poll() is None:
            try:
                _request(f"{base}/api/shutdown", token, method="POST", timeout=5)
            except (OSError, urllib.error.URLError):
                pass
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)


def test_jupyter_lab_lists_the_chapters(lab):
    base, token, proc = lab
    # the server's root is book/: its contents are the chapters
    status, body = _request(f"{base}/api/contents/", token)
    assert status == 200
    listing = json.loads(body)
    notebooks = {i["name"] for i in listing["content"] if i["type"] == "notebook"}
    chapters = {p.name for p in (ROOT / "book").glob("*.ipynb")}
    assert chapters, "no notebook in book/"
    assert chapters <= notebooks, f"not listed by JupyterLab: {sorted(chapters - notebooks)}"
    # a chapter opens as a notebook with its stored outputs
    first = sorted(chapters)[0]
    status, body = _request(f"{base}/api/contents/{first}?content=1", token)
    assert status == 200
    model = json.loads(body)
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert any(c["cell_type"] == "code" and c["outputs"] for c in cells), first
    # JupyterLab's own page is served (not only the bare Jupyter server)
    status, page = _request(f"{base}/lab?token={token}", token)
    assert status == 200 and b"JupyterLab" in page
    # and the environment's Python kernel is on offer
    status, body = _request(f"{base}/api/kernelspecs", token)
    assert status == 200 and "python3" in json.loads(body)["kernelspecs"]
    # without the token the server refuses
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            f"{base}/api/contents/", timeout=10
        )
    assert err.value.code == 403
    # the server stops when asked through its API
    status, _ = _request(f"{base}/api/shutdown", token, method="POST")
    assert status in (200, 204)
    proc.wait(timeout=STOP_TIMEOUT)
    assert proc.returncode == 0
