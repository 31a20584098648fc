"""A new run never writes over an earlier one (docs/reproducibility.md, "The run directory"): an
explicit --out holding a run is refused without --resume or --overwrite, a --config taken from a
run does not silently retrain that run, a folder holding foreign files is refused, the default
folder takes the next free name; the lock holds with its file deleted; and the smaller run-folder
mistakes end in one line (each refusal: exit 2, one line, nothing created, every file as it was).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from tiny_train import TINY_TRAIN_YAML, assert_refused, snapshot

from lkca.cli import main
from lkca.runtime.run_dir import RunDir, choose_run_dir, claim_run_dir, free_run_dir
from lkca.runtime.run_lock import DirectoryLock, LockHeld

TINY = TINY_TRAIN_YAML + "epochs: 1\nmax_steps_per_epoch: 1\ndevice: cpu\nprogress: false\n"


def _fake_run(folder: Path, extra: str = "") -> Path:
    """A run directory as `lkca train` leaves it (its files' bytes only matter here)."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "pretrained").mkdir()
    (folder / "config.yaml").write_text(TINY + f"out: {folder}\n" + extra)
    (folder / "metrics.jsonl").write_text('{"epoch": 1, "test_top1": 98.06}\n')
    (folder / "summary.json").write_text('{"top1": 98.06}\n')
    (folder / "checkpoints" / "last.pt").write_bytes(b"state")
    (folder / "checkpoints" / "best.safetensors").write_bytes(b"weights")
    (folder / "pretrained" / "config.json").write_text("{}\n")
    return folder


@pytest.fixture
def tiny(tmp_path) -> Path:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    return cfg


def test_an_explicit_out_holding_a_run_is_refused(tiny, tmp_path, capsys):
    run = _fake_run(tmp_path / "runA")
    err = assert_refused(capsys, ["train", "--config", str(tiny), "--out", str(run)],
                         f"--out {run} already holds a run", tmp_path)
    assert "--resume" in err and "--overwrite" in err


def test_a_config_taken_from_a_run_does_not_retrain_that_run(tmp_path, capsys):
    run = _fake_run(tmp_path / "runA")  # its config.yaml says out: runA
    assert_refused(capsys, ["train", "--config", str(run / "config.yaml"), "--lr", "1e-4"],
                   f"--out {run} already holds a run", tmp_path)


def test_a_folder_of_foreign_files_is_refused_even_with_overwrite(tiny, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n")
    (mine / "config.yaml").write_text("my own config\n")
    for extra in ([], ["--overwrite"]):
        assert_refused(capsys, ["train", "--config", str(tiny), "--out", str(mine), *extra],
                       "holds files that are not a run's ('notes.txt')", tmp_path)


def test_resume_and_overwrite_together_are_refused(tiny, tmp_path, capsys):
    run = _fake_run(tmp_path / "runA")
    assert_refused(capsys, ["train", "--config", str(tiny), "--out", str(run), "--resume",
                            "--overwrite"], "pass one of them", tmp_path)


def test_a_run_without_checkpoint_is_offered_overwrite(tiny, tmp_path, capsys):
    run = tmp_path / "killed"
    run.mkdir()
    (run / "config.yaml").write_text(TINY)
    assert_refused(capsys, ["train", "--config", str(tiny), "--out", str(run)],
                   "holds a run that saved no checkpoint (config.yaml); start it over with "
                   "--overwrite", tmp_path)


def test_the_default_folder_takes_the_next_free_name(tmp_path):
    base = tmp_path / "runs" / "digits-m"
    assert free_run_dir(base) == base
    _fake_run(base)
    assert free_run_dir(base) == base.with_name("digits-m-2")
    (tmp_path / "runs" / "digits-m-2").mkdir()  # empty: free
    assert free_run_dir(base) == base.with_name("digits-m-2")
    (tmp_path / "runs" / "digits-m-2" / "x").write_text("")
    assert free_run_dir(base) == base.with_name("digits-m-3")
    place = choose_run_dir(None, base, resume=False, overwrite=False)
    assert place.path == base.with_name("digits-m-3") and str(base) in place.note
    assert place.next_free == base
    # --resume and --overwrite without --out mean the default folder itself, never another
    assert choose_run_dir(None, base, resume=True, overwrite=False).path == base
    assert choose_run_dir(None, base, resume=False, overwrite=True).next_free is None
    assert choose_run_dir(str(base), base, resume=False, overwrite=True).next_free is None


@pytest.mark.parametrize("winner", ["still running (its lock held)", "already finished"])
def test_a_start_that_loses_the_race_for_the_default_name_takes_the_next(tmp_path, winner):
    """Two starts chose the same free default name; the other one claimed it first."""
    base = tmp_path / "runs" / "digits-m"
    place = choose_run_dir(None, base, resume=False, overwrite=False)
    assert place.path == base  # free when chosen
    held = None
    if winner == "still running (its lock held)":
        held = DirectoryLock(base, whole_directory=True).acquire()
    else:
        _fake_run(base)
    before = snapshot(tmp_path / "runs")
    run_dir, lock, deleted = claim_run_dir(RunDir(place.path), False, False, place.next_free)
    try:
        assert run_dir.root == base.with_name("digits-m-2") and deleted == []
        with pytest.raises(LockHeld):  # the claim holds: a third start cannot take it either
            DirectoryLock(run_dir.root, whole_directory=True).acquire()
        assert {k: v for k, v in snapshot(tmp_path / "runs").items()
                if not k.startswith("digits-m-2")} == before  # the winner's folder untouched
    finally:
        lock.release()
        if held is not None:
            held.release()
    # a folder the user named is never swapped for another: the loser is refused
    if winner == "still running (its lock held)":
        with DirectoryLock(base, whole_directory=True), pytest.raises(LockHeld):
            claim_run_dir(RunDir(base), False, False, None)


def test_two_trainings_started_at_once_without_out_both_run(tiny, tmp_path):
    import subprocess
    import sys

    code = "import sys; from lkca.cli import main; sys.exit(main(['train', '--config', sys.argv[1]]))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tiny)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    model = re.search(r"^model: (\S+)", TINY, re.M).group(1)
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == [f"digits-{model}", f"digits-{model}-2"], results
    assert all((tmp_path / "runs" / r / "summary.json").is_file() for r in runs)


def test_the_readme_command_runs_twice(tiny, tmp_path, capsys):
    """The first command twice: the second run goes to NAME-2 (said in its first line), the first
    run's files stay byte-identical. The model's name is the config's."""
    model = re.search(r"^model: (\S+)", TINY, re.M).group(1)
    first = _fake_run(tmp_path / "runs" / f"digits-{model}")
    before = snapshot(first)
    assert main(["train", "--config", str(tiny)]) == 0
    out = capsys.readouterr().out.splitlines()
    second = Path("runs") / f"digits-{model}-2"  # relative, as the default folder (cwd: tmp_path)
    assert out[0].endswith(f"-> {second} (runs/digits-{model} holds an earlier run; the default "
                           "folder takes the next free name)"), out[0]
    assert snapshot(first) == before
    assert (tmp_path / second / "summary.json").is_file()


def test_overwrite_says_what_it_deletes_and_deletes_only_the_run(tiny, tmp_path, capsys):
    run = _fake_run(tmp_path / "runA")
    (run / "stdout.log").write_text("a launcher's log\n")  # lkca reproduce's: kept
    assert main(["train", "--config", str(tiny), "--out", str(run), "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert (f"--overwrite: deleted the earlier run in {run} (checkpoints, config.yaml, "
            "metrics.jsonl, pretrained, summary.json)") in out
    assert (run / "stdout.log").read_text() == "a launcher's log\n"
    assert "98.06" not in (run / "metrics.jsonl").read_text()
    assert "98.06" not in (run / "summary.json").read_text()


def test_a_second_writer_is_refused_with_the_lock_file_deleted(tiny, tmp_path, capsys):
    run = tmp_path / "runA"
    holder = DirectoryLock(run, whole_directory=True).acquire()
    try:
        os.unlink(run / ".lkca.lock")  # "tidying up" while the run holds it
        with pytest.raises(LockHeld):
            DirectoryLock(run, whole_directory=True).acquire()
        assert_refused(capsys, ["train", "--config", str(tiny), "--out", str(run)],
                       f"{run} is in use by another process", tmp_path)
        holder.check_held()  # before its next commit the holder restores its record ...
        assert (run / ".lkca.lock").is_file()
        assert_refused(capsys, ["train", "--config", str(tiny), "--out", str(run)],
                       f"is in use by PID {os.getpid()}", tmp_path)  # ... which names it again
    finally:
        holder.release()


def test_a_lock_file_that_is_a_fifo_is_one_line(tiny, tmp_path, capsys):
    run = tmp_path / "runA"
    run.mkdir()
    os.mkfifo(run / ".lkca.lock")
    assert_refused(capsys, ["train", "--config", str(tiny), "--out", str(run)],
                   "is not a regular file (a FIFO or device); remove it", tmp_path)


def test_resume_mistakes_of_the_run_folder_are_one_line(tiny, tmp_path, capsys):
    run = _fake_run(tmp_path / "runA")
    argv = ["train", "--config", str(tiny), "--out", str(run), "--resume"]
    (run / "pretrained" / "config.json").unlink()
    (run / "pretrained").rmdir()
    (run / "pretrained").write_text("a plain file\n")
    assert_refused(capsys, argv, "pretrained is a file where the run keeps a folder", tmp_path)
    (run / "pretrained").unlink()
    (run / "checkpoints" / "last.pt").unlink()
    (run / "checkpoints" / "last.pt").mkdir()
    assert_refused(capsys, argv, "last.pt is not a file (a folder or device)", tmp_path)


def test_check_new_touches_nothing(tmp_path):
    run = _fake_run(tmp_path / "runA")
    before = snapshot(tmp_path)
    assert RunDir(run).check_new(resume=False, overwrite=True) == [
        "checkpoints", "config.yaml", "metrics.jsonl", "pretrained", "summary.json"]
    assert snapshot(tmp_path) == before
