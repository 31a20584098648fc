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


def test_every_commands_module_is_a_registered_group():
    """Command groups register one way: each ``lkca/<group>/commands.py`` exposes
    ``add_parsers(sub)`` and is listed in ``COMMAND_GROUPS``."""
    import importlib
    from pathlib import Path

    from lkca.cli import COMMAND_GROUPS

    src = Path(__file__).resolve().parents[1] / "src"
    found = {".".join(p.relative_to(src).with_suffix("").parts)
             for p in (src / "lkca").glob("*/commands.py")}
    assert set(COMMAND_GROUPS) == found
    assert all(callable(importlib.import_module(m).add_parsers) for m in COMMAND_GROUPS)
