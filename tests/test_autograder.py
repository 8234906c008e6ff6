"""The ablation assignment's autograder (otter-grader, in its own environment .venv-otter: `make otter-env`):
the student version has no solutions or hidden tests, a correct answer gets full marks and a wrong one does not."""

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from mvgtutor.ablations.results import COLUMNS, append_result

ROOT = Path(__file__).resolve().parent.parent
OTTER = ROOT / ".venv-otter" / "bin" / "otter"
SOURCE = ROOT / "book" / "assignments" / "ablation_lab" / "ablation_lab.ipynb"

pytestmark = pytest.mark.skipif(not OTTER.is_file(), reason="otter-grader is not installed: run `make otter-env`")


def _results(path: Path) -> Path:
    """Reference seeds 0-2 and the student's seed 3: view_xy is 5-6 points below default on every seed."""
    for name, values in (("default", (40.0, 44.0, 42.0, 43.0)), ("view_xy", (35.0, 38.0, 36.0, 37.0))):
        for seed, value in enumerate(values):
            append_result(path, {c: "" for c in COLUMNS} | dict(experiment=name, seed=seed, profile="cpu",
                                                                budget="lab", miou=value, dice=value + 5))
    return path


def _grade(autograder: Path, notebook: Path, out: Path, results: Path) -> dict:
    out.mkdir()
    env = dict(os.environ, MVGTUTOR_ABLATION_RESULTS=str(results), OMP_NUM_THREADS="1")
    subprocess.run([str(OTTER), "run", "--no-logo", "-a", str(autograder), "-o", str(out), str(notebook)],
                   check=True, capture_output=True, env=env, timeout=300)
    tests = json.loads((out / "results.json").read_text())["tests"]
    return {t["name"]: t["score"] for t in tests if t.get("max_score")}


def test_otter_builds_the_assignment_and_grades_right_and_wrong_answers(tmp_path):
    subprocess.run([str(OTTER), "assign", "--no-run-tests", str(SOURCE), str(tmp_path / "dist")], check=True,
                   capture_output=True, timeout=300)
    student = (tmp_path / "dist" / "student" / "ablation_lab.ipynb").read_text()
    assert "SOLUTION" not in student and "hidden: true" not in student and "views=(\"xy\",)" not in student
    solution = tmp_path / "dist" / "autograder" / "ablation_lab.ipynb"
    autograder = next((tmp_path / "dist" / "autograder").glob("*.zip"))
    results = _results(tmp_path / "results.csv")

    right = _grade(autograder, solution, tmp_path / "right", results)
    assert right == {"q1": 2.0, "q2": 2.0, "q3": 3.0}

    wrong = nbformat.read(solution, as_version=4)
    for cell in wrong.cells:  # keep VSL on (a delta that breaks one view), the default's figure, a wrong verdict
        cell.source = (cell.source.replace("views=(\"xy\",), vsl=False", "views=(\"xy\",)")
                       .replace("r[\"experiment\"] == \"view_xy\" and r[\"seed\"] == 3",
                                "r[\"experiment\"] == \"default\" and r[\"seed\"] == 3")
                       .replace("verdict = \"better\" if", "verdict = \"within seed spread\" or"))
    nbformat.write(wrong, tmp_path / "wrong.ipynb")
    graded = _grade(autograder, tmp_path / "wrong.ipynb", tmp_path / "wrong", results)
    assert set(graded) == set(right) and all(graded[q] < right[q] for q in right), graded  # public checks pass
