"""The Slurm launcher, exercised with submitit's local executor: a job-array task per run, and a
preempted task (SIGUSR2, as Slurm signals it) stops its training in order, is requeued and
resumes to the metrics of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from reproduce_kit import freeze, metrics, pending_signals, starts, wait_for, write_digits_table

from lkca.reproduce import slurm
from lkca.reproduce.plan import plan_runs
from lkca.reproduce.table_spec import load_table_spec

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]


def test_tasks_train_their_runs_and_a_preempted_one_resumes(tmp_path, digits_reference):
    pytest.importorskip("submitit")
    _, configs = load_table_spec(write_digits_table(tmp_path / "spec"))
    runs = plan_runs(configs, 1, tmp_path / "runs")  # d1/seed0 and d2/seed0
    jobs = slurm.submit(runs, None, tmp_path / "runs" / ".slurm", time_min=30, gpus_per_task=0,
                        cluster="local")
    assert len(jobs) == 2
    try:
        _preempt_the_first(runs[0].out)
        outcome = slurm.wait(jobs, runs, poll_s=0.2)
    finally:
        for job in jobs:  # a failing test leaves no job running
            if not job.done():
                job.cancel()
    first = runs[0].out
    assert sorted(r.name for r in outcome.trained) == sorted(r.name for r in runs)
    assert not outcome.failed
    again = starts(first)
    assert len(again) == 2 and again[1]["command"][-1] == "--resume"
    assert again[0]["launcher"] == again[1]["launcher"] == "slurm"
    for run in runs:
        assert metrics(run.out) == metrics(digits_reference / run.name), run.name


def _preempt_the_first(first):
    # Preempt the first task mid-run: freeze its training right after a checkpoint, signal the
    # task as Slurm would, and let the training go on once the task has told it to stop.
    wait_for(lambda: (first / "checkpoints" / "last.pt").exists(), "the first checkpoint")
    (start,) = starts(first)
    freeze(start["pid"])
    assert not (first / "summary.json").exists()
    os.kill(start["launcher_pid"], signal.SIGUSR2)
    wait_for(lambda: pending_signals(start["pid"]) & (1 << (signal.SIGTERM - 1)),
             "the task to send SIGTERM to its training")
    os.kill(start["pid"], signal.SIGCONT)


def test_a_task_whose_run_is_finished_or_locked_does_not_train(tmp_path, digits_reference):
    import shutil

    from lkca.reproduce.child import LAUNCH_LOCK
    from lkca.runtime.run_lock import DirectoryLock

    _, configs = load_table_spec(write_digits_table(tmp_path / "spec"))
    done, busy = plan_runs(configs, 1, tmp_path / "runs")
    shutil.copytree(digits_reference / done.name, done.out)
    assert slurm.RunTask(done, None)() == {"run": done.name, "status": "skipped",
                                           "detail": "already finished"}
    with DirectoryLock(busy.out, LAUNCH_LOCK):
        result = slurm.RunTask(busy, None, lock_wait_s=0)()
    assert result["status"] == "failed" and f"PID {os.getpid()}" in result["detail"]
    assert not (busy.out / "config.yaml").exists()


def test_without_slurm_the_launcher_says_so(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    from lkca.errors import UserError

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    with pytest.raises(UserError, match="found no Slurm here"):
        slurm.submit([], None, tmp_path / ".slurm", time_min=10)
