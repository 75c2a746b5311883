"""Command line: ``python -m lmelib.grading assign|grade ...``."""

from __future__ import annotations

import argparse
import sys
import tempfile
import os
from pathlib import Path

from .batch import grade_batch
from .grader import KeyBuildError, assign, build_key, load_key
from .runner import staged_lmelib
from .sandbox import SandboxUnavailable, find_sandbox
from .site import build_student_site
from .spec import SpecError, book_dir, find_specs, load_spec, spec_path


def _chapter_paths(names: list[str], book: Path) -> list[Path]:
    if not names:
        return [book / load_spec(p)["chapter"] for p in find_specs(book)]
    out = []
    for name in names:
        p = Path(name)
        if p.suffix != ".ipynb":
            p = book / f"{p.name}.ipynb"
        elif not p.exists() and (book / p.name).exists():
            p = book / p.name
        out.append(p)
    return out


def _sandbox(args, lib: Path):
    """The checked sandbox, or None with --no-sandbox; exits with what to install."""
    if args.no_sandbox:
        print("--no-sandbox: notebooks run WITHOUT isolation, as your user; every row is marked "
              "'unsandboxed'", file=sys.stderr)
        return None
    try:
        return find_sandbox(lib)
    except SandboxUnavailable as exc:
        raise SystemExit(f"cannot grade safely: {exc}") from None


def cmd_assign(args) -> int:
    book = Path(args.book).resolve()
    chapters = _chapter_paths(args.chapters, book)
    if not chapters:
        print(f"no specifications in {book / 'exercises'}", file=sys.stderr)
        return 2
    status = 0
    with tempfile.TemporaryDirectory(prefix="lmelib-assign-") as tmp:
        lib = staged_lmelib(Path(tmp) / "lib")
        sandbox = _sandbox(args, lib)
        for chapter in chapters:
            spec = spec_path(chapter, book)
            if not spec.exists():
                print(f"{chapter.name}: no specification {spec}", file=sys.stderr)
                status = 2
                continue
            try:
                nb_path, key_path, warnings = assign(chapter, spec, Path(args.out), book=book, lib=lib,
                                                     sandbox=sandbox, timeout=args.timeout)
            except (SpecError, KeyBuildError, OSError) as exc:
                print(f"{chapter.name}: {exc}", file=sys.stderr)
                status = 1
                continue
            for w in warnings:
                print(f"{chapter.name}: warning: {w}", file=sys.stderr)
            print(f"{chapter.name}: student version {nb_path}, answer key {key_path}")
    return status


def _load_keys(args) -> tuple[dict, list[Path]]:
    """{chapter: key} and the key files they came from.

    ``--key`` a file: that key; ``--key`` a folder: every key in it (each
    submission's metadata picks its own); no ``--key``: the key of
    ``--chapter``, built now by running the chapter's solution.
    """
    chapter = Path(args.chapter).stem if args.chapter else None
    if args.key:
        kp = Path(args.key)
        paths = sorted(kp.glob("*.json")) if kp.is_dir() else [kp]
        keys = {}
        for p in paths:
            key = load_key(p)
            keys[key["chapter"]] = key
        if not keys:
            raise SystemExit(f"no answer keys in {kp}")
        return keys, paths
    if chapter is None:
        raise SystemExit("without --key, say which chapter to build the key for: --chapter NAME")
    book = Path(args.book).resolve()
    print(f"no --key given: running the solution of {chapter} to build the key", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lmelib-key-") as tmp:
        lib = staged_lmelib(Path(tmp) / "lib")
        spec = load_spec(spec_path(chapter, book))
        key, _ = build_key(spec, book / spec["chapter"], book=book, lib=lib, sandbox=_sandbox(args, lib),
                           timeout=args.timeout)
    return {key["chapter"]: key}, []


def cmd_grade(args) -> int:
    submissions = Path(args.submissions)
    if not submissions.is_dir():
        print(f"{submissions} is not a folder", file=sys.stderr)
        return 2
    keys, key_files = _load_keys(args)
    chapter = Path(args.chapter).stem if args.chapter else None
    if chapter is not None and chapter not in keys:
        raise SystemExit(f"no answer key for chapter {chapter!r} in {args.key}")
    if chapter is None and (not args.key or Path(args.key).is_file()):
        chapter = next(iter(keys))  # one key given: every notebook is graded with it
    try:
        reports = grade_batch(submissions, keys, Path(args.out), chapter=chapter, feedback_dir=args.feedback,
                              sandbox=None if args.no_sandbox else "auto", timeout=args.timeout,
                              cell_timeout=args.cell_timeout, jobs=args.jobs, regrade=args.regrade,
                              key_files=key_files)
    except SandboxUnavailable as exc:
        raise SystemExit(f"cannot grade safely: {exc}") from None
    print(f"graded {len(reports)} submission(s) into {args.out}")
    return 0


def cmd_student_site(args) -> int:
    return build_student_site(Path(args.source), Path(args.out) if args.out else None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmelib.grading",
                                     description="Student versions of the chapters and offline grading.")
    sub = parser.add_subparsers(dest="command", required=True)

    pa = sub.add_parser("assign", help="write student notebooks and answer keys")
    pa.add_argument("chapters", nargs="*", help="chapter notebooks or names (default: every chapter "
                    "with a specification in book/exercises)")
    pa.add_argument("--out", required=True, help="output folder: <out>/student and <out>/autograder")
    pa.add_argument("--book", default=str(book_dir()), help="the book folder (default: %(default)s)")
    pa.add_argument("--timeout", type=float, default=900, help="seconds for running the solution")
    pa.add_argument("--no-sandbox", action="store_true", help="run the solutions without bubblewrap")
    pa.set_defaults(func=cmd_assign)

    pg = sub.add_parser("grade", help="grade a folder of submitted notebooks")
    pg.add_argument("submissions", help="folder of submissions: <student>.ipynb or <student>/<any>.ipynb")
    pg.add_argument("--out", required=True, help="the gradebook CSV to write")
    pg.add_argument("--key", help="answer key file or the <out>/autograder folder from `assign` "
                    "(default: build it now from the chapter's solution)")
    pg.add_argument("--chapter", help="grade every notebook as this chapter, e.g. 03_random_intercept "
                    "(default: each notebook's own metadata chooses its key in the --key folder)")
    pg.add_argument("--feedback", help="folder for the feedback files (default: <out stem>_feedback)")
    pg.add_argument("--timeout", type=float, default=900, help="seconds per notebook (default %(default)s)")
    pg.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell (default %(default)s)")
    pg.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="notebooks run at the same time (default: the number of cores, %(default)s)")
    pg.add_argument("--regrade", action="store_true", help="grade everything again, ignoring an "
                    "existing gradebook")
    pg.add_argument("--no-sandbox", action="store_true", help="grade WITHOUT the bubblewrap sandbox "
                    "(the notebooks can read and write whatever you can; every row is marked "
                    "'unsandboxed'); only for trusted notebooks")
    pg.add_argument("--book", default=str(book_dir()), help="the book folder (default: %(default)s)")
    pg.set_defaults(func=cmd_grade)

    ps = sub.add_parser("student-site", help="build the course website without the exercises' solutions")
    ps.add_argument("--source", default=str(book_dir().parent),
                    help="the repository root, with _config.yml (default: %(default)s)")
    ps.add_argument("--out", help="output folder (default: <source>/_build/student)")
    ps.set_defaults(func=cmd_student_site)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
