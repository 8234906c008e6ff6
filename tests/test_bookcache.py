"""Filling the book's execution cache in parallel (mvgtutor.bookcache): what it stores is what MyST-NB matches."""

import nbformat
import pytest

from mvgtutor.bookcache import fill_execution_cache


def _notebook(path, *sources):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_executed_notebooks_are_cached_and_failures_left_to_the_build(tmp_path):
    from jupyter_cache import get_cache

    good = _notebook(tmp_path / "good.ipynb", "x = 6 * 7", "print(x)")
    other = _notebook(tmp_path / "other.ipynb", "import os; print(os.getcwd())")
    bad = _notebook(tmp_path / "bad.ipynb", "raise ValueError('a broken chapter')")
    lines = []
    outcome = fill_execution_cache([good, other, bad], tmp_path / "cache", jobs=2, timeout=60, report=lines.append)
    assert outcome[str(good)] is None and outcome[str(other)] is None
    assert "a broken chapter" in outcome[str(bad)] and any("left to the book build" in line for line in lines)
    cache = get_cache(str(tmp_path / "cache"))
    _, merged = cache.merge_match_into_notebook(nbformat.read(good, as_version=4))  # how MyST-NB reads it back
    assert merged.cells[1].outputs[0]["text"] == "42\n"
    _, merged = cache.merge_match_into_notebook(nbformat.read(other, as_version=4))
    assert merged.cells[0].outputs[0]["text"].strip() == str(tmp_path)  # executed in the notebook's own folder
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(bad, as_version=4))
    again = []
    fill_execution_cache([good, other], tmp_path / "cache", jobs=2, report=again.append)
    assert "2 of 2 notebooks cached; executing 0" in again[0]  # nothing runs twice
    with pytest.raises(ValueError, match="at least one"):
        fill_execution_cache([good], tmp_path / "cache", jobs=0)
