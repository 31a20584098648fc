"""The classification optimiser and schedule (paper section 4.1): AdamW, linear warm-up, then
cosine annealing, stepped per iteration."""

from __future__ import annotations

import math

import torch
from torch import nn

from lkca.runtime.optim import adamw, param_groups


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW (fused) with weight decay on matrices and kernels (:func:`param_groups`)."""
    return adamw(param_groups(model, weight_decay), lr)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier at ``step``: 0 -> 1 linearly over warm-up, then cosine to ``min_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, lr: float, min_lr: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`warmup_cosine` per iteration, from ``lr`` down to ``min_lr``."""
    ratio = min_lr / lr
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, warmup_steps, total_steps, ratio)
    )
