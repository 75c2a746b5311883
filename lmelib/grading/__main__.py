"""Command line: ``python -m lmelib.grading assign|grade ...``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path


def _chapter_paths(names: list[str], book: Path) -> list[Path]:
    from .spec import find_specs, load_spec

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


def cmd_assign(args) -> int:
    from .grader import KeyBuildError, assign
    from .runner import staged_lmelib
    from .spec import SpecError, spec_path

    book = Path(args.book).resolve()
    chapters = _chapter_paths(args.chapters, book)
    if not chapters:
        print(f"no specifications in {book / 'exercises'}", file=sys.stderr)
        return 2
    status = 0
    with tempfile.TemporaryDirectory(prefix="lmelib-assign-") as tmp:
        lib = staged_lmelib(Path(tmp) / "lib")
        for chapter in chapters:
            spec = spec_path(chapter, book)
            if not spec.exists():
                print(f"{chapter.name}: no specification {spec}", file=sys.stderr)
                status = 2
                continue
            try:
                nb_path, key_path, warnings = assign(chapter, spec, Path(args.out), book=book, lib=lib,
                                                     timeout=args.timeout)
            except (SpecError, KeyBuildError, OSError) as exc:
                print(f"{chapter.name}: {exc}", file=sys.stderr)
                status = 1
                continue
            for w in warnings:
                print(f"{chapter.name}: warning: {w}", file=sys.stderr)
            print(f"{chapter.name}: student version {nb_path}, answer key {key_path}")
    return status


def _load_key(args, submissions: Path):
    """The key (and its file, if any) for the batch."""
    from .grader import build_key, load_key
    from .notebook import read_submission
    from .runner import staged_lmelib
    from .spec import load_spec, spec_path

    chapter = Path(args.chapter).stem if args.chapter else None
    if chapter is None:
        claims = Counter()
        for p in sorted(submissions.rglob("*.ipynb")):
            try:
                meta = read_submission(p.read_bytes())[1]
                name = (meta.get("lmelib_grading") or {}).get("chapter")
            except Exception:  # noqa: BLE001 - unreadable submissions claim nothing
                continue
            if isinstance(name, str):
                claims[name] += 1
        if args.key and Path(args.key).is_file():
            chapter = load_key(Path(args.key))["chapter"]
        elif len(claims) == 1:
            chapter = next(iter(claims))
        elif claims:
            chapter = claims.most_common(1)[0][0]
            print(f"submissions name several chapters {dict(claims)}; grading as {chapter!r} "
                  "(use --chapter to choose)", file=sys.stderr)
        else:
            raise SystemExit("cannot tell which chapter these submissions are for: use --chapter")
    if args.key:
        kp = Path(args.key)
        if kp.is_dir():
            kp = kp / f"{chapter}.json"
        key = load_key(kp)
        if key["chapter"] != chapter:
            raise SystemExit(f"{kp} is the key of {key['chapter']!r}, not {chapter!r}")
        return key, kp
    book = Path(args.book).resolve()
    print(f"no --key given: running the solution of {chapter} to build the key", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lmelib-key-") as tmp:
        spec = load_spec(spec_path(chapter, book))
        key, _ = build_key(spec, book / spec["chapter"], book=book, lib=staged_lmelib(Path(tmp) / "lib"),
                           timeout=args.timeout)
    return key, None


def cmd_grade(args) -> int:
    from .grader import grade_batch

    submissions = Path(args.submissions)
    if not submissions.is_dir():
        print(f"{submissions} is not a folder", file=sys.stderr)
        return 2
    key, key_file = _load_key(args, submissions)
    reports = grade_batch(submissions, key, Path(args.out), feedback_dir=args.feedback,
                          timeout=args.timeout, cell_timeout=args.cell_timeout, jobs=args.jobs,
                          regrade=args.regrade, key_file=key_file)
    print(f"graded {len(reports)} submission(s) into {args.out}")
    return 0


def main(argv=None) -> int:
    from .spec import book_dir

    parser = argparse.ArgumentParser(prog="python -m lmelib.grading",
                                     description="Student versions of the chapters and offline grading.")
    sub = parser.add_subparsers(dest="command", required=True)

    pa = sub.add_parser("assign", help="write student notebooks and answer keys")
    pa.add_argument("chapters", nargs="*", help="chapter notebooks or names (default: every chapter "
                    "with a specification in book/exercises)")
    pa.add_argument("--out", required=True, help="output folder: <out>/student and <out>/autograder")
    pa.add_argument("--book", default=str(book_dir()), help="the book folder (default: %(default)s)")
    pa.add_argument("--timeout", type=float, default=900, help="seconds for running the solution")
    pa.set_defaults(func=cmd_assign)

    pg = sub.add_parser("grade", help="grade a folder of submitted notebooks")
    pg.add_argument("submissions", help="folder of submissions: <student>.ipynb or <student>/<any>.ipynb")
    pg.add_argument("--out", required=True, help="the gradebook CSV to write")
    pg.add_argument("--key", help="answer key file or the <out>/autograder folder from `assign` "
                    "(default: build it now from the chapter's solution)")
    pg.add_argument("--chapter", help="chapter name, e.g. 03_random_intercept (default: from the "
                    "notebooks' metadata)")
    pg.add_argument("--feedback", help="folder for the feedback files (default: <out stem>_feedback)")
    pg.add_argument("--timeout", type=float, default=900, help="seconds per notebook (default %(default)s)")
    pg.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell (default %(default)s)")
    pg.add_argument("--jobs", type=int, default=1, help="notebooks run at the same time (default 1)")
    pg.add_argument("--regrade", action="store_true", help="grade everything again, ignoring an "
                    "existing gradebook")
    pg.add_argument("--book", default=str(book_dir()), help="the book folder (default: %(default)s)")
    pg.set_defaults(func=cmd_grade)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
