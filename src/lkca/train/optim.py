"""The classification optimiser and schedule (paper section 4.1), as SPT's training script builds
them (aanna0701/SPT_LSA_ViT main.py:230-231, utils/scheduler.py; docs/recipe.md): AdamW, a
linear warm-up, then cosine annealing, stepped per iteration."""

from __future__ import annotations

import math

import torch
from torch import nn

from lkca.runtime.optim import adamw, param_groups


def build_optimizer(model: nn.Module, lr: float, weight_decay: float,
                    decay_1d: bool = True) -> torch.optim.AdamW:
    """AdamW (fused) over :func:`lkca.runtime.optim.param_groups`: every parameter decays with
    ``decay_1d`` (SPT main.py:230), otherwise biases and norm gains do not."""
    return adamw(param_groups(model, weight_decay, decay_1d), lr)


def warmup_cosine_lr(step: int, warmup_steps: int, total_steps: int, lr: float, warmup_lr: float,
                     min_lr: float) -> float:
    """The learning rate of training step ``step`` (0-based), SPT's CosineAnnealingWarmupRestarts
    with one cycle (utils/scheduler.py:45-62, built at :106-113):

    - warm-up, ``step < warmup_steps``: ``warmup_lr + (lr - warmup_lr) * step / warmup_steps``, so
      step 0 runs at ``warmup_lr`` (SPT sets every group to min_lr 1e-6 at construction, :45-51);
    - then cosine: ``min_lr + (lr - min_lr) * (1 + cos(pi * (step - warmup_steps) /
      (total_steps - warmup_steps))) / 2``, which reaches ``min_lr`` at ``step = total_steps``, one
      past the last step, as SPT's does.

    SPT uses one value, min_lr, for both ends (``warmup_lr = min_lr = 1e-6``).
    """
    if step < warmup_steps:
        return warmup_lr + (lr - warmup_lr) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                    lr: float, min_lr: float, warmup_lr: float = 1e-6
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`warmup_cosine_lr` per iteration (``scheduler.step()`` after each optimiser step);
    the optimiser's groups start at ``lr``, which the schedule scales."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine_lr(s, warmup_steps, total_steps, lr, warmup_lr,
                                              min_lr) / lr)
