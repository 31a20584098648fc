"""The command line: profile/list and one-line errors with exit code 2."""

import subprocess
import sys

from lkca.cli import main


def test_profile_prints_params_and_paper(capsys):
    assert main(["profile", "--model", "lkca_b"]) == 0
    out = capsys.readouterr().out
    assert "params  2.698M   (paper: 2.69M)" in out and "MACs" in out


def test_unknown_model_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "lkca", "profile", "--model", "lkca_bx"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "did you mean lkca_b" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_list(capsys):
    assert main(["list", "vit_lkca*"]) == 0
    assert "vit_lkca_12m" in capsys.readouterr().out.split()
