"""Every chapter stays a sequence of short calls, and every exercise's solution runs as written.

* Cell length: each code cell of each chapter of ``_toc.yml`` has at most ``MAX_LOGIC_LINES`` lines of logic
  (``mvgtutor.book.logic_lines``: lines that are neither blank nor comments; a wrapped call counts each line).
  The set-up cell is exempt (it is ``FIRST_CELL``, tested elsewhere).
* Solutions: each chapter is executed in a fresh kernel in the ``test`` profile: first all of the chapter's own
  cells, then the ```python code of every ``{solution}`` block in book order. (This runs every chapter, so it
  also catches whatever ``pytest --nbval-lax`` on the chapters catches.) The book places
  the exercises at the end of a chapter and their solutions use the chapter's variables (``tomogram``,
  ``features``, ``run``, ...) and occasionally an earlier solution's function (sol-03-random-init uses
  ``kmeans_inertia`` from sol-03-elbow), so "as written" means after the chapter, in order. A failing solution is
  reported with its label.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mvgtutor.book import MAX_LOGIC_LINES, chapter_notebooks, exercise_solutions, logic_lines
from mvgtutor.notebook import FIRST_CELL

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = [ROOT / path for path in chapter_notebooks(ROOT)]

# Chapters of the other half of issue 10 (fidelity-model: chapters 4, 5, 9) that still hold long cells here;
# the lead reconciles at merge. Not strict: the mark turns into a pass once the chapter is fixed.
LONG_CELLS_ELSEWHERE = {
    "05_graph_guided_transformer.ipynb": "issue 10 section 6: chapter 5's hand-written training loop (fidelity-model)",
}


def _chapter_param(path: Path, known: dict[str, str]):
    marks = [pytest.mark.xfail(reason=known[path.name], strict=False)] if path.name in known else []
    return pytest.param(path, id=path.stem, marks=marks)


def test_logic_lines_ignore_blanks_and_comments():
    assert logic_lines("# a comment\n\nx = 1  # counted\n    # indented comment\nf(\n    x,\n)\n") == 4


@pytest.mark.parametrize("notebook", [_chapter_param(p, LONG_CELLS_ELSEWHERE) for p in CHAPTERS])
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


def _with_solutions(notebook: Path):
    """The chapter with one extra code cell per solution that has code, tagged with its label."""
    book = nbformat.read(notebook, as_version=4)
    for solution in exercise_solutions(notebook):
        if solution.code:
            cell = nbformat.v4.new_code_cell(solution.code)
            cell.metadata["solution"] = solution.label
            book.cells.append(cell)
    return book



# Chapters whose solutions fail here and belong to the other half of issue 10 (fidelity-model), with why.
SOLUTIONS_ELSEWHERE: dict[str, str] = {
    "04_multiview_tokens.ipynb": "issue 10 section 6: ex-04-learned-after-training uses untrained_model and "
                                 "trained_model, which chapter 4 never defines (fidelity-model)",
}


@pytest.mark.parametrize("notebook", [_chapter_param(p, SOLUTIONS_ELSEWHERE) for p in CHAPTERS])
def test_every_exercise_solution_runs_after_its_chapter(notebook, monkeypatch, tmp_path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("MVGTUTOR_PROFILE", "test")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = _with_solutions(notebook)
    client = NotebookClient(book, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})  # files a solution writes go there
    try:
        client.execute()
    except CellExecutionError as error:
        failed = next((c for c in book.cells if c.cell_type == "code" and any(o.get("output_type") == "error"
                                                                               for o in c.get("outputs", []))), None)
        where = failed.metadata.get("solution", "the chapter itself") if failed is not None else "unknown cell"
        pytest.fail(f"{notebook.name}: {where} fails in the test profile: {str(error).splitlines()[-1]}")
