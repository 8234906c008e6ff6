"""Command-line round trip on a tiny dataset: train -> evaluate -> score, and every --help."""

import json

import pytest

from mvgtutor.cli import main
from train_helpers import write_tiny_dataset


def test_train_evaluate_score_round_trip(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MVGTUTOR_PROFILE", "test")
    data = write_tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    common = ["--data", str(data), "--model", "voxresnet", "--epochs", "1", "--batch-size", "2"]
    assert main(["train", *common, "--out", str(run), "--quiet"]) == 0
    assert (run / "model.pt").is_file() and (run / "run.json").is_file()
    assert main(["train", *common, "--out", str(run), "--quiet"]) == 0  # a finished run: nothing to do
    pred = tmp_path / "pred.mrc"
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--data", str(data), "--tomogram", "model_2", "--out", str(pred),
                 "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert main(["score", "--pred", str(pred), "--truth", str(data / "model_2" / "class_mask.mrc"),
                 "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["confusion_matrix"] == evaluated["confusion_matrix"]
    assert sum(map(sum, scored["confusion_matrix"])) == 32**3
    assert set(scored) >= {"classes", "miou", "mean_dice"}


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["score", "--pred", str(tmp_path / "missing.mrc"), "--truth", str(tmp_path / "t.mrc")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert main(["evaluate", "--run", str(tmp_path), "--data", str(tmp_path), "--tomogram", "model_0",
                 "--out", str(tmp_path / "p.mrc")]) == 1
    assert "not a training run" in capsys.readouterr().err


@pytest.mark.parametrize("command, options", [
    ("train", ["--data", "--out", "--model", "--decoder", "--profile", "--epochs", "--batch-size", "--lr",
               "--no-vsl", "--precision", "--compile", "--seed", "--device", "--quiet"]),
    ("evaluate", ["--run", "--data", "--tomogram", "--out", "--overwrite", "--overlap", "--window", "--batch-size",
                  "--device", "--json"]),
    ("simulate", ["--out", "--overwrite", "--n-tomograms", "--size", "--seed", "--snr", "--voxel-size", "--default"]),
    ("score", ["--pred", "--truth", "--json", "--num-classes"]),
    ("bench", ["--profiles", "--model", "--decoder", "--batch-size", "--steps", "--inference-size",
               "--precision", "--device", "--json"]),
])
def test_help_explains_every_option(command, options, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text
