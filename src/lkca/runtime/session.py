"""One training run's runtime, as a context manager shared by every task's engine.

::

    with Session(cfg.out_dir, device=cfg.device, batch_size=cfg.batch_size, resume=resume,
                 progress=cfg.progress, step_key="epoch") as run:
        ...                                    # data, model, optimiser on run.device
        position = run.restore(parts) if resume else fresh
        run.begin(cfg.to_dict(), resumed_at=...)   # config.yaml, metrics.jsonl
        for ...:                               # the task's loop
            if not run.finite(loss, where, skip): ...
            if run.stop_requested: run.save(...); raise run.interrupted(where)
        run.finish(summary)                    # summary.json

Entering checks the global batch against the processes, picks the device, joins the torchrun
process group, checks ``--resume`` and sets up the run directory (main process), and installs
the SIGTERM / SIGINT handler; leaving (also on an error) closes the log, restores the signal
handlers and ends the process group it started. Only the main process (rank 0) writes files and
prints (:class:`~lkca.runtime.console.Console`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lkca.checkpoint.files import save_weights
from lkca.runtime.console import Console
from lkca.runtime.device import mixed_precision, resolve_device
from lkca.runtime.distributed import (
    Dist,
    check_global_batch,
    data_parallel,
    join_process_group,
    leave_process_group,
)
from lkca.runtime.nonfinite import check_finite
from lkca.runtime.run_dir import RunDir
from lkca.runtime.run_log import RunLog, read_metrics
from lkca.runtime.signals import Interrupted, StopRequest, signal_name
from lkca.runtime.training_state import TrainingParts, restore_checkpoint, save_checkpoint


class Session:
    """Device, processes, run directory, run log, console and stop signals of one run.

    ``out``: the run directory; ``device``: ``auto | cpu | cuda | cuda:N``; ``batch_size``: the
    global batch (a multiple of the number of processes); ``resume``: continue from
    ``out/checkpoints/last.pt``; ``progress``: show progress bars; ``step_key``: the key that
    orders ``metrics.jsonl`` records (``"epoch"`` or ``"iter"``).
    """

    device: torch.device
    env: Dist
    console: Console
    stop: StopRequest
    log: RunLog | None

    def __init__(self, out: Path, *, device: str, batch_size: int, resume: bool = False,
                 progress: bool = True, step_key: str = "epoch") -> None:
        self.dir = RunDir(out)
        self.resume = resume
        self._device_name, self._batch_size = device, batch_size
        self._progress, self._step_key = progress, step_key
        self.log = None

    def __enter__(self) -> Session:
        check_global_batch(self._batch_size)
        self.device = resolve_device(self._device_name)
        self.env = join_process_group(self.device)
        try:
            self.dir.check_resume(self.resume)
            if self.env.main:
                self.dir.prepare()
            self.console = Console(self.env.main, self._progress)
            self.stop = StopRequest().__enter__()
        except BaseException:
            leave_process_group(self.env)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.stop.__exit__(*exc)
            if self.log is not None:
                self.log.close()
        finally:
            leave_process_group(self.env)

    @property
    def amp(self) -> AbstractContextManager:
        """The autocast context of this device (bf16 on CUDA, nothing elsewhere)."""
        return mixed_precision(self.device)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel under torchrun, else itself."""
        return data_parallel(model, self.env, self.device)

    def restore(self, parts: TrainingParts) -> dict[str, Any]:
        """Load ``checkpoints/last.pt`` into ``parts`` (and torch's RNGs); returns the position
        in the run it was saved at."""
        return restore_checkpoint(self.dir.state(), parts)

    def begin(self, config: dict[str, Any], resumed_at: int | None = None) -> None:
        """Open the run log and write ``config.yaml`` (main process); ``resumed_at``: the epoch
        or iter of the checkpoint resumed from, whose later records are dropped from
        ``metrics.jsonl`` so the file matches an unbroken run."""
        self.log = RunLog(self.dir.metrics, self.dir.tensorboard, enabled=self.env.main,
                          step_key=self._step_key)
        if self.env.main:
            self.dir.write_config(config)
            if resumed_at is not None:
                self.log.truncate_after(resumed_at)

    def record(self, record: dict[str, Any]) -> None:
        """Append one record to ``metrics.jsonl`` (and TensorBoard); main process only."""
        assert self.log is not None, "Session.begin() opens the run log"
        self.log.write(record)

    def metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` so far (main process; [] elsewhere or before any)."""
        path = self.dir.metrics
        return read_metrics(path) if self.env.main and path.exists() else []

    def finite(self, loss: torch.Tensor, where: str, skip: bool | None = None) -> bool:
        """The non-finite-loss policy (:func:`lkca.runtime.nonfinite.check_finite`) with this
        run's processes and checkpoint."""
        return check_finite(loss, self.env, where, self.dir.state(), skip)

    def save(self, parts: TrainingParts, meta: dict[str, Any], position: dict[str, Any],
             tag: str = "last") -> None:
        """Write ``checkpoints/<tag>.pt`` + ``.safetensors`` (main process only)."""
        if self.env.main:
            save_checkpoint(self.dir.checkpoints, tag, parts, meta, position)

    def save_weights(self, tag: str, model: nn.Module, meta: dict[str, Any]) -> None:
        """Write ``checkpoints/<tag>.safetensors`` alone (main process only)."""
        if self.env.main:
            save_weights(self.dir.weights(tag), model, meta)

    @property
    def stop_requested(self) -> bool:
        """Whether SIGTERM / SIGINT arrived (read once per step: it reads the handler's flag)."""
        return self.stop.signum is not None

    def interrupted(self, where: str) -> Interrupted:
        """The error that ends a run stopped by a signal at ``where``, after it saved."""
        assert self.stop.signum is not None
        return Interrupted(f"stopped by {signal_name(self.stop.signum)} at {where}; checkpoint "
                           f"saved to {self.dir.state()}: continue with --resume")

    def finish(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` (main process only)."""
        if self.env.main:
            self.dir.write_summary(summary)
