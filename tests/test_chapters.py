"""Every chapter stays a sequence of short calls, and every exercise's solution runs as written.

* Cell length: each code cell of each chapter of ``_toc.yml`` has at most ``MAX_LOGIC_LINES`` lines of logic
  (``mvgtutor.book.logic_lines``: lines that are neither blank nor comments; a wrapped call counts each line).
  The set-up cell is exempt (it is ``FIRST_CELL``, tested elsewhere).
* Solutions: ``make test`` runs nbval (test profile) over a copy of each chapter with the ```python code of every
  ``{solution}`` block appended as code cells in book order (``mvgtutor.book.write_chapters_with_solutions``), so
  each chapter executes once, exercises included; the tests here check that those copies are complete. The book places
  the exercises at the end of a chapter and their solutions use the chapter's variables (``tomogram``,
  ``features``, ``run``, ...) and occasionally an earlier solution's function (sol-03-random-init uses
  ``kmeans_inertia`` from sol-03-elbow), so "as written" means after the chapter, in order. A failing solution's
  cell starts with ``# solution: LABEL``, so nbval's report names it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mvgtutor.book import (MAX_LOGIC_LINES, chapter_notebooks, chapter_with_solutions, exercise_solutions,
                           logic_lines, write_chapters_with_solutions)
from mvgtutor.notebook import FIRST_CELL

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = [ROOT / path for path in chapter_notebooks(ROOT)]

def test_logic_lines_ignore_blanks_and_comments():
    assert logic_lines("# a comment\n\nx = 1  # counted\n    # indented comment\nf(\n    x,\n)\n") == 4


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_every_code_cell_is_a_few_calls(notebook):
    book = nbformat.read(notebook, as_version=4)
    long_cells = [(index, logic_lines(cell.source)) for index, cell in enumerate(book.cells)
                  if cell.cell_type == "code" and cell.source != FIRST_CELL
                  and logic_lines(cell.source) > MAX_LOGIC_LINES]
    assert not long_cells, (f"{notebook.name}: code cells (index, lines of logic) longer than {MAX_LOGIC_LINES}: "
                            f"{long_cells}; move the loop, hook or figure into the library")


def test_solutions_are_extracted_with_their_labels(tmp_path):
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_markdown_cell(
        "````{exercise}\n:label: ex-x\nDo it.\n````\n````{solution} ex-x\n:label: sol-x\n:class: dropdown\n"
        "Prose.\n```python\na = 1\n```\nMore prose.\n```python\nb = a + 1\n```\n````\n\n"
        "````{solution} ex-y\n:label: sol-y\nOnly words.\n````")]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(book, path)
    solutions = exercise_solutions(path)
    assert [(s.label, s.code) for s in solutions] == [("ex-x", "a = 1\nb = a + 1"), ("ex-y", "")]


def test_chapter_with_solutions_appends_each_solution_as_a_labelled_cell(tmp_path):
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell(
        "````{solution} ex-x\n:label: sol-x\n```python\ny = x + 1\n```\n````\n"
        "````{solution} ex-y\n:label: sol-y\nWords only.\n````")]
    nbformat.write(book, tmp_path / "chapter.ipynb")
    copy = chapter_with_solutions(tmp_path / "chapter.ipynb")
    assert [c.source for c in copy.cells[:2]] == [c.source for c in book.cells]  # the chapter itself, unchanged
    assert len(copy.cells) == 3 and copy.cells[2].source == "# solution: ex-x\ny = x + 1"
    assert copy.cells[2].metadata["solution"] == "ex-x"


def test_every_chapter_runs_under_nbval_with_its_solutions(tmp_path):
    """`make test` hands nbval these copies: every chapter of _toc.yml, each followed by all its solution code."""
    written = write_chapters_with_solutions(tmp_path, ROOT)
    assert [p.relative_to(tmp_path) for p in written] == chapter_notebooks(ROOT)
    for path, original in zip(written, CHAPTERS):
        added = len(nbformat.read(path, as_version=4).cells) - len(nbformat.read(original, as_version=4).cells)
        assert added == sum(1 for s in exercise_solutions(original) if s.code)
