"""Reading chapter notebooks and submissions; writing the student version.

A chapter marks its exercises with sphinx-exercise directives in markdown
cells::

    ```{exercise}
    :label: ex-ri-icc-english
    Question text ...
    ```

    ```{solution-start} ex-ri-icc-english
    :class: dropdown
    ```
    (code cells and markdown computing the named answers)
    ```{solution-end}
    ```

Directives may share a markdown cell with other text and with each other.
The student version keeps every cell of the chapter outside the solutions,
turns each exercise into plain markdown (Jupyter does not render MyST
directives), drops everything between ``solution-start`` and
``solution-end`` (and any ``{solution}`` block), and puts after each graded
exercise an answer cell (``name = ...``) and a check cell
(``grader.check("label")``).  One setup cell before the first exercise
creates ``grader`` with the visible checks.  Outputs are cleared.
"""

from __future__ import annotations

import json
import re

import nbformat

__all__ = ["parse_markdown", "exercises_in", "code_cells", "read_submission", "claimed_chapter",
           "make_student_notebook", "SubmissionError", "MAX_NOTEBOOK_BYTES"]

#: a larger file is not read as a notebook (chapters with outputs are ~1 MB)
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024

_OPEN = re.compile(r"^(\s*)(`{3,}|:{3,})\{(exercise|solution-start|solution-end|solution)\}\s*(.*?)\s*$")


class SubmissionError(ValueError):
    """A submitted file is not a notebook that can be run."""


def _closing(lines: list[str], start: int, fence: str) -> int:
    char, n = fence[0], len(fence)
    pat = re.compile(r"^\s*" + re.escape(char) + "{" + str(n) + r",}\s*$")
    for j in range(start + 1, len(lines)):
        if pat.match(lines[j]):
            return j
    return len(lines) - 1


def parse_markdown(text: str) -> list[tuple]:
    """Split markdown into ``("text", str)`` and directive items.

    Directive items: ``("exercise", label, title, body)``,
    ``("solution-start", label)``, ``("solution-end",)``,
    ``("solution", label)``.
    """
    lines = text.split("\n")
    items: list[tuple] = []
    buf: list[str] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            buf.append(lines[i])
            i += 1
            continue
        if buf:
            items.append(("text", "\n".join(buf)))
            buf = []
        j = _closing(lines, i, m.group(2))
        name, arg = m.group(3), m.group(4)
        block = lines[i + 1:j]
        options, k = {}, 0
        while k < len(block) and re.match(r"^\s*:[\w-]+:", block[k]):
            key, _, value = block[k].strip()[1:].partition(":")
            options[key] = value.strip()
            k += 1
        body = "\n".join(block[k:]).strip("\n")
        if name == "exercise":
            items.append(("exercise", options.get("label", ""), arg, body))
        elif name == "solution-end":
            items.append(("solution-end",))
        else:
            items.append((name, arg.split()[0] if arg else ""))
        i = j + 1
    if buf:
        items.append(("text", "\n".join(buf)))
    return items


def exercises_in(nb) -> dict[str, dict]:
    """Exercise label -> {"text", "solution_code"} for a chapter notebook."""
    out: dict[str, dict] = {}
    current = None
    in_solution = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for item in parse_markdown(cell.source):
                if item[0] == "exercise":
                    current = item[1]
                    out[current] = {"text": item[3], "solution_code": ""}
                elif item[0] == "solution-start":
                    in_solution = item[1]
                elif item[0] == "solution-end":
                    in_solution = None
        elif cell.cell_type == "code" and in_solution is not None:
            if in_solution in out:
                out[in_solution]["solution_code"] += cell.source + "\n"
    return out


def code_cells(nb) -> list[tuple[int, str]]:
    """(cell index, source) of the code cells that have code."""
    return [(i, c.source) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and c.source.strip()]


def read_submission(data: bytes) -> tuple[list[tuple[int, str]], dict]:
    """Code cells and metadata of a submitted notebook, read leniently.

    Raises :class:`SubmissionError` with a message for the student if the
    file is empty, too large, not JSON (invalid, truncated, nested too
    deeply to read), or not a notebook.
    """
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"the file is too large to be a notebook ({len(data) // 2**20} MiB; "
                              f"at most {MAX_NOTEBOOK_BYTES // 2**20} MiB)")
    if not data.strip():
        raise SubmissionError("the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SubmissionError("the file is not a notebook (not UTF-8 text)") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SubmissionError(f"the file is not valid JSON, so it is not a notebook ({exc})") from None
    except RecursionError:
        raise SubmissionError("the file is JSON nested too deeply to be a notebook") from None
    if not isinstance(raw, dict):
        raise SubmissionError("the file is JSON but not a notebook")
    if "cells" not in raw and "worksheets" in raw:
        try:
            raw = nbformat.convert(nbformat.from_dict(raw), 4)
        except Exception as exc:  # noqa: BLE001 - RecursionError too
            raise SubmissionError(f"the notebook is in an old format that could not be read ({exc})") from None
    cells = raw.get("cells")
    if not isinstance(cells, list):
        raise SubmissionError("the file is JSON but not a notebook (it has no list of cells)")
    out = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        if not isinstance(src, str) or not src.strip():
            continue
        out.append((i, src))
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    return out, meta


def claimed_chapter(meta: dict) -> str | None:
    """The chapter a notebook's metadata says it is for (the student version
    records it), if it names one in the form of a chapter name."""
    info = meta.get("lmelib_grading")
    name = info.get("chapter") if isinstance(info, dict) else None
    if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
        return name
    return None


def _cell_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:64]


