"""Every chapter stays a sequence of short calls, and every exercise's solution runs as written.

* Cell length: each code cell of each chapter of ``_toc.yml`` has at most ``MAX_LOGIC_LINES`` lines of logic
  (``mvgtutor.book.logic_lines``: lines that are neither blank nor comments; a wrapped call counts each line).
  The set-up cell is exempt (it is ``FIRST_CELL``, tested elsewhere).
* Students: each chapter has a generated copy without solutions under ``student/`` (what the Colab buttons open), in
  sync; every solution folds in a dropdown in the HTML; the first cell installs every package the chapter imports.
* Solutions: ``make test`` runs nbval (test profile) over a copy of each chapter with the ```python code of every
  ``{solution}`` block appended as code cells in book order (``mvgtutor.book.write_chapters_with_solutions``), so
  each chapter executes once, exercises included; the tests here check that those copies are complete. The book places
  the exercises at the end of a chapter and their solutions use the chapter's variables (``tomogram``,
  ``features``, ``run``, ...) and occasionally an earlier solution's function (sol-03-random-init uses
  ``kmeans_inertia`` from sol-03-elbow), so "as written" means after the chapter, in order. A failing solution's
  cell starts with ``# solution: LABEL``, so nbval's report names it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from mvgtutor.book import (_SOLUTION, MAX_LOGIC_LINES, STUDENT_DIR, STUDENT_NOTE, chapter_notebooks,
                           chapter_with_solutions, derived_config, exercise_solutions, logic_lines, student_copy_path,
                           student_notebook, write_chapters_with_solutions)
from mvgtutor.notebook import FIRST_CELL, INSTALL_EXTRA, REPOSITORY_URL

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


# --- what a student meets on Colab ----------------------------------------------------------------------

def test_student_copy_drops_each_solution_and_keeps_the_rest(tmp_path):
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_markdown_cell(
        "Intro.\n\n````{exercise}\n:label: ex-x\nDo it.\n````\n\n````{solution} ex-x\n:label: sol-x\n:class: dropdown\n"
        "```python\nanswer = 42\n```\n````\n\nAfter."), nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(book, tmp_path / "chapter.ipynb")
    student = student_notebook(tmp_path / "chapter.ipynb")
    text = student.cells[0].source
    assert "{exercise}" in text and "Do it." in text and "After." in text and STUDENT_NOTE in text
    assert "{solution}" not in text and "answer = 42" not in text
    assert student.cells[1].source == "x = 1"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_student_copy_is_in_sync_with_its_chapter(notebook):
    relative = notebook.relative_to(ROOT)
    copy = student_copy_path(relative, ROOT)
    assert copy.is_file(), f"{copy} is missing: run `python -m mvgtutor.book student`"
    expected = json.loads(nbformat.writes(student_notebook(notebook)))
    assert json.loads(copy.read_text()) == expected, f"{copy} is stale: run `python -m mvgtutor.book student`"
    assert "{solution}" not in copy.read_text()


def test_no_stale_student_copies():
    listed = {student_copy_path(notebook.relative_to(ROOT), ROOT) for notebook in CHAPTERS}
    extra = sorted(set((ROOT / STUDENT_DIR).rglob("*.ipynb")) - listed)
    assert not extra, f"student copies of no chapter: {extra}; delete them"


def test_colab_buttons_open_the_student_copies_of_the_configured_repository():
    book_config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = book_config["repository"]
    assert repository["url"] == REPOSITORY_URL and REPOSITORY_URL in FIRST_CELL
    assert repository["path_to_book"] == STUDENT_DIR and STUDENT_DIR in book_config["exclude_patterns"]
    for notebook in CHAPTERS:  # sphinx-book-theme: <colab>/github/<org>/<repo>/blob/<branch>/<path_to_book>/<page>
        page = notebook.relative_to(ROOT).with_suffix("")
        assert (ROOT / repository["path_to_book"] / f"{page}.ipynb").is_file(), f"no Colab target for {page}"
    assert derived_config(solutions="show")["repository"]["path_to_book"] == ""  # instructors open the chapters


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_every_solution_folds_in_a_dropdown(notebook):
    book = nbformat.read(notebook, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "markdown":
            for block in _SOLUTION.finditer(cell.source):
                assert ":class: dropdown" in block.group(3), f"{notebook.name}: {block.group(2)} would show open"


def _imports(source: str) -> set[str]:
    """Top-level module names imported by ``source`` (IPython magics and shell lines skipped)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_the_first_cell_installs_everything_its_chapter_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _requirement_names(project["dependencies"] + project["optional-dependencies"][INSTALL_EXTRA])
    assert f'mvgtutor[{INSTALL_EXTRA}] @ git+{REPOSITORY_URL}' in FIRST_CELL
    distributions = importlib.metadata.packages_distributions()
    jupyter = {"IPython", "ipykernel"}  # every Jupyter kernel, Colab's included, has them
    missing = {}
    for notebook in CHAPTERS:
        book = nbformat.read(notebook, as_version=4)
        sources = [c.source for c in book.cells if c.cell_type == "code"]
        sources += [s.code for s in exercise_solutions(notebook)]
        modules = set().union(*map(_imports, sources)) - set(sys.stdlib_module_names) - jupyter - {"mvgtutor"}
        for module in sorted(modules):
            names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
            if not names & installed:
                missing.setdefault(notebook.name, []).append(module)
    assert not missing, (f"imported but not installed by the first cell (add them to pyproject's "
                         f"'{INSTALL_EXTRA}' extra): {missing}")
