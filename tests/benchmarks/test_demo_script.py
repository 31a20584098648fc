"""benchmarks/demo.py works in a folder of its own: it never deletes or writes a run it did not
create, and touches the repository's figures only when asked (``--record``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from tiny_train import snapshot

from lkca.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def demo(monkeypatch, tmp_path):
    """benchmarks/demo.py with a tiny training (1 epoch of 2 steps) and, for --record, a fake
    repository root under tmp_path."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("demo_script", BENCHMARKS / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "TRAIN_ARGS", ("--no-progress", "--epochs", "1", "--set",
                                               "max_steps_per_epoch=2", "warmup_epochs=0"))
    fake_root = tmp_path / "repository"
    (fake_root / "benchmarks" / "results").mkdir(parents=True)
    (fake_root / "docs" / "img").mkdir(parents=True)
    monkeypatch.setattr(module, "ROOT", fake_root)
    return module


def test_the_demo_works_in_its_own_folder(demo, tmp_path, capsys):
    # a user's own run of the default job, where the demo used to delete and retrain it
    users_run = tmp_path / "runs" / "digits-lkca_digits"
    users_run.mkdir(parents=True)
    (users_run / "summary.json").write_text('{"top1": 97.0}')
    repository_before = {name: snapshot(ROOT / name) for name in ("runs", "docs/img")}
    results_before = (ROOT / "benchmarks" / "results" / "demo_cpu.json").read_bytes()
    users_before = snapshot(tmp_path / "runs")

    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--record"]) == 0  # the current folder is tmp_path

    result = json.loads((out / "demo_cpu.json").read_text())
    assert result["train"]["epochs"] == 1 and 0 <= result["train"]["top1"] <= 100
    assert result["outputs"]["train"]["command"].startswith(
        "lkca train --out runs/digits-lkca_digits --no-progress")
    assert (out / "runs" / "digits-lkca_digits" / "summary.json").is_file()
    for picture in demo.PICTURES:
        assert (out / "docs" / "img" / picture).stat().st_size > 0
        # --record: copied to the (here: fake) repository
        assert (demo.ROOT / "docs" / "img" / picture).read_bytes() == (
            out / "docs" / "img" / picture).read_bytes()
    assert (demo.ROOT / "benchmarks" / "results" / "demo_cpu.json").read_bytes() == (
        out / "demo_cpu.json").read_bytes()
    assert str(out) in capsys.readouterr().out
    # nothing else touched: the user's run, the repository's runs/, pictures and results
    assert snapshot(tmp_path / "runs") == users_before
    assert {name: snapshot(ROOT / name) for name in ("runs", "docs/img")} == repository_before
    assert (ROOT / "benchmarks" / "results" / "demo_cpu.json").read_bytes() == results_before


def test_a_folder_holding_anything_is_refused_untouched(demo, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not an empty folder; the demo writes only into a "
                                        "folder of its own"):
        demo.main(["--out", str(taken)])
    assert snapshot(taken) == {"notes.txt": b"mine"}
