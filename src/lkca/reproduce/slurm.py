"""The Slurm launcher: one job-array task per run, through submitit (the ``[cluster]`` extra).

Each task runs :class:`RunTask`, which starts the same ``lkca train`` command line as the local
launcher (:mod:`lkca.reproduce.child`) and waits for it. On preemption or at the time limit
Slurm signals the task (SIGUSR2, submitit's ``--signal``); submitit calls
:meth:`RunTask.checkpoint`, which stops the training with SIGTERM (it saves a resumable
checkpoint) and hands submitit the same task to requeue; started again, the task finds the
checkpoint and continues with ``--resume``. A task whose run is already finished exits at once;
one whose run is locked waits for the lock (the training of its previous attempt may still be
saving), up to ``lock_wait_s``.

The task waits for its training by polling, never in ``Popen.wait()``: submitit's signal handler
runs on the same thread, and a handler that waited for the child while the interrupted frame
holds ``Popen``'s wait lock would deadlock.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lkca.errors import UserError
from lkca.reproduce import child as child_mod
from lkca.reproduce.local import Outcome
from lkca.reproduce.plan import PlannedRun, run_state
from lkca.runtime.run_lock import DirectoryLock, LockHeld

POLL_S = 1.0  # how often a task looks at its training and at a lock it waits for
STOP_WAIT_S = 120.0  # how long a preempted task waits for its training to save and stop


class RunTask:
    """A picklable, checkpointable callable that trains one run to its end (or its requeue)."""

    def __init__(self, run: PlannedRun, data_dir: str | None, shared: int = 1,
                 lock_wait_s: float = 600.0) -> None:
        self.run = run
        self.data_dir = data_dir
        self.shared = shared
        self.lock_wait_s = lock_wait_s
        self._child: child_mod.Child | None = None

    def __call__(self) -> dict[str, Any]:
        """Train the run; returns {"run", "status": finished|skipped|failed, "detail"}."""
        lock = DirectoryLock(self.run.out, child_mod.LAUNCH_LOCK)
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            state = run_state(self.run)
            if state.kind == "finished":
                return {"run": self.run.name, "status": "skipped", "detail": "already finished"}
            if state.kind == "conflict":
                return {"run": self.run.name, "status": "failed", "detail": state.detail}
            try:
                lock.acquire()
                break
            except LockHeld as err:
                if time.monotonic() >= deadline:
                    return {"run": self.run.name, "status": "failed", "detail": str(err)}
                time.sleep(POLL_S)
        if run_state(self.run).kind == "finished":  # finished while we waited for the lock
            lock.release()
            return {"run": self.run.name, "status": "skipped", "detail": "already finished"}
        self._child = child_mod.start(self.run, self.data_dir, lock, device=_device(),
                                      shared=self.shared, launcher="slurm")
        while self._child.proc.poll() is None:
            time.sleep(POLL_S)
        finished = run_state(self.run).kind == "finished"
        record = child_mod.finish(self._child, finished)
        self._child = None
        if finished and record["rc"] == 0:
            return {"run": self.run.name, "status": "finished", "detail": ""}
        return {"run": self.run.name, "status": "failed",
                "detail": f"exit code {record['rc']}: {record['last_stderr'] or '(no stderr)'}"}

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption / time-out: stop the training in order (SIGTERM: it
        saves a checkpoint; given up to ``STOP_WAIT_S``), then requeue this same task, which
        resumes from that checkpoint."""
        from submitit.helpers import DelayedSubmission

        c = self._child
        if c is not None:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT_S
            while c.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if c.proc.returncode is not None:  # else it keeps the run locked until it exits
                child_mod.finish(c, False)
                self._child = None
        return DelayedSubmission(self)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_child"] = None  # a process is not pickled; the requeued task starts its own
        return state


def _device() -> str:
    import os

    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return f"cuda ({gpus})" if gpus else "cpu"


def submit(runs: list[PlannedRun], data_dir: str | None, folder: Path, *, time_min: int,
           partition: str | None = None, account: str | None = None, gpus_per_task: int = 1,
           cpus_per_task: int | None = None, mem_gb: float | None = None,
           array_parallelism: int | None = None, cluster: str | None = None) -> list[Any]:
    """Submit one job-array task per run; returns the submitit jobs. ``cluster``: submitit's
    choice ("slurm", or "local" to run the tasks on this machine; None: Slurm if present)."""
    try:
        import submitit
    except ImportError:
        raise UserError("--launcher slurm needs submitit; pip install 'lkca[cluster]'") from None
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    if cluster != "local" and executor.cluster != "slurm":
        raise UserError("--launcher slurm found no Slurm here (sbatch is not on PATH); run on a "
                        "Slurm login node, or use --launcher local")
    params: dict[str, Any] = {"name": "lkca-reproduce", "timeout_min": time_min, "nodes": 1,
                              "tasks_per_node": 1, "gpus_per_node": gpus_per_task}
    if cpus_per_task:
        params["cpus_per_task"] = cpus_per_task
    if mem_gb:
        params["mem_gb"] = mem_gb
    for key, value in (("slurm_partition", partition), ("slurm_account", account),
                       ("slurm_array_parallelism", array_parallelism)):
        if value is not None:
            params[key] = value
    executor.update_parameters(**params)
    tasks = [RunTask(run, data_dir) for run in runs]
    with executor.batch():
        jobs = [executor.submit(task) for task in tasks]
    return jobs


def wait(jobs: list[Any], runs: list[PlannedRun], say: Callable[[str], None] = print,
         poll_s: float = 5.0) -> Outcome:
    """Wait for every job; report each as it ends. A job that died without a result (cancelled,
    out of memory, requeued too often) is a failed run with the last line of its stderr."""
    outcome = Outcome()
    left = dict(zip((j.job_id for j in jobs), zip(jobs, runs)))
    while left:
        for job_id, (job, run) in list(left.items()):
            if not job.done():
                continue
            del left[job_id]
            try:
                result = job.result()
            except Exception as err:  # submitit re-raises the task's failure; report, go on
                lines = str(err).strip().splitlines()
                detail = child_mod.last_line(Path(job.paths.stderr)) or (
                    lines[-1] if lines else repr(err))
                result = {"status": "failed", "detail": f"job {job_id}: {detail}"}
            if result["status"] == "finished":
                outcome.trained.append(run)
                say(f"  finished {run.name} (job {job_id})")
            elif result["status"] == "skipped":
                outcome.skipped.append(run)
            else:
                outcome.failed.append((run, result["detail"]))
                say(f"  failed   {run.name} (job {job_id}): {result['detail']}")
        if left:
            time.sleep(poll_s)
    return outcome
