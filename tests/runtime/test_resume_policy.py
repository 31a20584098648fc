"""One writer per run, and what --resume may change: through the command line, on a tiny digits
run trained once per module (each test resumes a copy). Every refusal: exit code 2, one line on
stderr, no traceback, and the run's files unchanged (docs/errors.md)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from tiny_train import TINY_TRAIN_YAML, assert_one_line_error

from lkca.cli import main
from lkca.runtime.run_lock import DirectoryLock

TINY = TINY_TRAIN_YAML + ("epochs: 2\nmax_steps_per_epoch: 2\neval_batch_size: 500\ndevice: cpu\n"
                          "progress: false\n")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def halfway(tmp_path_factory) -> tuple[Path, Path]:
    """(config file, a run stopped after epoch 1 of 2 with impl_policy fft)."""
    root = tmp_path_factory.mktemp("halfway")
    cfg = root / "tiny.yaml"
    cfg.write_text(TINY)
    run = root / "run"
    argv = ["train", "--config", str(cfg), "--out", str(run), "--set", "stop_after_epochs=1",
            "impl_policy=fft"]
    assert main(argv) == 0
    return cfg, run


@pytest.fixture
def run_copy(halfway, tmp_path) -> tuple[list[str], Path]:
    """(argv that resumes a fresh copy of the halfway run as it was started, its folder)."""
    cfg, run = halfway
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return ["train", "--config", str(cfg), "--out", str(out), "--resume", "--set",
            "stop_after_epochs=1", "impl_policy=fft"], out


def test_a_second_writer_is_refused_naming_the_holder(run_copy, capsys):
    argv, out = run_copy
    before = _digest(out)
    with DirectoryLock(out):  # as a training still running in that folder
        assert_one_line_error(capsys, argv, f"is in use by PID {os.getpid()}")
    assert _digest(out) == before


def test_resume_refuses_a_run_whose_log_was_deleted(run_copy, capsys):
    """The checkpoint is at epoch 1 but metrics.jsonl is gone: resuming would leave a log with
    epoch 1 missing, so it is refused, naming the file and both ways on."""
    argv, out = run_copy
    (out / "metrics.jsonl").unlink()
    before = _digest(out)
    err = assert_one_line_error(capsys, argv, f"--resume: {out / 'metrics.jsonl'} is missing, "
                                "though the checkpoint is at epoch 1")
    assert "restore it, or start over with --overwrite" in err
    assert _digest(out) == before and not (out / "metrics.jsonl").exists()


@pytest.mark.parametrize("flag, value, key", [
    ("--lr", "0.5", "lr"), ("--epochs", "1", "epochs"), ("--seed", "7", "seed"),
    ("--batch-size", "16", "batch_size"), ("--model", "vit_lkca_1m", "model"),
])
def test_resume_refuses_a_change_that_is_part_of_the_run(run_copy, capsys, flag, value, key):
    argv, out = run_copy
    before = _digest(out)
    err = assert_one_line_error(capsys, [*argv, flag, value], f"--resume: {key} differs from the run's")
    assert "config.yaml" in err  # the fix: resume with the run's own settings
    assert _digest(out) == before


def test_resume_with_the_runs_own_config_continues(run_copy, capsys):
    argv, out = run_copy
    # (--out: this copy's config.yaml still names the folder it was copied from)
    assert main(["train", "--config", str(out / "config.yaml"), "--out", str(out), "--resume",
                 "--set", "stop_after_epochs=2"]) == 0
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2
    summary = (out / "summary.json").read_text()
    assert "stop_after_epochs" in summary  # the one change, recorded
    assert "resume_history" in summary


def test_an_allowed_change_applies_and_is_recorded(run_copy, capsys):
    argv, out = run_copy
    assert main([*argv, "--set", "eval_batch_size=100", "stop_after_epochs=2"]) == 0
    import json

    history = json.loads((out / "summary.json").read_text())["resume_history"]
    assert history == [{"epoch": 1, "changed": {"eval_batch_size": [500, 100],
                                                 "stop_after_epochs": [1, 2]}}]
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["resume_history"] == history and state["config"]["eval_batch_size"] == 100


def test_resume_replays_the_recorded_implementation_choices(run_copy):
    from lkca.autotune.tuner import ShapeKey, impl_choices, rule_impl

    argv, out = run_copy
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["impl_choices"]
    assert saved and set(saved.values()) == {"fft"}
    # the rule would choose toeplitz for these 8x8 grids; the record says fft, and wins
    assert {rule_impl(ShapeKey.parse(k)) for k in saved} == {"toeplitz"}
    assert main([*argv[:-1], "impl_policy=rule", "stop_after_epochs=2"]) == 0
    used = impl_choices(details=True)
    assert {c["impl"] for c in used.values()} == {"fft"}
    assert {c["source"] for c in used.values()} == {"pinned"}
    final = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["impl_choices"]
    assert set(final.values()) == {"fft"}
    assert (out / "impl_choices.json").is_file()


@pytest.mark.parametrize("content", [[1, 2, 3], {"epoch": 1}])
def test_a_valid_pt_of_another_structure_is_refused(run_copy, capsys, content):
    argv, out = run_copy
    torch.save(content, out / "checkpoints" / "last.pt")
    before = _digest(out)
    assert_one_line_error(capsys, argv, "is not a checkpoint of lkca train")
    assert _digest(out) == before


def test_a_damaged_training_state_is_refused_naming_the_fallback(run_copy, capsys):
    argv, out = run_copy
    state = out / "checkpoints" / "last.pt"
    data = bytearray(state.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    state.write_bytes(bytes(data))
    before = _digest(out)
    assert_one_line_error(capsys, argv, f"{state} is damaged")
    assert _digest(out) == before


def test_a_broken_metrics_log_is_refused_naming_the_file(run_copy, capsys):
    argv, out = run_copy
    metrics = out / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + "[1, 2]\n")
    assert_one_line_error(capsys, argv, f"{metrics} line 2 is not a JSON object with a numeric epoch")
    metrics.unlink()
    metrics.mkdir()
    assert_one_line_error(capsys, argv, f"{metrics}: is a directory, not a file")


@pytest.mark.parametrize("key, value, expected", [
    ("epoch", -5, "invalid epoch (-5; expected a whole number >= 0)"),
    ("epoch", "x", "invalid epoch (x; expected a whole number >= 0)"),
    ("epoch", 1.0, "invalid epoch (1.0; expected a whole number >= 0)"),
    ("epoch", 3, "invalid epoch (3; expected at most the run's 2)"),
    ("step", True, "invalid step (True"),
    ("best_top1", "a", "invalid best_top1 (a; expected a finite number >= 0)"),
    ("wall_s", "a", "invalid wall_s (a"),
    ("wall_s", float("nan"), "invalid wall_s (nan"),
    ("loss_sum", None, "invalid loss_sum (None"),
    ("seen", -1, "invalid seen (-1"),
    ("resume_history", 5, "invalid resume_history (5; expected a list of {epoch, changed}"),
    ("resume_history", [{"epoch": "1", "changed": {}}], "invalid resume_history"),
])
def test_resume_refuses_a_training_state_with_a_damaged_position(run_copy, capsys, key, value,
                                                                  expected):
    """The whole position is checked before anything is used or written: the run's files,
    metrics.jsonl's records included, are left byte for byte as they were."""
    from tiny_train import assert_refused

    from lkca.checkpoint.files import load_state, save_state

    argv, out = run_copy
    state = load_state(out / "checkpoints" / "last.pt")
    state[key] = value
    save_state(out / "checkpoints" / "last.pt", dict(state))
    assert_refused(capsys, argv, expected, out)
