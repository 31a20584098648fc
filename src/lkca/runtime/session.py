"""One training run's runtime, as a context manager shared by every task's engine.

::

    with Session(cfg.out_dir, device=cfg.device, batch_size=cfg.batch_size, resume=resume,
                 progress=cfg.progress, step_key="epoch") as run:
        ...                                    # data, model, optimiser on run.device
        position = run.restore(parts, cfg.to_dict(), fresh) if resume else fresh
        run.begin(cfg.to_dict(), resumed_at=...)   # config.yaml, metrics.jsonl
        for ...:                               # the task's loop
            run.backward_and_step(loss, optimizer, params, clip, guard)  # guard: run.nonfinite_steps
            if run.stop_requested: run.save(...); raise run.interrupted(where)
        run.finish(summary)                    # summary.json

Entering checks the global batch against the processes, picks the device, joins the torchrun
process group, checks ``--resume``, takes the run directory's lock (one writer per run:
:mod:`lkca.runtime.run_lock`) and sets it up (main process), sets the LKCA implementation policy
(:mod:`lkca.runtime.impl_record`), and installs the SIGTERM / SIGINT handler; leaving (also on
an error) closes the log, releases the lock, restores the signal handlers and ends the process
group it started. Only the main process (rank 0) writes files and
prints (:class:`~lkca.runtime.console.Console`).
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lkca.autotune.tuner import impl_choices
from lkca.checkpoint.files import save_weights
from lkca.errors import UserError
from lkca.runtime.console import Console, plural
from lkca.runtime.device import (
    PRECISIONS,
    cpu_threads,
    float32_arithmetic,
    mixed_precision,
    resolve_device,
)
from lkca.runtime.distributed import (
    Dist,
    all_reduce_sum,
    check_global_batch,
    data_parallel,
    join_process_group,
    leave_process_group,
)
from lkca.runtime.impl_record import (
    replay_impl_choices,
    share_impl_choices,
    start_impl_policy,
)
from lkca.runtime.nonfinite import NonFiniteSteps, not_finite
from lkca.runtime.resume_policy import check_resume_config
from lkca.runtime.run_dir import RunDir, claim_run_dir
from lkca.runtime.run_lock import DirectoryLock
from lkca.runtime.run_log import RunLog, read_metrics
from lkca.runtime.signals import Interrupted, StopRequest, signal_name
from lkca.runtime.training_state import (
    TrainingParts,
    apply_checkpoint,
    check_position,
    read_checkpoint,
    save_checkpoint,
)


class Session:
    """Device, processes, run directory, run log, console and stop signals of one run.

    ``out``: the run directory; ``device``: ``auto | cpu | cuda | cuda:N``; ``batch_size``: the
    global batch (a multiple of the number of processes); ``resume``: continue from
    ``out/checkpoints/last.pt``; ``progress``: show progress bars; ``step_key``: the key that
    orders ``metrics.jsonl`` records (``"epoch"`` or ``"iter"``); ``resumable``: the config keys
    that may differ on ``--resume`` (applied and recorded in ``resume_history``; any other
    difference is refused, :mod:`lkca.runtime.resume_policy`); ``impl_policy``: how LKCA's
    ``impl="auto"`` chooses (:func:`lkca.set_impl_policy`); ``overwrite``: a new run may
    replace the run ``out`` holds (deleted first, :meth:`RunDir.check_new`), else a folder
    holding a run is refused unless ``resume``; ``precision``: ``fp32 | tf32 | bf16 | fp16``,
    the autocast of :attr:`amp` (fp16 adds a loss scaler, :meth:`backward_and_step`) and, for
    the session's length, whether fp32 matrix products and convolutions may use TF32
    (:func:`lkca.runtime.device.float32_arithmetic`); ``next_free``: the default folder when
    ``out`` is a free default name (:class:`~lkca.runtime.run_dir.RunPlace`): a race for it takes
    the next free name, and :attr:`dir` is where the run went.
    """

    device: torch.device
    env: Dist
    console: Console
    threads: int  # intra-op threads it trains with (recorded in last.pt and summary.json)
    threads_note: str | None  # why training uses fewer intra-op threads than torch would
    stop: StopRequest
    log: RunLog | None

    def __init__(self, out: Path, *, device: str, batch_size: int, resume: bool = False,
                 progress: bool = True, step_key: str = "epoch",
                 resumable: frozenset[str] = frozenset(), impl_policy: str = "autotune",
                 overwrite: bool = False, precision: str = "fp32",
                 next_free: Path | None = None) -> None:
        self.dir = RunDir(out)
        self._next_free = next_free
        self.resume, self._overwrite = resume, overwrite
        self._device_name, self._batch_size = device, batch_size
        self._progress, self._step_key = progress, step_key
        self._resumable, self._impl_policy = resumable, impl_policy
        if precision not in PRECISIONS:
            raise UserError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self.log = None
        self._lock: DirectoryLock | None = None
        self._config: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []  # resumes that changed the config
        self._shared = False

    def __enter__(self) -> Session:
        check_global_batch(self._batch_size)
        self.device = resolve_device(self._device_name)
        # fp16's dynamic loss scale (a no-op object for fp32 and bf16, whose range needs none)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.env = join_process_group(self.device)
        self._torch_threads = torch.get_num_threads()  # restored on exit
        self.threads, self.threads_note = cpu_threads(self.device)
        torch.set_num_threads(self.threads)
        self._arithmetic = float32_arithmetic(self.precision)  # TF32 or not; restored on exit
        self._arithmetic.__enter__()
        try:
            self.stop = StopRequest().__enter__()  # first: SIGTERM in start-up ends as documented
            self.dir.check_resume(self.resume)
            failure: UserError | None = None
            deleted: list[str] = []
            moved = ""
            if self.env.main:
                try:
                    # the lock before any write: a second writer stops here, naming the first
                    # (a free default name lost to a run starting at once: the next free one)
                    asked = self.dir.root
                    self.dir, self._lock, deleted = claim_run_dir(
                        self.dir, self.resume, self._overwrite, self._next_free)
                    if self.dir.root != asked:
                        moved = (f"{asked} was claimed by another run starting at the same time; "
                                 f"this run takes {self.dir.root}")
                    self.dir.clear(deleted)
                    self.dir.prepare()
                except UserError as err:
                    failure = err
            # every rank stops when rank 0 could not set up (no rank left waiting for it)
            flag = torch.tensor([0.0 if failure is None else 1.0], device=self.device)
            if all_reduce_sum(flag, self.env).item() and failure is None:
                raise UserError(f"the main process could not set up {self.dir.root}; its message "
                                "says why")
            if failure is not None:
                raise failure
            start_impl_policy(self._impl_policy)
            self.console = Console(self.env.main, self._progress)
            if moved:
                self.console.print(moved)
            if deleted:
                self.console.print(f"--overwrite: deleted the earlier run in {self.dir.root} "
                                   f"({', '.join(deleted)})")
        except BaseException:
            self._close(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._close(*exc)

    def _close(self, *exc: Any) -> None:
        try:
            self.stop.__exit__(*exc)
            if self.log is not None:
                self.log.close()
            if self._lock is not None:
                self._lock.release()
        finally:
            torch.set_num_threads(self._torch_threads)
            self._arithmetic.__exit__(None, None, None)
            leave_process_group(self.env, finished=not any(exc))

    @property
    def amp(self) -> AbstractContextManager:
        """The autocast context of the run's precision on its device (nothing for fp32)."""
        return mixed_precision(self.device, self.precision)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                          parameters: Any, grad_clip: float | None,
                          guard: NonFiniteSteps | None = None) -> torch.Tensor | None:
        """``loss.backward()``, gradient clipping to ``grad_clip`` (when set) and
        ``optimizer.step()``; under fp16 through :attr:`scaler`: the loss scaled, the gradients
        unscaled before clipping, a step whose gradients overflowed skipped (and the scale
        lowered).

        With ``guard`` (:meth:`nonfinite_steps`) nothing waits for the host: the step is masked
        on the device when its loss or gradients are not finite or the guard has halted, and its
        verdict recorded in ``guard``; returns the mask (a device bool: True when the step
        changed no weight). Under fp16 the scaler's own check covers the gradients (an overflow
        is its business, not a bad step) and a bad loss poisons a gradient so the scaler skips
        the step too. The mask rides on the fused optimiser's ``found_inf``; an optimiser
        without it reads the mask on the host."""
        params = [p for p in parameters if p.requires_grad]
        loss_bad = guard.loss_bad(loss) if guard is not None else None
        self.scaler.scale(loss).backward()
        grads = [p.grad for p in params if p.grad is not None]
        fp16 = self.scaler.is_enabled()
        if guard is not None and loss_bad is not None and fp16 and grads:
            grads[0].masked_fill_(guard.mask(loss_bad), float("nan"))  # before the scaler's check
        norm = None
        if grad_clip:
            self.scaler.unscale_(optimizer)
            norm = nn.utils.clip_grad_norm_(params, grad_clip)
        if guard is None or loss_bad is None:
            self.scaler.step(optimizer)
            self.scaler.update()
            return None
        if fp16:
            grads_bad = torch.zeros_like(loss_bad)
            skip = guard.mask(loss_bad)
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            if norm is None:
                norm = nn.utils.get_total_norm(grads) if grads else torch.zeros(())
            grads_bad = not_finite(norm)
            skip = guard.mask(loss_bad | grads_bad)
            masked_step(optimizer, skip)
        guard.record(loss_bad, grads_bad)
        return skip

    def nonfinite_steps(self, skip: bool | None) -> NonFiniteSteps:
        """The device-side non-finite policy of this run (:class:`NonFiniteSteps`): ``skip``
        bad steps, or stop at the first with the last good checkpoint kept (``None``: the task
        has no skip option)."""
        return NonFiniteSteps(self.device, self.env, self.dir.state(), skip)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel under torchrun, else itself."""
        return data_parallel(model, self.env, self.device)

    def restore(self, parts: TrainingParts, config: dict[str, Any],
                fresh: dict[str, Any]) -> dict[str, Any]:
        """Load ``checkpoints/last.pt`` into ``parts`` (and torch's RNGs) after checking its
        position against ``fresh`` (a new run's: every entry there, of its type and in range,
        :func:`check_position`) and that ``config`` may continue the run it holds
        (:func:`check_resume_config`: a refused change raises ConfigError naming the key), both
        before anything is loaded; pin the LKCA implementations the run used; a CPU run resumed
        with another intra-op thread count is told its results will differ from an unbroken
        run's (and the change recorded, as ``threads`` in ``resume_history``). Returns the
        position in the run it was saved at."""
        path = self.dir.state()
        state = read_checkpoint(path)
        check_position(state, fresh, self._step_key, config.get(self._step_key + "s"), path)
        self.history = list(state.get("resume_history") or [])
        changed: dict[str, Any] = {}
        if isinstance(state.get("config"), dict):  # checkpoints of lkca <= 0.2 hold no config
            # runs from before ``precision`` existed ran bf16 autocast on CUDA, fp32 elsewhere
            state["config"].setdefault("precision",
                                       "bf16" if self.device.type == "cuda" else "fp32")
            changed = check_resume_config(state["config"], config, self._resumable, path)
        saved = state.get("threads")
        if self.device.type == "cpu" and isinstance(saved, int) and saved != self.threads:
            changed["threads"] = [saved, self.threads]
            self.console.print(f"--resume: the run trained with {plural(saved, 'intra-op thread')}"
                               f" and continues with {self.threads}, so its results will not be "
                               "bit-identical to an unbroken run's; to keep them, resume with "
                               f"OMP_NUM_THREADS={saved} (docs/reproducibility.md)")
        if changed:
            self.history.append({self._step_key: state.get(self._step_key), "changed": changed})
        replay_impl_choices(state.get("impl_choices"))
        return apply_checkpoint(state, parts, path)

    def begin(self, config: dict[str, Any], resumed_at: int | None = None) -> None:
        """Open the run log and write ``config.yaml`` (main process); ``resumed_at``: the epoch
        or iter of the checkpoint resumed from, whose later records are dropped from
        ``metrics.jsonl`` so the file matches an unbroken run (None: a new run, whose log starts
        empty)."""
        self._config = config
        if (self.env.main and resumed_at and self._step_key == "epoch"
                and not self.dir.metrics.exists()):  # every finished epoch logged a record
            raise UserError(f"--resume: {self.dir.metrics} is missing, though the checkpoint is "
                            f"at epoch {resumed_at}; restore it, or start over with --overwrite")
        self.log = RunLog(self.dir.metrics, self.dir.tensorboard, enabled=self.env.main,
                          step_key=self._step_key)
        if self.env.main:
            self.dir.write_config(config)
            if resumed_at is not None:
                self.log.truncate_after(resumed_at)
            else:  # a new run in this folder starts its own log (no records of an earlier run)
                self.log.start_afresh()

    def record(self, record: dict[str, Any]) -> None:
        """Append one record to ``metrics.jsonl`` (and TensorBoard); main process only."""
        assert self.log is not None, "Session.begin() opens the run log"
        self.log.write(record)

    def metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` so far (main process; [] elsewhere or before any)."""
        path = self.dir.metrics
        return read_metrics(path, self._step_key) if self.env.main and path.exists() else []

    def stepped(self) -> None:
        """Call after every training step: after the first, every rank pins rank 0's LKCA
        implementation choices (DDP ranks run the same code) and rank 0 writes them to
        ``impl_choices.json``."""
        if not self._shared:
            self._shared = True
            share_impl_choices(self.env, self.dir.impl_choices if self.env.main else None)

    def save(self, parts: TrainingParts, meta: dict[str, Any], position: dict[str, Any],
             tag: str = "last") -> None:
        """Write ``checkpoints/<tag>.pt`` + ``.safetensors`` (main process only); the ``.pt``
        also holds the run's config, its ``resume_history`` and its LKCA implementation
        choices, which ``--resume`` checks and replays."""
        if self.env.main:
            self._check_lock()
            extra: dict[str, Any] = {"config": self._config,
                                     "impl_choices": impl_choices(), "threads": self.threads}
            if self.history:
                extra["resume_history"] = self.history
            save_checkpoint(self.dir.checkpoints, tag, parts, meta, {**position, **extra})

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
        """Write ``summary.json`` (main process only), with the intra-op ``threads`` of the run
        and the ``resume_history`` of resumes that changed the config (absent when none did)."""
        if self.env.main:
            self._check_lock()
            summary["threads"] = self.threads
            if self.history:
                summary["resume_history"] = self.history
            self.dir.write_summary(summary)

    def _check_lock(self) -> None:
        """Before a commit: the lock file restored if it was deleted while held (the lock on the
        directory itself holds whatever happens to the file, :mod:`lkca.runtime.run_lock`)."""
        if self._lock is not None:
            self._lock.check_held()


def masked_step(optimizer: torch.optim.Optimizer, skip: torch.Tensor) -> None:
    """``optimizer.step()`` unless the device bool ``skip``: through the fused kernel's
    ``found_inf`` (weights, moments and step count left as they were, no host wait), else, for
    an optimiser without it, read on the host."""
    if getattr(optimizer, "_step_supports_amp_scaling", False):
        optimizer.grad_scale = None  # type: ignore[attr-defined]
        optimizer.found_inf = skip.to(torch.float32)  # type: ignore[attr-defined]
        try:
            optimizer.step()
        finally:
            del optimizer.grad_scale, optimizer.found_inf  # type: ignore[attr-defined]
    elif not skip.item():
        optimizer.step()
