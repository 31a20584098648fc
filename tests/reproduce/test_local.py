"""The local launcher on the digits table: a two-row, two-seed reproduction renders mean and
spread; a SIGKILLed launcher started again finishes without retraining and with the metrics of
an uninterrupted reproduction; interrupted runs resume; a failed run is reported and the others
go on."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from reproduce_kit import (
    freeze,
    metrics,
    pending_signals,
    starts,
    wait_for,
    write_digits_table,
)

from lkca.cli import main
from lkca.reproduce.child import read_log
from lkca.runtime.run_lock import read_holder

RUNS = ("digits/d1/seed0", "digits/d1/seed1", "digits/d2/seed0", "digits/d2/seed1")
pytestmark = pytest.mark.slow


def test_two_rows_two_seeds_finish_and_render_mean_and_spread(digits_reference: Path):
    runs = digits_reference
    for name in RUNS:
        summary = json.loads((runs / name / "summary.json").read_text())
        assert summary["epochs"] == 3 and len(metrics(runs / name)) == 3
        (start,) = starts(runs / name)  # trained once, by the command every launcher runs
        seed = name[-1]
        assert start["command"][1:4] == ["-m", "lkca", "train"] and "--resume" not in start["command"]
        assert start["command"][start["command"].index("--seed") + 1] == seed
    # the paper's column is compared with the best epoch's top-1 (docs/recipe.md, "evaluation")
    top1 = {name: json.loads((runs / name / "summary.json").read_text())["best_top1"]
            for name in RUNS}
    final = {name: json.loads((runs / name / "summary.json").read_text())["top1"] for name in RUNS}
    # seeds are different runs (12 steps may leave both at chance: compare the losses)
    assert metrics(runs / RUNS[0]) != metrics(runs / RUNS[1])

    rows = {r["row"]: r for r in csv.DictReader((runs / "table.csv").open())
            if r["metric"] == "best_top1"}
    d1 = rows["1 block"]
    mean = (top1["digits/d1/seed0"] + top1["digits/d1/seed1"]) / 2
    assert d1["n"] == "2" and d1["status"] == "finished" and d1["paper"] == "90"
    assert float(d1["mean"]) == pytest.approx(mean, abs=1e-4)
    spread = abs(top1["digits/d1/seed0"] - top1["digits/d1/seed1"]) / 2 ** 0.5  # stdev of two
    assert float(d1["std"]) == pytest.approx(spread, abs=1e-4)
    assert float(d1["diff"]) == pytest.approx(mean - 90.0, abs=0.005)  # written to 2 decimals
    assert rows["2 blocks"]["paper"] == "" and rows["2 blocks"]["n"] == "2"

    md = (runs / "table.md").read_text()
    assert "## Digits, one block vs two" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("| 1 block |"))
    assert f"{mean:.2f} ± {spread:.2f} (n=2)" in line and "`lkca_digits`, depth=1" in line
    final_mean = (final["digits/d1/seed0"] + final["digits/d1/seed1"]) / 2
    assert f"{final_mean:.2f} ± " in line.split(f"{mean:.2f} ± ", 1)[1]  # final after best


def test_a_sigkilled_launcher_started_again_finishes_as_if_uninterrupted(tmp_path,
                                                                         digits_reference):
    spec = write_digits_table(tmp_path / "spec")
    runs = tmp_path / "runs"
    launcher = subprocess.Popen([sys.executable, "-m", "lkca", "reproduce", "--table", str(spec),
                                 "--runs", str(runs)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    # Freeze the second run right after its first checkpoint, so the kill lands mid-run.
    first, second = runs / RUNS[0], runs / RUNS[2]
    wait_for(lambda: (second / "checkpoints" / "last.pt").exists(), "the second run's checkpoint")
    child = read_holder(second / ".lkca-reproduce.lock")["pid"]
    freeze(child)
    assert not (second / "summary.json").exists()
    launcher.send_signal(signal.SIGKILL)
    launcher.communicate()
    os.kill(child, signal.SIGCONT)  # it got SIGTERM from its dead parent: saves and stops
    assert (first / "summary.json").exists()

    assert main(["reproduce", "--table", str(spec), "--runs", str(runs)]) == 0
    assert len(starts(first)) == 1  # finished before the kill: not trained again
    again = starts(second)
    assert len(again) == 2 and again[1]["command"][-1] == "--resume"
    for name in (RUNS[0], RUNS[2]):
        assert metrics(runs / name) == metrics(digits_reference / name), name
        ours = json.loads((runs / name / "summary.json").read_text())
        ref = json.loads((digits_reference / name / "summary.json").read_text())
        assert (ours["top1"], ours["best_top1"]) == (ref["top1"], ref["best_top1"])


def test_a_stopped_run_resumes_and_finished_ones_are_skipped(tmp_path, digits_reference, capsys):
    spec = write_digits_table(tmp_path / "spec")
    runs = tmp_path / "runs"
    out = runs / "digits" / "d1" / "seed0"
    stop = tmp_path / "spec" / "d1_stop.yaml"
    stop.write_text("base: d1.yaml\nstop_after_epochs: 1\n")
    assert main(["train", "--config", str(stop), "--out", str(out), "--seed", "0",
                 "--no-progress"]) == 0
    assert main(["reproduce", "--table", str(spec), "--runs", str(runs)]) == 0
    (start,) = starts(out)
    assert start["command"][-1] == "--resume"
    assert metrics(out) == metrics(digits_reference / "digits/d1/seed0")
    assert "resuming digits/d1/seed0 on cpu (1/3 done)" in capsys.readouterr().out

    before = (out / "summary.json").stat().st_mtime_ns
    assert main(["reproduce", "--table", str(spec), "--runs", str(runs)]) == 0
    assert (out / "summary.json").stat().st_mtime_ns == before and len(starts(out)) == 1
    assert "0 runs trained now, 2 already finished, 0 failed" in capsys.readouterr().out


def test_a_failed_run_is_reported_and_the_others_go_on(tmp_path, capsys):
    spec = write_digits_table(tmp_path / "spec")
    # row 2 asks for a GPU: a CPU slot hides every GPU, so its training stops with exit code 2
    (tmp_path / "spec" / "d2.yaml").write_text((tmp_path / "spec" / "d2.yaml").read_text()
                                               + "device: cuda\n")
    runs = tmp_path / "runs"
    assert main(["reproduce", "--table", str(spec), "--runs", str(runs), "--jobs", "2"]) == 2
    captured = capsys.readouterr()
    assert (runs / "digits" / "d1" / "seed0" / "summary.json").exists()
    failed = runs / "digits" / "d2" / "seed0"
    (exit_record,) = [r for r in read_log(failed) if r["event"] == "exit"]
    assert exit_record["rc"] == 2 and "no CUDA GPU is visible" in exit_record["last_stderr"]
    assert f"failed digits/d2/seed0: exit code 2: {exit_record['last_stderr']}" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "1 of 2 runs failed" in err[0]
    rows = {r["row"]: r for r in csv.DictReader((runs / "table.csv").open())}
    assert rows["1 block"]["n"] == "1" and rows["2 blocks"]["status"] == "no run"


def test_a_second_launcher_on_the_same_runs_folder_is_refused(tmp_path, capsys):
    from lkca.reproduce.child import LAUNCH_LOCK
    from lkca.runtime.run_lock import DirectoryLock

    spec = write_digits_table(tmp_path / "spec")
    runs = tmp_path / "runs"
    with DirectoryLock(runs, LAUNCH_LOCK):
        assert main(["reproduce", "--table", str(spec), "--runs", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{runs} is in use by PID {os.getpid()}" in err[0]


def test_sigterm_stops_the_launcher_and_its_runs_in_order(tmp_path, digits_reference):
    spec = write_digits_table(tmp_path / "spec")
    runs = tmp_path / "runs"
    launcher = subprocess.Popen([sys.executable, "-m", "lkca", "reproduce", "--table", str(spec),
                                 "--runs", str(runs)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    first = runs / RUNS[0]
    wait_for(lambda: (first / "checkpoints" / "last.pt").exists(), "the first checkpoint")
    child = read_holder(first / ".lkca-reproduce.lock")["pid"]
    freeze(child)
    launcher.send_signal(signal.SIGTERM)
    wait_for(lambda: pending_signals(child) & (1 << (signal.SIGTERM - 1)),
             "the launcher to pass SIGTERM on")
    os.kill(child, signal.SIGCONT)
    _, err = launcher.communicate()
    assert launcher.returncode == 2
    assert err.strip().splitlines() == [
        "lkca reproduce: error: stopped by SIGTERM: 0 runs finished, the running ones saved a "
        "checkpoint; run the same command again to continue"]
    (exit_record,) = [r for r in read_log(first) if r["event"] == "exit"]
    assert exit_record["rc"] == 2 and "stopped by SIGTERM" in exit_record["last_stderr"]
    assert not (runs / RUNS[2]).exists()  # nothing new started after the signal

    assert main(["reproduce", "--table", str(spec), "--runs", str(runs)]) == 0
    assert starts(first)[-1]["command"][-1] == "--resume"
    for name in (RUNS[0], RUNS[2]):
        assert metrics(runs / name) == metrics(digits_reference / name), name
