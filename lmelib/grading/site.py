"""The student edition of the course website: every solution left out.

    .venv/bin/python -m lmelib.grading student-site

From the repository root this builds the book exactly as the README's command
does (``jupyter-book build . -W -n --keep-going``), with one setting changed:
sphinx-exercise's ``hide_solutions: true``.  The book's extension
(``book/_ext/lmelib_book.py``) then removes each exercise's gated solution,
text and code cells alike, from the pages, the search index and the
notebooks offered for download, so the site can be published to students
who are graded on the exercises.  The exercises themselves stay.

The site lands in ``_build/student/_build/html/index.html``; the normal
edition's ``_build/html`` is left alone.  Options: ``--source DIR`` (a folder
with ``_config.yml``, ``_toc.yml`` and ``book/``; default: the repository that
holds the book, as ``--book`` of the other commands) and ``--out DIR``
(default: ``<source>/_build/student``).  The exit code is jupyter-book's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

__all__ = ["student_config", "build_student_site"]


def student_config(source: Path) -> dict:
    """The book's ``_config.yml`` with the solutions hidden."""
    config = yaml.safe_load((source / "_config.yml").read_text(encoding="utf8"))
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {})["hide_solutions"] = True
    # local extensions are found relative to the configuration file, which
    # is written elsewhere: make their paths absolute
    local = sphinx.get("local_extensions") or {}
    sphinx["local_extensions"] = {
        name: str((source / path).resolve()) for name, path in local.items()
    }
    config["title"] = f"{config.get('title', 'The course')} (student edition)"
    return config


def build_student_site(source: Path, out: Path | None = None) -> int:
    """Build the site of ``source`` without solutions into ``out``; jupyter-book's exit code."""
    source = Path(source).resolve()
    if not (source / "_config.yml").is_file():
        raise SystemExit(f"{source} has no _config.yml: give the repository root with --source")
    out = Path(out or source / "_build" / "student").resolve()
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "_config.yml"
    config_path.write_text(
        "# Written by `python -m lmelib.grading student-site` from the book's _config.yml;\n"
        "# edit that file, not this one.\n"
        + yaml.safe_dump(student_config(source), sort_keys=False, allow_unicode=True),
        encoding="utf8",
    )
    cmd = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(source),
        "--config",
        str(config_path),
        "--path-output",
        str(out),
        "-W",
        "-n",
        "--keep-going",
    ]
    code = subprocess.call(cmd, cwd=source)
    if code == 0:
        print(f"\nStudent edition (no solutions): {out / '_build' / 'html' / 'index.html'}")
    return code

