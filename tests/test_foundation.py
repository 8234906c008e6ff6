"""The course's foundation: profiles, friendly errors, atomic files, the CLI, and the book's own wiring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from mvgtutor import config
from mvgtutor.runtime import device
from mvgtutor.book import chapter_notebooks, derived_config, toc_files
from mvgtutor.errors import ProfileError
from mvgtutor.notebook import FIRST_CELL, REPOSITORY_URL
from mvgtutor.paths import atomic_path, atomic_write

ROOT = Path(__file__).resolve().parent.parent


# --- profiles -------------------------------------------------------------------------------------------

def test_paper_defaults_are_the_paper_profile():
    paper = config.paper_config()
    assert (paper.model.embed_dim, paper.model.depth, paper.model.num_heads) == (256, 12, 16)
    assert (paper.model.token_patch, paper.model.num_clusters, paper.model.mask_ratio) == (4, 16, 0.5)
    assert (paper.train.lr, paper.train.batch_size, paper.train.epochs) == (1e-3, 72, 200)
    assert (paper.train.lr_step_epochs, paper.train.lr_gamma) == (100, 0.1)
    assert (paper.data.tomogram_size, paper.data.n_tomograms, paper.data.patch_size) == (512, 10, 32)
    assert config.profile_differences("paper") == {}
    assert paper.name == "paper" and paper.requires_cuda


@pytest.mark.parametrize("has_cuda, expected", [(True, "colab"), (False, "cpu")])
def test_default_profile_follows_the_hardware(monkeypatch, has_cuda, expected):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    monkeypatch.setattr(device, "cuda_available", lambda: has_cuda)
    assert config.get_profile().name == expected


def test_gpu_is_the_old_name_of_paper_with_a_one_line_notice(monkeypatch, capsys):
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    monkeypatch.setattr(config, "_NOTICED", set())
    assert config.make_profile("gpu") == config.make_profile("paper")
    assert config.profile_name("gpu") == "paper"
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1 and "'gpu' is now called 'paper'" in notice  # once per process


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "Test")
    assert config.get_profile().name == "test"


def test_unknown_profile_says_what_to_do(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "laptop")
    with pytest.raises(ProfileError, match="unknown profile 'laptop'.*test, cpu, colab, paper"):
        config.get_profile()


def test_paper_profile_without_gpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    with pytest.raises(ProfileError, match="no CUDA GPU.*MVGTUTOR_PROFILE=cpu") as info:
        config.get_profile("paper")
    assert "\n" not in str(info.value)
    assert config.get_profile("colab").name == "colab"  # sized for a GPU, but it runs (slowly) on a CPU


def test_profiles_shrink_the_paper():
    test, cpu, colab, paper = (config.make_profile(n) for n in config.PROFILE_NAMES)
    assert test.data.tomogram_size < cpu.data.tomogram_size < colab.data.tomogram_size < paper.data.tomogram_size
    assert test.model.embed_dim < cpu.model.embed_dim < colab.model.embed_dim < paper.model.embed_dim
    assert cpu.model.depth < colab.model.depth < paper.model.depth
    assert [p.requires_cuda for p in (test, cpu, colab, paper)] == [False, False, False, True]
    for profile in (test, cpu, colab, paper):
        assert profile.model.embed_dim % profile.model.num_heads == 0
        assert profile.data.tomogram_size % profile.data.patch_size == 0
        assert 0 < profile.data.n_test < profile.data.n_tomograms


def test_a_profile_of_your_own_routes_each_setting_to_its_part():
    mine = config.profile_from("cpu", epochs=2, embed_dim=64)
    cpu = config.make_profile("cpu")
    assert (mine.train.epochs, mine.model.embed_dim) == (2, 64)
    assert mine.data == cpu.data and mine.name == "cpu"  # same data: same dataset folder
    assert "train.epochs=2" in mine.description
    assert config.profile_differences(mine)["train.epochs"] == (200, 2)
    grown = config.profile_from("test", tomogram_size=96, train={"seed": 3})
    assert grown.name == "test-custom" and grown.data.tomogram_size == 96 and grown.train.seed == 3
    assert config.profile_from("paper", name="laptop-gpu", batch_size=16).requires_cuda


@pytest.mark.parametrize("bad, says", [(dict(seed=1), "belongs to data and train"),
                                       (dict(epoch=3), "belongs to no part"),
                                       (dict(train={"epoch": 3}), "mvgtutor/config.py")])
def test_profile_from_rejects_unknown_or_ambiguous_settings(bad, says):
    with pytest.raises(config.ConfigError, match=says) as info:
        config.profile_from("cpu", **bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("has_cuda", [True, False])
def test_device_follows_the_hardware_not_the_profile(monkeypatch, has_cuda):
    from mvgtutor import notebook

    monkeypatch.delenv(config.DEVICE_ENV, raising=False)
    monkeypatch.setattr(device, "cuda_available", lambda: has_cuda)
    for profile in ("test", "cpu", "colab", config.profile_from("cpu", name="mine", epochs=1)):
        env = notebook.setup_notebook(profile, quiet=True)
        assert env.device.type == ("cuda" if has_cuda else "cpu")
    assert config.choose_device("cpu").type == "cpu"  # an explicit choice wins
    monkeypatch.setenv(config.DEVICE_ENV, "cpu")
    assert config.choose_device().type == "cpu"


def test_cuda_device_without_a_gpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    with pytest.raises(ProfileError, match="no CUDA GPU is visible: use cpu"):
        config.choose_device("cuda")
    with pytest.raises(ProfileError, match="unknown device 'tpu'"):
        config.choose_device("tpu")
    with pytest.raises(ProfileError, match="needs a GPU and no CUDA GPU"):  # not by name: by requires_cuda
        config.get_profile(config.profile_from("paper", name="laptop-gpu", batch_size=16))


def test_our_training_switches_are_named_as_ours():
    paper = config.paper_config().train
    for key in config.OUR_TRAIN_SETTINGS:
        assert getattr(paper, key) is True  # on in the paper profile, although the paper does not describe them


# --- files ----------------------------------------------------------------------------------------------

def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_write(target, "w") as handle:
        json.dump({"ok": True}, handle)
    assert json.loads(target.read_text()) == {"ok": True}


def test_atomic_path_renames_on_success_only(tmp_path):
    target = tmp_path / "sub" / "weights.bin"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
            raise ValueError
    assert not target.exists()
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert [p.name for p in target.parent.iterdir()] == ["weights.bin"]


# --- command line ---------------------------------------------------------------------------------------

def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "mvgtutor", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("simulate", "info", "train", "evaluate", "score", "bench"):
        assert command in out.stdout


def test_cli_every_registered_command_exists(capsys):
    from mvgtutor.cli import COMMANDS, main

    # in-process (one interpreter per command took 37 s of CI); the entry point itself is run as a subprocess above
    for command in COMMANDS:
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0, command
        assert "usage: python -m mvgtutor " + command in capsys.readouterr().out


# --- packaging ------------------------------------------------------------------------------------------

def _names(requirements: list[str]) -> dict[str, str]:
    import re

    return {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower(): r for r in requirements}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = [r for r in pip_section if not r.startswith("-e")]
    assert _names(listed) == _names(declared)


def test_constraints_pin_every_declared_dependency_and_cpu_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"] + project["optional-dependencies"]["dev"])
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    missing = [n for n in declared if n.replace("_", "-") not in pins]
    assert not missing, f"constraints.txt does not pin {missing}"
    assert pins["torch"] == "2.13.0"
    assert "torch>=" in _names(project["dependencies"])["torch"]  # loose in the package: Colab keeps its torch


# --- the book -------------------------------------------------------------------------------------------

def _book_notebooks() -> list[Path]:
    return sorted((ROOT / "book").glob("*.ipynb"))


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    listed = toc_files(ROOT)
    for entry in listed:
        assert any((ROOT / (entry + ext)).is_file() for ext in (".ipynb", ".md")), f"{entry} in _toc.yml is missing"
    for notebook in _book_notebooks():
        assert str(notebook.relative_to(ROOT).with_suffix("")) in listed, f"{notebook.name} is not in _toc.yml"


def test_make_test_runs_every_toc_chapter_under_nbval():
    out = subprocess.run(["make", "-n", "test", f"PY={sys.executable}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    commands = out.stdout.replace("\\\n", " ").splitlines()
    pytest_lines = [line for line in commands if "pytest" in line and "--nbval-lax" in line]
    assert pytest_lines, out.stdout
    assert any("mvgtutor.book with-solutions --out _build/nbval" in line for line in commands), out.stdout
    for notebook in chapter_notebooks(ROOT):  # each chapter runs once, from its copy with the solutions appended
        assert f"_build/nbval/{notebook}" in pytest_lines[0].split(), f"{notebook} is not executed by nbval"
    assert "--nbval-cell-timeout" in pytest_lines[0]


@pytest.mark.parametrize("notebook", _book_notebooks(), ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(notebook):
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{notebook.name} has outputs: clear them"


@pytest.mark.parametrize("notebook", _book_notebooks(), ids=lambda p: p.name)
def test_notebook_starts_with_the_setup_cell(notebook):
    nb = nbformat.read(notebook, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == FIRST_CELL, f"{notebook.name}: the first code cell must be notebook.FIRST_CELL"


def test_repository_url_is_set_in_one_place():
    book_config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert book_config["repository"]["url"] == REPOSITORY_URL
    assert book_config["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")


def test_derived_configs_switch_execution_and_solutions_only():
    from mvgtutor.book import OPEN_SELECTOR, TOGGLE_SELECTOR

    original = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert original["execute"]["execute_notebooks"] == "cache"
    assert original["sphinx"]["config"]["hide_solutions"] is False  # students: solutions folded, not removed
    check = derived_config(execute="off")
    student, instructor, removed = (derived_config(solutions=mode) for mode in ("hide", "show", "remove"))
    assert check["execute"]["execute_notebooks"] == "off"
    assert student["sphinx"]["config"]["togglebutton_selector"] == TOGGLE_SELECTOR  # folds .admonition.dropdown
    assert student["repository"] == original["repository"]
    assert instructor["sphinx"]["config"]["togglebutton_selector"] == OPEN_SELECTOR == ".toggle"
    assert instructor["sphinx"]["config"]["hide_solutions"] is False
    assert removed["sphinx"]["config"]["hide_solutions"] is True
    assert instructor["execute"] == original["execute"]
    with pytest.raises(config.ConfigError, match="solutions 'folded'"):
        derived_config(solutions="folded")


def test_widget_javascript_is_vendored():
    book_config = yaml.safe_load((ROOT / "_config.yml").read_text())
    scripts = book_config["sphinx"]["config"]["nb_ipywidgets_js"]
    static = ROOT / book_config["sphinx"]["config"]["html_static_path"][0]
    for script in scripts:
        assert "://" not in script, f"{script} would need the network"
        assert (static / script).stat().st_size > 0
    assert (static / "widgets" / "embed-amd.js").stat().st_size > 1_000_000  # the whole html-manager bundle
    mathjax = book_config["sphinx"]["config"]["mathjax_path"]
    assert "://" not in mathjax and (static / mathjax).stat().st_size > 500_000


def test_ci_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.startswith("#")]
    assert "make test" in commands
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_nbval_harness_fails_when_a_cell_raises(tmp_path):
    """The same pytest/nbval options as `make test`: a raising cell must fail the run."""
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise RuntimeError('a chapter is broken')"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, path)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax",
                          "--nbval-cell-timeout=60", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1, run.stdout
    assert "a chapter is broken" in run.stdout
