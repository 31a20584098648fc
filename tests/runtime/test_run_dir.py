"""Nothing is written through a symbolic link planted in a run directory, a full disk at the
start leaves no empty config.yaml, and a linked folder of the run is refused."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from tiny_train import TINY_TRAIN_YAML

from lkca import atomic_files
from lkca.cli import main

TINY = TINY_TRAIN_YAML + "epochs: 1\nmax_steps_per_epoch: 1\ndevice: cpu\nprogress: false\n"


@pytest.fixture
def tiny(tmp_path) -> list[str]:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    return ["train", "--config", str(cfg)]


def test_planted_links_are_replaced_never_written_through(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    victims = {}
    for name in ("config.yaml", "metrics.jsonl", "summary.json",
                 "impl_choices.json", "checkpoints/last.pt", "checkpoints/last.safetensors",
                 "checkpoints/best.safetensors"):
        victim = tmp_path / f"victim-{name.replace('/', '-')}"
        victim.write_text("precious\n")
        os.symlink(victim, out / name)
        victims[name] = victim
    assert main([*tiny, "--out", str(out)]) == 2  # a run's files: refused without --overwrite
    assert "already holds a run" in capsys.readouterr().err
    assert main([*tiny, "--out", str(out), "--overwrite"]) == 0  # the links deleted, not followed
    for name, victim in victims.items():
        assert victim.read_text() == "precious\n", name
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints/last.pt"):
        assert not (out / name).is_symlink(), name  # replaced by the run's own file


def test_a_linked_lock_or_run_folder_is_refused(tiny, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("checkpoints", ".lkca.lock"):
        out = tmp_path / f"run-{name}"
        out.mkdir()
        os.symlink(elsewhere / name, out / name)
        assert main([*tiny, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is a symbolic link" in err, err
    assert list(elsewhere.iterdir()) == []


def test_a_full_disk_at_the_start_leaves_no_empty_config(tiny, tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_files.os, "fsync", full)
    out: Path = tmp_path / "run"
    assert main([*tiny, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err, err
    assert not (out / "config.yaml").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
