"""The command line: profile/list and one-line errors with exit code 2."""

import subprocess
import sys

import pytest

from lkca.cli import main


def test_profile_prints_params_and_paper(capsys):
    assert main(["profile", "--model", "lkca_b"]) == 0
    out = capsys.readouterr().out
    assert "params  2,691,310   (paper: 2.69M, +0.0%)" in out and "MACs" in out


def test_profile_compares_the_papers_flops_with_the_ptflops_count(capsys):
    """The paper's "Flops" beside ours counted as ptflops counts (the authors' count.py)."""
    assert main(["profile", "--model", "lkca_b"]) == 0
    out = capsys.readouterr().out
    assert ("MACs    170.81M counted as the paper (ptflops' module hooks)   (paper 'Flops': "
            "170.81M, -0.00%)") in out
    assert main(["profile", "--model", "lkca_l"]) == 0  # counted at 32 px, 10 classes, as the paper
    assert "(input 32x32, 10 classes)" in capsys.readouterr().out
    # away from the paper's input the paper's figures do not apply and are not shown
    assert main(["profile", "--model", "lkca_b", "--img-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "paper 'Flops'" not in out and "(paper:" not in out


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


def test_list_matches_a_word_anywhere_and_a_glob_the_whole_name(capsys):
    assert main(["list", "lkca"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "vit_lkca_2p7m" in names and "lkca_digits" in names and "lkca_s_seg" in names
    assert all("lkca" in n for n in names)
    assert main(["list", "lkca*"]) == 0  # a glob matches whole names: the demo and the backbone
    assert capsys.readouterr().out.splitlines() == [
        "lkca_digits", "lkca_s_seg  (segmentation backbone: lkca seg, lkca profile)"]
    assert main(["list", "vit_lkca_?m"]) == 0
    assert capsys.readouterr().out.split() == ["vit_lkca_1m", "vit_lkca_2m", "vit_lkca_4m",
                                                "vit_lkca_8m"]


def test_list_shows_the_segmentation_backbones(capsys):
    assert main(["list", "seg"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["lkca_s_seg", "resnet50_seg", "swin_s_seg",
                                                   "twins_pcpvt_s_seg", "vit_s_seg"]
    assert all(line.endswith("(segmentation backbone: lkca seg, lkca profile)") for line in lines)


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "ten"], "lkca train: error: argument --epochs: invalid int value: 'ten'"),
    (["export", "--checkpoint", "x", "--impl", "fft"], "lkca export: error: argument --impl: "
                                                       "invalid choice: 'fft'"),
    (["tables", "--table", "9"], "lkca tables: error: argument --table: invalid choice: 9"),
    (["kernels", "--checkpoint", "X", "--model", "Y"],
     "lkca kernels: error: argument --model: not allowed with argument --checkpoint"),
])
def test_argument_mistakes_are_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(message) and err.rstrip().endswith(f"; see lkca {argv[0]} --help"), err


def test_list_without_a_match_says_so_with_exit_code_1(capsys):
    assert main(["list", "no_such_model"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "no model matches 'no_such_model'; `lkca list` shows them all\n"


def test_list_aliases_show_their_target(capsys):
    assert main(["list", "--aliases", "2p7m"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "lkca_b -> vit_lkca_2p7m" in lines and "vit_lkca_2p7m" in lines
    assert main(["list", "--aliases", "lkca_b"]) == 0  # matched by the alias' own name
    assert capsys.readouterr().out.splitlines() == ["lkca_b -> vit_lkca_2p7m"]


def test_closed_stdout_ends_quietly_without_a_traceback():
    """`lkca list --aliases | head -1`: the reader is gone. The pipe's read end is closed before
    the command starts, so its first write fails every time (no race with a reader)."""
    import os

    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "lkca", "list", "--aliases"], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == ""


def test_help_has_no_rest_markup(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "The lkca command line (also python -m lkca)." in out


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


def test_tests_run_in_their_own_temporary_folder(tmp_path):
    """tests/conftest.py's autouse fixture: what a command writes to the current folder by default
    lands under tmp_path, never in the checkout (which .ci/run checks after the suite)."""
    from pathlib import Path

    assert Path.cwd() == tmp_path


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_help_says_where_lkca_writes_outside_the_run(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    text = " ".join(capsys.readouterr().out.split())
    assert "Outside the run folder (--out) lkca writes only three caches" in text
    assert "~/.cache/lkca/autotune.json" in text and "DIR/.lkca_cache/" in text


def _all_parsers(parser, path=("lkca",)):
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, (*path, name))


def test_every_argument_of_every_subcommand_has_help_text():
    import argparse

    from lkca.cli import build_parser

    missing = [f"{' '.join(path)} {'/'.join(a.option_strings) or a.dest}"
               for path, parser in _all_parsers(build_parser()) for a in parser._actions
               if a.help is None and not isinstance(a, argparse._SubParsersAction)]
    assert not missing, missing
