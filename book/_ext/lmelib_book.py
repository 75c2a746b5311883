"""Sphinx extension for the course book (loaded through ``_config.yml``).

Two things that Jupyter Book 1, sphinx-exercise 1.2.1 and sphinxcontrib-bibtex
2.7.0 do not do on their own:

1. **Author-year labels in the bibliography.**  With
   ``bibtex_reference_style: author_year`` the text cites "Bates et al.
   (2015)", but the bibliography's own labels come from the pybtex formatting
   style (``alpha`` by default: "[BMBW15]").  The formatting style
   ``lmelib_author_year`` registered here labels every entry as the text cites
   it, "Bates et al., 2015" (one author: "Grunfeld, 1958"; two: "Pinheiro and
   Bates, 2000"; three or more: first author "et al."), adds a, b, ... when two
   entries would get the same label, and sorts the list by author, year and
   title.  Select it with ``bibtex_default_style: lmelib_author_year``.

2. **The student edition** (``hide_solutions: true``, see
   ``python -m lmelib.grading student-site``).  sphinx-exercise's own
   ``hide_solutions`` drops a ``{solution}`` directive, but of a *gated*
   solution (``{solution-start}`` ... ``{solution-end}``, which every chapter
   uses so that solution code cells sit inside the solution) it drops only the
   start marker and leaves the cells and text between the markers on the page.
   Here the start marker is kept as a placeholder and a transform removes
   everything from it to the matching ``{solution-end}``.  The notebooks
   copied to ``_sources/`` (the pages' download button) lose their solution
   cells too, so the student edition contains no solution text or code.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform

AUTHOR_YEAR_STYLE = "lmelib_author_year"


# ---------------------------------------------------------------------------
# 1. Author-year labels
# ---------------------------------------------------------------------------


def _plain(latex: str) -> str:
    """BibTeX text (``M{\\"a}chler``) as plain Unicode (``Mächler``)."""
    import latexcodec  # noqa: F401  (registers the "ulatex" codec; pybtex needs it)

    return codecs.decode(latex, "ulatex").replace("{", "").replace("}", "")


def _surname(person) -> str:
    return " ".join(_plain(p) for p in person.prelast_names + person.last_names)


def author_year_label(entry) -> str:
    """'Bates et al., 2015' for one entry (without the a/b suffix)."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in persons]
    if not names:
        who = _plain(entry.fields.get("title", entry.key))
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {_plain(entry.fields.get('year', 'n.d.'))}"


def _register_bibtex_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabelStyle(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            entries = list(sorted_entries)
            labels = [author_year_label(e) for e in entries]
            counts = Counter(labels)
            seen: Counter = Counter()
            for label in labels:
                if counts[label] > 1:
                    seen[label] += 1
                    yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
                else:
                    yield label

    class AuthorYearStyle(UnsrtStyle):
        default_label_style = AUTHOR_YEAR_STYLE
        default_sorting_style = "author_year_title"

    register_plugin("pybtex.style.labels", AUTHOR_YEAR_STYLE, AuthorYearLabelStyle, force=True)
    register_plugin("pybtex.style.formatting", AUTHOR_YEAR_STYLE, AuthorYearStyle, force=True)


# ---------------------------------------------------------------------------
# 2. The student edition: gated solutions removed
# ---------------------------------------------------------------------------


class hidden_solution(nodes.Element):
    """Placeholder where a gated solution started; removed before writing."""


class RemoveHiddenSolutions(SphinxTransform):
    """Remove each placeholder and its siblings up to the next solution-end."""

    default_priority = 9  # before sphinx-exercise's MergeGatedSolutions (10)

    def apply(self):
        from sphinx_exercise.nodes import solution_end_node

        for marker in list(self.document.findall(hidden_solution)):
            parent = marker.parent
            start = parent.index(marker)
            end = next(
                (
                    i
                    for i in range(start + 1, len(parent.children))
                    if isinstance(parent.children[i], solution_end_node)
                ),
                None,
            )
            if end is None:  # sphinx-exercise reports the broken structure
                parent.remove(marker)
                continue
            del parent.children[start : end + 1]


def _solution_start_directive():
    from sphinx_exercise.directive import SolutionStartDirective

    class StudentSolutionStart(SolutionStartDirective):
        def run(self):
            result = super().run()  # records the gated structure
            if self.env.app.config.hide_solutions:
                return [hidden_solution()]
            return result

    return StudentSolutionStart


_START = re.compile(r"^\s*(`{3,}|:{3,})\s*\{solution-start\}", re.M)
_END = re.compile(r"^\s*(`{3,}|:{3,})\s*\{solution-end\}\s*\n\s*\1[ \t]*$", re.M)


def strip_solutions(nb: dict) -> int:
    """Remove gated solutions from a notebook (in place); return how many.

    Markdown outside the solutions is kept, also where a cell holds the end
    of one solution, the next exercise and the start of its solution; the
    cells between a ``{solution-start}`` and its ``{solution-end}`` go.
    """
    out, removed, inside = [], 0, False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            if not inside:
                out.append(cell)
            continue
        src = "".join(cell.get("source", []))
        kept, pos = [], 0
        while True:
            if not inside:
                m = _START.search(src, pos)
                if m is None:
                    kept.append(src[pos:])
                    break
                kept.append(src[pos : m.start()])
                inside, removed = True, removed + 1
            else:
                m = _END.search(src, pos)
                if m is None:
                    break
                inside = False
            pos = m.end()
        text = "".join(kept).strip("\n")
        if text.strip():
            out.append(dict(cell, source=text + "\n"))
    nb["cells"] = out
    return removed


def _strip_copied_sources(app, exception) -> None:
    if exception is not None or not app.config.hide_solutions:
        return
    if app.builder.format != "html":
        return
    sources = Path(app.outdir) / "_sources"
    for path in sorted(sources.rglob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf8"))
        if strip_solutions(nb):
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf8")


def setup(app):
    app.setup_extension("sphinx_exercise")
    app.setup_extension("sphinxcontrib.bibtex")
    _register_bibtex_style()
    app.add_node(hidden_solution)
    app.add_directive("solution-start", _solution_start_directive(), override=True)
    app.add_transform(RemoveHiddenSolutions)
    app.connect("build-finished", _strip_copied_sources)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
