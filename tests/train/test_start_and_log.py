"""What `lkca train` leaves and prints: nothing but one error line when the start fails; one
header line, one line per epoch and no progress-bar redraws when stderr is not a terminal."""

from __future__ import annotations

from pathlib import Path

from tiny_train import TINY_TRAIN_YAML

from lkca.cli import main

TINY_YAML = TINY_TRAIN_YAML + "max_steps_per_epoch: 2\n"


def test_missing_data_makes_no_run_folder_and_prints_one_line(tmp_path: Path, capsys):
    """The data set is read before the run folder is created or the run announced (the test runs
    in tmp_path, so the default runs/cifar10-... would land there)."""
    missing = tmp_path / "nonexistent"
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and f"{missing} does not exist" in captured.err
    assert not (tmp_path / "runs").exists()


def test_unknown_model_makes_no_run_folder(tmp_path: Path, capsys):
    assert main(["train", "--model", "vit_lkca_500kk", "--epochs", "1"]) == 2
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "runs").exists()


def test_log_without_a_terminal_has_one_line_per_epoch_and_no_bar(tmp_path: Path, capsys):
    """Progress bars are on by default but stderr is not a terminal here (pytest captures it):
    stderr stays empty, stdout holds the header and the recipe line once, then a line per epoch
    and the result."""
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    assert main(["train", "--config", "tiny.yaml", "--epochs", "1", "--device", "cpu",
                 "--out", "run"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0] == "training vit_lkca_500k on digits for 1 epoch -> run"
    assert lines[1].startswith("recipe: an epoch is ")  # the effective epoch length, once
    assert lines[2].startswith("epoch 1/1  train_loss ")
    assert lines[3].startswith("test accuracy (top-1): ") and len(lines) == 4
