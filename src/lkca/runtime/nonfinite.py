"""The non-finite-loss policy: stop with the last good checkpoint kept, or skip the step."""

from __future__ import annotations

from pathlib import Path

import torch

from lkca.errors import UserError
from lkca.runtime.distributed import Dist, all_reduce_sum


class NonFiniteLoss(UserError):
    """The loss became NaN or inf; the last checkpoint is left as it was."""


def all_finite(loss: torch.Tensor, env: Dist) -> bool:
    """One verdict for all ranks, so every process skips or stops together (no DDP hang)."""
    bad = (~torch.isfinite(loss.detach())).float()
    return all_reduce_sum(bad, env).item() == 0


def check_finite(loss: torch.Tensor, env: Dist, where: str, checkpoint: Path,
                 skip: bool | None = None) -> bool:
    """True when ``loss`` is finite on every rank. Otherwise False when ``skip`` (the caller
    skips the step), else :class:`NonFiniteLoss` naming ``where`` and the checkpoint kept;
    ``skip=None``: the task has no skip option, so the message does not offer one."""
    if all_finite(loss, env):
        return True
    if skip:
        return False
    fixes = "lower --lr, set grad_clip, or set skip_nonfinite: true" if skip is False else (
        "lower --lr or set grad_clip")
    if not checkpoint.is_file():  # nothing saved yet: nothing to resume
        raise NonFiniteLoss(f"non-finite loss at {where}, before any checkpoint was saved: "
                            f"{fixes}, then start the run again")
    raise NonFiniteLoss(f"non-finite loss at {where}; the last good checkpoint {checkpoint} is "
                        f"kept: {fixes}, then --resume")
