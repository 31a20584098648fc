"""AdamW and the per-iteration schedules: linear warm-up, then cosine annealing (paper 4.1) or
poly decay (segmentation, paper 4.2)."""

from __future__ import annotations

import math

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices and kernels; leave biases and LayerNorm gains undecayed (timm/SPT)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def adamw(groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW with the fused kernel where torch has one for the parameters' device (CPU and CUDA):
    one pass over all parameters instead of a dozen element-wise ops each, the same update up to
    rounding (tests/train/test_optim.py)."""
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point()
                                 for p in params)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
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
    ratio = min_lr / lr
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, warmup_steps, total_steps, ratio)
    )


def warmup_poly(step: int, warmup_steps: int, total_steps: int, power: float = 1.0,
                min_ratio: float = 0.0, warmup_ratio: float = 1e-6) -> float:
    """LR multiplier at ``step`` of MMSegmentation's ViT schedule (segmentation, paper 4.2).

    Linear warm-up from ``warmup_ratio`` to 1 over ``warmup_steps`` (mmengine ``LinearLR``,
    ``start_factor=warmup_ratio``), then poly decay from 1 to ``min_ratio`` (= min_lr / lr) at
    ``total_steps``: ``min_ratio + (1 - min_ratio) * (1 - t / T) ** power`` with t, T counted from
    the end of warm-up (mmengine ``PolyLR``, ``begin=warmup_steps``, ``end=total_steps``). Step 0
    trains at ``lr * warmup_ratio``; at and after ``total_steps`` the multiplier is ``min_ratio``.
    """
    if step < warmup_steps:
        return warmup_ratio + (1 - warmup_ratio) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * (1 - progress) ** power
