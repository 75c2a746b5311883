"""Exercise grading for the course book: student versions, checks, gradebooks.

Workflow (see ``book/exercises/README.md``)::

    python -m lmelib.grading assign book/03_random_intercept.ipynb --out dist
    # -> dist/student/03_random_intercept.ipynb   (hand this out)
    #    dist/autograder/03_random_intercept.json (the answer key: keep it private)
    python -m lmelib.grading grade submissions/ --key dist/autograder --out gradebook.csv
    # -> gradebook.csv and gradebook_feedback/<student>.md

The student version creates ``grader = Checker.from_json(...)``, and
``grader.check("label")`` gives instant feedback on the form of an answer.
Importing this package is light (no nbclient, no YAML): the student's
kernel imports it.

Modules: ``spec`` (question specifications, ``book/exercises/*.yml``),
``notebook`` (chapters, submissions, the student version), ``capture``
(answers as JSON data), ``compare`` (the checks), ``checker`` (instant
feedback), ``sandbox`` (bubblewrap: namespaces, read-only mounts, uid,
limits), ``runner`` and ``worker`` (running a notebook in a sandbox and its
own kernel), ``grader`` (keys, assign, grading one submission),
``gradebook`` (signed rows, feedback file names, atomic writes), ``batch``
(a folder of submissions, resuming).
"""

from .checker import Checker, CheckResult

__all__ = ["Checker", "CheckResult"]
