"""A failed `lkca seg train` start leaves nothing behind and prints one error line."""

from __future__ import annotations

from pathlib import Path

from lkca.cli import main


def test_missing_ade20k_makes_no_run_folder_and_prints_one_line(tmp_path: Path, capsys):
    missing = tmp_path / "nonexistent"
    assert main(["seg", "train", "--data-dir", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "ADEChallengeData2016 does not exist" in captured.err
    assert not (tmp_path / "runs").exists()  # the test runs in tmp_path: runs/ would land here


def test_a_step_past_the_devices_memory_is_refused_before_the_run_folder(ade: Path, tmp_path: Path,
                                                                        capsys, monkeypatch):
    """The segmentor is counted on the meta device at the config's batch and crop (16 x 512 x
    512 by default), against a machine of 1 MiB here: one line, nothing created."""
    from lkca.runtime import step_memory

    monkeypatch.setattr(step_memory, "device_memory", lambda device: 2**20)
    assert main(["seg", "train", "--data-dir", str(ade), "--device", "cpu", "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "on a batch of 16 512x512 images needs at least" in err
    assert "lower batch_size or crop_size (or the model's size)" in err
    assert not (tmp_path / "run").exists()
