"""The local launcher: the runs of a plan on the visible GPUs of this machine, several per GPU,
or on the CPU, one (or ``jobs``) at a time.

Each GPU gets ``runs_per_gpu`` slots (a child sees only its GPU through CUDA_VISIBLE_DEVICES);
without a GPU there are ``jobs`` CPU slots, each child limited to its share of the cores
(OMP_NUM_THREADS, unless already set). Finished runs are skipped, interrupted ones continue
with ``--resume``, a failed run is reported and the others go on. A run directory locked by
someone else (the training of a launcher that was killed, still saving its checkpoint) is
waited for, then looked at again.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lkca.errors import UserError
from lkca.reproduce import child as child_mod
from lkca.reproduce.plan import PlannedRun, run_state
from lkca.runtime.run_lock import DirectoryLock, LockHeld

POLL_S = 0.5  # how often running children and waited-for locks are looked at


class ReproductionInterrupted(UserError):
    """The launcher was stopped by a signal after its runs saved their checkpoints."""


@dataclass
class Outcome:
    """What became of each run: finished now, already finished, or failed (with why)."""

    trained: list[PlannedRun] = field(default_factory=list)
    skipped: list[PlannedRun] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)


def visible_gpus() -> int:
    """GPUs this process may use (CUDA_VISIBLE_DEVICES respected); 0 without CUDA."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def slots(gpus: int, runs_per_gpu: int, jobs: int) -> list[str]:
    """One entry per concurrent run: "cuda:<i>" repeated ``runs_per_gpu`` times per GPU, else
    ``jobs`` times "cpu"."""
    if gpus:
        return [f"cuda:{i}" for i in range(gpus) for _ in range(runs_per_gpu)]
    return ["cpu"] * jobs


def run_local(runs: list[PlannedRun], data_dir: str | None, devices: list[str],
              say: Callable[[str], None] = print) -> Outcome:
    """Train every unfinished run of ``runs`` on ``devices`` (see :func:`slots`); returns what
    became of each. The caller holds the lock of the runs folder."""
    outcome = Outcome()
    pending: list[PlannedRun] = []
    for run in runs:
        state = run_state(run)
        if state.kind == "finished":
            outcome.skipped.append(run)
        elif state.kind == "conflict":
            outcome.failed.append((run, state.detail))
            say(f"  failed   {run.name}: {state.detail}")
        else:
            pending.append(run)
    free = list(devices)
    per_device = {d: devices.count(d) for d in devices}
    cpu_threads = max(1, (os.cpu_count() or 1) // max(1, devices.count("cpu")))
    running: list[child_mod.Child] = []
    waiting_said: set[Path] = set()
    stop = _StopSignals()
    with stop:
        while (pending and not stop.signum) or running:
            for run in list(pending):
                if stop.signum or not free:
                    break
                lock = DirectoryLock(run.out, child_mod.LAUNCH_LOCK)
                try:
                    lock.acquire()
                except LockHeld as err:
                    if run.out not in waiting_said:
                        say(f"  waiting  {run.name}: {err}")
                        waiting_said.add(run.out)
                    continue
                pending.remove(run)
                state = run_state(run)  # it may have moved on while we waited
                if state.kind != "new" and state.kind != "resume":
                    lock.release()
                    if state.kind == "finished":
                        outcome.skipped.append(run)
                    else:
                        outcome.failed.append((run, state.detail))
                        say(f"  failed   {run.name}: {state.detail}")
                    continue
                device = free.pop(0)
                env = _device_env(device, cpu_threads)
                started = child_mod.start(run, data_dir, lock, device=device,
                                          shared=per_device[device], env=env)
                running.append(started)
                verb = "resuming" if state.kind == "resume" else "starting"
                say(f"  {verb} {run.name} on {device}"
                    + (f" ({state.done}/{state.total} done)" if state.kind == "resume" else ""))
            if stop.signum and not stop.forwarded:
                stop.forward(running)
            time.sleep(POLL_S)
            for c in [c for c in running if c.proc.poll() is not None]:
                running.remove(c)
                free.append(c.device)
                finished = run_state(c.run).kind == "finished"
                record = child_mod.finish(c, finished)
                if finished and record["rc"] == 0:
                    outcome.trained.append(c.run)
                    say(f"  finished {c.run.name}")
                elif not stop.signum:
                    why = (f"exit code {record['rc']}: {record['last_stderr'] or '(no stderr)'}; "
                           f"logs in {c.run.out}")
                    outcome.failed.append((c.run, why))
                    say(f"  failed   {c.run.name}: {why}")
    if stop.signum:
        name = signal.Signals(stop.signum).name
        raise ReproductionInterrupted(
            f"stopped by {name}: {len(outcome.trained)} runs finished, the running ones saved a "
            "checkpoint; run the same command again to continue")
    return outcome


def _device_env(device: str, cpu_threads: int) -> dict[str, str]:
    if device.startswith("cuda:"):  # the i-th GPU this process sees, by the ids it was given
        index = int(device.split(":")[1])
        given = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
        return {"CUDA_VISIBLE_DEVICES": given[index] if index < len(given) else str(index)}
    env = {"CUDA_VISIBLE_DEVICES": ""}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(cpu_threads)
    return env


class _StopSignals:
    """SIGTERM / SIGINT: stop starting runs, pass SIGTERM on to the running ones (they save a
    checkpoint), wait for them, then stop."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.forwarded = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def forward(self, running: list[child_mod.Child]) -> None:
        """Send SIGTERM to every child still running (once)."""
        for c in running:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        self.forwarded = True

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
