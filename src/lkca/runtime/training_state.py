"""Checkpoints of a training run: save and restore everything that continues it bit for bit.

``<tag>.pt`` alone resumes a run: the weights, the optimiser, the scheduler, the EMA weights
(if any), torch's RNG states, the metadata record and the run's position (epoch/step or iter and
running sums). ``<tag>.safetensors`` beside it holds the weights and the record for evaluation,
export and :func:`lkca.from_pretrained`. Each file is written atomically
(:func:`lkca.atomic_files.write_atomic`), so a crash at any moment leaves a complete one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lkca.checkpoint.files import load_state, load_weights, save_state, save_weights
from lkca.errors import CheckpointError

_PARTS = ("model", "optimizer", "scheduler", "ema", "scaler", "rng", "meta")
_RUN = ("config", "impl_choices", "resume_history", "threads")  # the run's record (Session)


@dataclass
class TrainingParts:
    """What a checkpoint saves and restores beside the run's position."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch.optim.lr_scheduler scheduler (state_dict / load_state_dict)
    ema: nn.Module | None = None  # torch.optim.swa_utils.AveragedModel
    scaler: torch.amp.GradScaler | None = None  # fp16's loss scale (Session.scaler)


def rng_state() -> dict[str, Any]:
    """torch's CPU RNG state and, when CUDA is available, every GPU's."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: Path, tag: str, parts: TrainingParts, meta: dict[str, Any],
                    position: dict[str, Any]) -> None:
    """Write ``<tag>.safetensors`` (weights + ``meta``) and ``<tag>.pt`` (the whole state with
    the entries of ``position`` at its top level) to ``directory``."""
    save_weights(directory / f"{tag}.safetensors", parts.model, meta)
    state = dict(position, meta=meta, model=parts.model.state_dict(),
                 optimizer=parts.optimizer.state_dict(), scheduler=parts.scheduler.state_dict(),
                 rng=rng_state())
    if parts.ema is not None:
        state["ema"] = parts.ema.state_dict()
    if parts.scaler is not None and parts.scaler.is_enabled():
        state["scaler"] = parts.scaler.state_dict()
    save_state(directory / f"{tag}.pt", state)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The state in a ``.pt`` of :func:`save_checkpoint` (verified, :func:`load_state`), or
    CheckpointError when it is a valid file of another structure (e.g. ``[1, 2, 3]``)."""
    state = load_state(path)
    if not isinstance(state, dict) or not all(k in state for k in ("model", "optimizer",
                                                                    "scheduler", "rng")):
        raise CheckpointError(f"training state {path} is not a checkpoint of lkca train or lkca "
                              "seg train (model, optimizer, scheduler, rng missing); resume from "
                              "another checkpoint or retrain")
    return state


def apply_checkpoint(state: dict[str, Any], parts: TrainingParts, path: Path) -> dict[str, Any]:
    """Load a state of :func:`read_checkpoint` into ``parts`` and torch's RNGs; returns the
    position saved with it (a damaged structure: CheckpointError naming ``path``)."""
    if not isinstance(state["model"], dict):
        raise CheckpointError(f"training state {path} holds no model weights; resume from "
                              "another checkpoint or retrain")
    load_weights(parts.model, state["model"], path)
    try:
        parts.optimizer.load_state_dict(state["optimizer"])
        parts.scheduler.load_state_dict(state["scheduler"])
        if parts.ema is not None and "ema" in state:
            parts.ema.load_state_dict(state["ema"])
        if parts.scaler is not None and "scaler" in state:
            parts.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
        raise CheckpointError(f"training state {path} does not fit this run ({type(err).__name__}"
                              " in the optimiser, scheduler or RNG state); resume from another "
                              "checkpoint or retrain") from None
    return {k: v for k, v in state.items() if k not in _PARTS + _RUN}


def check_position(state: dict[str, Any], fresh: dict[str, Any], step_key: str, total: Any,
                   path: Path) -> None:
    """CheckpointError (one line naming ``path`` and the entry) unless the run's position in
    ``state`` is whole and in range, checked as one record before any of it is used: every entry
    of ``fresh`` (the position of a new run) present with its type (a count: a whole number
    >= 0; a sum or time: a finite number >= 0; a mapping: keyed by names), the
    ``step_key`` (epoch or iter) at most ``total`` (the run's epochs or iters), and the
    ``resume_history`` a list of {step_key, changed} records."""
    def bad(key: str, want: str) -> CheckpointError:
        value = str(state.get(key))[:60]
        return CheckpointError(f"training state {path} has an invalid {key} ({value}; expected "
                               f"{want}); resume from another checkpoint or retrain")

    for key, default in fresh.items():
        value: Any = state.get(key)
        if isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(key, "a whole number >= 0")
        elif isinstance(default, float):
            if not _number(value) or value < 0:
                raise bad(key, "a finite number >= 0")
        elif isinstance(default, dict):
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise bad(key, "a mapping of names")
    if isinstance(total, int) and isinstance(state.get(step_key), int) and state[step_key] > total:
        raise bad(step_key, f"at most the run's {total}")
    history = state.get("resume_history")
    if history is not None and not (isinstance(history, list) and all(
            isinstance(h, dict) and isinstance(h.get("changed"), dict)
            and (h.get(step_key) is None or (isinstance(h.get(step_key), int)
                                             and not isinstance(h.get(step_key), bool)))
            for h in history)):
        raise bad("resume_history", f"a list of {{{step_key}, changed}} records")


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