_KIND_HINT = {
    "float": "a number", "pvalue": "a p-value", "int": "an integer", "bool": "True or False",
    "str": "a label (string)",
    "tuple": "a tuple", "series": "a pandas Series", "frame": "a pandas DataFrame",
}


def _stub(question: dict) -> str:
    if question.get("stub"):
        return question["stub"].rstrip("\n")
    lines = []
    for a in question["answers"]:
        if a["expr"] is None:
            lines.append(f"{a['name']} = ...  # {_KIND_HINT[a['kind']]}")
    return "\n".join(lines)


def _compact_checks(checks: dict) -> str:
    """The visible checks as JSON, one line per question, defaults left out."""
    lines = []
    for label, q in checks["questions"].items():
        answers = {}
        for name, a in q["answers"].items():
            slim = {"kind": a["kind"]}
            if a.get("expr"):
                slim["expr"] = a["expr"]
            if a.get("ordered"):
                slim["ordered"] = True
            if a.get("structure"):
                slim["structure"] = a["structure"]
            answers[name] = slim
        lines.append(f"  {json.dumps(label)}: " + json.dumps({"points": q["points"], "answers": answers}))
    head = {k: v for k, v in checks.items() if k != "questions"}
    return ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items())
            + ', "questions": {\n' + ",\n".join(lines) + "}}")


def _setup_source(checks: dict) -> str:
    payload = _compact_checks(checks)
    literal = f"r'''{payload}'''" if "'''" not in payload and not payload.endswith("\\") else repr(payload)
    return ("# Checks for the exercises: run this cell once before them, and do not edit it.\n"
            "# grader.check(\"label\") runs the visible checks of one exercise (the form of\n"
            "# your answers); the values are checked when your notebook is graded.\n"
            "from lmelib.grading import Checker\n\n"
            f"grader = Checker.from_json({literal})")


def make_student_notebook(nb, spec: dict, checks: dict, key_id: str):
    """The student version of chapter ``nb`` (see the module docstring)."""
    graded = {q["label"]: q for q in spec["questions"]}
    out = nbformat.v4.new_notebook()
    out.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "lmelib_grading": {"chapter": spec["name"], "key": key_id},
    }
    cells = out.cells
    intro = nbformat.v4.new_markdown_cell(
        "> **Exercise version.** The solutions of this chapter are removed.  "
        "Run the notebook from the top, write each answer in its answer cell (replace "
        "`...`, keep the variable names), and run the check cell below it for instant "
        "feedback on the form of your answer.  The values are checked when the notebook is "
        "graded, by re-running it from the top in a fresh kernel.")
    intro.id = "grading-intro"
    state = {"in_solution": False, "n": 0, "setup": False}
    md_buf: list[str] = []

    def flush():
        text = "\n".join(md_buf).strip("\n")
        md_buf.clear()
        if text.strip():
            cells.append(nbformat.v4.new_markdown_cell(text))

    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for item in parse_markdown(cell.source):
                kind = item[0]
                if kind == "text":
                    if not state["in_solution"]:
                        md_buf.append(item[1])
                elif kind == "solution-start":
                    state["in_solution"] = True
                elif kind == "solution-end":
                    state["in_solution"] = False
                elif kind == "solution":
                    pass  # a non-gated solution block: dropped
                elif kind == "exercise" and not state["in_solution"]:
                    _, label, title, body = item
                    flush()
                    if not state["setup"]:
                        setup = nbformat.v4.new_code_cell(_setup_source(checks))
                        setup.id = "grading-setup"
                        setup.metadata["lmelib_grading"] = {"role": "setup"}
                        cells.append(setup)
                        state["setup"] = True
                    state["n"] += 1
                    head = f"### Exercise {state['n']}" + (f": {title}" if title else "")
                    ex = nbformat.v4.new_markdown_cell(f"{head}\n\n{body}\n\n(label: `{label}`)")
                    ex.id = _cell_id(f"grading-ex-{label}")
                    cells.append(ex)
                    if label in graded:
                        q = graded[label]
                        ans = nbformat.v4.new_code_cell(_stub(q))
                        ans.id = _cell_id(f"answer-{label}")
                        ans.metadata["lmelib_grading"] = {"role": "answer", "question": label}
                        chk = nbformat.v4.new_code_cell(f'grader.check("{label}")')
                        chk.id = _cell_id(f"check-{label}")
                        chk.metadata["lmelib_grading"] = {"role": "check", "question": label}
                        cells.extend([ans, chk])
            flush()
        elif state["in_solution"]:
            continue
        else:
            flush()
            new = nbformat.from_dict(json.loads(json.dumps(cell)))
            if new.cell_type == "code":
                new.outputs = []
                new.execution_count = None
            new.metadata.pop("execution", None)
            if not new.get("id"):
                new.id = f"cell-{index}"
            cells.append(new)
    flush()
    if cells and cells[0].cell_type == "markdown":
        cells.insert(1, intro)
    else:
        cells.insert(0, intro)
    # markdown cells made here get random ids from nbformat: make them stable
    for k, c in enumerate(cells):
        if re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9a-f]{8,}", c.get("id", "") or ""):
            c.id = f"student-{k}"
    nbformat.validate(out)
    return out
