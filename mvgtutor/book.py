"""Book tooling: which notebooks the table of contents lists, derived build configurations, and student copies.

``_config.yml`` is the single source of the book's settings. The check build (no execution) and the
instructor edition (solutions shown open) are written from it, never copied by hand; the students' Colab copies
(every chapter without its solutions) are generated from ``book/``, and a test checks they are in sync::

    python -m mvgtutor.book chapters                          # the .ipynb chapters of _toc.yml, in order
    python -m mvgtutor.book with-solutions --out DIR          # each chapter + its solutions as code cells (nbval)
    python -m mvgtutor.book student                           # write student/book/*.ipynb (no solutions)
    python -m mvgtutor.book first-cell                        # set every chapter's first code cell to FIRST_CELL
    python -m mvgtutor.book config --execute off --out F.yml  # _config.yml with execution switched off
    python -m mvgtutor.book config --solutions show --out F.yml
    python -m mvgtutor.book config --cache _build/.jupyter_cache --out F.yml  # an execution cache shared by builds
    python -m mvgtutor.book fill-cache --cache _build/.jupyter_cache --jobs 2  # execute the chapters, 2 at a time

Solutions in the HTML: ``hide`` (the student edition, the default) folds each one in a dropdown under its exercise
(sphinx-togglebutton collapses ``{solution}`` blocks with ``:class: dropdown``); ``show`` (the instructor edition)
shows them open; ``remove`` leaves them out entirely (sphinx-exercise's ``hide_solutions``).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from mvgtutor.paths import atomic_write

ROOT = Path(__file__).resolve().parent.parent


def toc_files(root: Path = ROOT) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (root first), as written there (no extension)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks (``.ipynb``) that ``_toc.yml`` lists, in book order, relative to ``root``."""
    return [Path(f + ".ipynb") for f in toc_files(root) if (root / (f + ".ipynb")).is_file()]


MAX_LOGIC_LINES = 20  # a chapter's code cell is a few calls; loops, hooks and figures live in the library


def logic_lines(source: str) -> int:
    """Lines of logic of a code cell: lines that are neither blank nor comments (continuation lines count)."""
    return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))


@dataclass(frozen=True)
class Solution:
    """One solution of a chapter: the exercise it solves (label) and the code of its ```python blocks ('' if none)."""

    label: str
    code: str


