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