_SOLUTION = re.compile(r"^(`{4,})\{solution\}\s*(\S+)\s*$(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)
_PYTHON = re.compile(r"^```python\s*$(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def exercise_solutions(notebook: Path) -> list[Solution]:
    """Every ``{solution}`` block of a chapter's markdown cells, in order, with its fenced Python code joined."""
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    solutions = []
    for cell in book.cells:
        if cell.cell_type != "markdown":
            continue
        for match in _SOLUTION.finditer(cell.source):
            code = "\n".join(block.strip("\n") for block in _PYTHON.findall(match.group(3)))
            solutions.append(Solution(label=match.group(2), code=code))
    return solutions


def chapter_with_solutions(notebook: Path):
    """The chapter with one code cell per solution that has code, appended in book order after its own cells.

    Exercises sit at the end of a chapter and their solutions use its variables (and now and then an earlier
    solution's function), so "runs as written" means: after the chapter, in order. Each added cell starts with a
    ``# solution: LABEL`` comment and carries the label in its metadata, so a failure names the exercise.
    """
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    for solution in exercise_solutions(notebook):
        if solution.code:
            cell = nbformat.v4.new_code_cell(f"# solution: {solution.label}\n{solution.code}")
            cell.metadata["solution"] = solution.label
            book.cells.append(cell)
    return book


def write_chapters_with_solutions(out: Path, root: Path = ROOT) -> list[Path]:
    """Write ``chapter_with_solutions`` of every ``_toc.yml`` chapter to ``out/<same relative path>``.

    ``make test`` runs nbval over these copies, so each chapter executes once, its exercises' solutions included.
    Returns the written paths in book order.
    """
    import nbformat

    written = []
    for relative in chapter_notebooks(root):
        target = Path(out) / relative
        with atomic_write(target, "w") as handle:
            nbformat.write(chapter_with_solutions(root / relative), handle)
        written.append(target)
    return written


SOLUTION_MODES = ("hide", "show", "remove")  # folded in a dropdown | open | left out of the HTML
TOGGLE_SELECTOR = ".toggle, .admonition.dropdown"  # sphinx-togglebutton's default: folds dropdown solutions
OPEN_SELECTOR = ".toggle"  # the instructor edition: solution admonitions are not folded


STUDENT_DIR = "student"  # student/book/NN_name.ipynb: what the Colab buttons open (_config.yml's path_to_book)
STUDENT_NOTE = ("*Solution: on this chapter's page of the course book, folded under the exercise (click to "
                "open it once you have tried).*")


def student_notebook(notebook: Path):
    """The chapter without its solutions: each ``{solution}`` block of a markdown cell becomes ``STUDENT_NOTE``.

    Colab shows MyST directives as raw text, so a solution left in the notebook is visible to a student at once.
    The chapter's metadata records that it is generated."""
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "markdown" and _SOLUTION.search(cell.source):
            cell.source = _SOLUTION.sub(lambda _: STUDENT_NOTE + "\n", cell.source).rstrip() + "\n"
            cell.source = cell.source.rstrip("\n")
    book.metadata["mvgtutor"] = {"student_copy_of": notebook.name,
                                 "generated_by": "python -m mvgtutor.book student (do not edit)"}
    return book


def student_copy_path(relative: Path, root: Path = ROOT) -> Path:
    """Where the students' copy of chapter ``relative`` (e.g. ``book/07_training.ipynb``) lives."""
    return root / STUDENT_DIR / relative


def write_student_copies(root: Path = ROOT) -> list[Path]:
    """Write ``student_notebook`` of every ``_toc.yml`` chapter under ``student/``; returns the paths written."""
    import nbformat

    written = []
    for relative in chapter_notebooks(root):
        target = student_copy_path(relative, root)
        with atomic_write(target, "w") as handle:
            nbformat.write(student_notebook(root / relative), handle)
        written.append(target)
    return written


def sync_first_cells(root: Path = ROOT) -> list[Path]:
    """Set the first code cell of every ``_toc.yml`` chapter to ``notebook.FIRST_CELL``; returns those changed."""
    import nbformat

    from mvgtutor.notebook import FIRST_CELL

    changed = []
    for relative in chapter_notebooks(root):
        book = nbformat.read(root / relative, as_version=4)
        first = next((cell for cell in book.cells if cell.cell_type == "code"), None)
        if first is not None and first.source != FIRST_CELL:
            first.source = FIRST_CELL
            with atomic_write(root / relative, "w") as handle:
                nbformat.write(book, handle)
            changed.append(root / relative)
    return changed


def derived_config(execute: str = "cache", solutions: str = "hide", root: Path = ROOT,
                   cache: Path | None = None) -> dict:
    """``_config.yml`` with the execution mode (``cache`` | ``off`` | ``force``) and the solutions' display
    (``hide``: folded, the students' edition | ``show``: open, the instructors' | ``remove``: left out);
    ``cache``: the folder of the execution cache (jupyter-cache), so that two builds (the check build and the
    instructor edition) execute each notebook once between them (default: one per build output folder).

    The instructors' edition also points its Colab buttons at the chapters themselves (solutions included)
    rather than at the students' copies."""
    from mvgtutor.errors import ConfigError

    if solutions not in SOLUTION_MODES:
        raise ConfigError(f"solutions {solutions!r}: choose one of {', '.join(SOLUTION_MODES)}")
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = execute
    if cache is not None:
        config["execute"]["cache"] = str(Path(cache).resolve())
    sphinx = config["sphinx"]["config"]
    sphinx["hide_solutions"] = solutions == "remove"
    sphinx["togglebutton_selector"] = OPEN_SELECTOR if solutions == "show" else TOGGLE_SELECTOR
    if solutions == "show":
        config["repository"]["path_to_book"] = ""
    # Paths in the derived file are resolved from the book's root, as in the original.
    config["bibtex_bibfiles"] = [str(root / b) for b in config.get("bibtex_bibfiles", [])]
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mvgtutor.book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("chapters", help="print the .ipynb chapters of _toc.yml, one per line")
    sub.add_parser("student", help=f"write the students' copies (no solutions) under {STUDENT_DIR}/; print them")
    sub.add_parser("first-cell", help="set the first code cell of every chapter to notebook.FIRST_CELL; print "
                                      "the chapters changed")
    copies = sub.add_parser("with-solutions", help="write each chapter with its solutions appended as code cells "
                                                   "under --out; print their paths, one per line")
    copies.add_argument("--out", type=Path, required=True)
    cfg = sub.add_parser("config", help="write a derived _config.yml")
    cfg.add_argument("--execute", choices=["cache", "off", "force"], default="cache")
    cfg.add_argument("--solutions", choices=SOLUTION_MODES, default="hide")
    cfg.add_argument("--cache", type=Path, default=None, help="the execution cache's folder (shared by builds)")
    cfg.add_argument("--out", type=Path, required=True)
    fill = sub.add_parser("fill-cache", help="execute the chapters missing from an execution cache, several at a "
                                             "time, and store them there (mvgtutor.bookcache)")
    fill.add_argument("--cache", type=Path, required=True, help="the execution cache's folder (as in config)")
    fill.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    fill.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800, as _config.yml)")
    args = parser.parse_args(argv)
    if args.command == "chapters":
        print("\n".join(str(p) for p in chapter_notebooks()))
    elif args.command == "student":
        print("\n".join(str(p) for p in write_student_copies()))
    elif args.command == "first-cell":
        print("\n".join(str(p) for p in sync_first_cells()))
    elif args.command == "with-solutions":
        print("\n".join(str(p) for p in write_chapters_with_solutions(args.out)))
    elif args.command == "fill-cache":
        from mvgtutor.bookcache import fill_execution_cache

        notebooks = [ROOT / path for path in chapter_notebooks()]
        outcome = fill_execution_cache(notebooks, args.cache, jobs=args.jobs, timeout=args.timeout)
        return 0 if all(error is None for error in outcome.values()) else 1
    else:
        with atomic_write(args.out, "w") as handle:
            yaml.safe_dump(derived_config(args.execute, args.solutions, cache=args.cache), handle, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
