"""The segmentation optimiser and schedule (paper section 4.2), MMSegmentation's ViT recipe:
AdamW without decay on biases, norms and the position table; linear warm-up, then poly decay,
stepped per iteration."""

from __future__ import annotations

import torch
from torch import nn

from lkca.runtime.optim import adamw, param_groups


def seg_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """:func:`param_groups` (no decay on biases and norms) with the position table undecayed too,
    as MMSegmentation's ViT configs (``pos_embed`` decay_mult 0)."""
    decay, no_decay = param_groups(model, weight_decay)
    pos = {id(p) for n, p in model.named_parameters() if "pos_embed" in n}
    return [{"params": [p for p in decay["params"] if id(p) not in pos], "weight_decay": weight_decay},
            {"params": no_decay["params"] + [p for p in decay["params"] if id(p) in pos],
             "weight_decay": 0.0}]


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


def build_seg_optimizer(model: nn.Module, lr: float, weight_decay: float,
                        betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW (fused) over :func:`seg_param_groups`."""
    return adamw(seg_param_groups(model, weight_decay), lr, betas)


def build_seg_scheduler(optimizer: torch.optim.Optimizer, warmup_iters: int, iters: int,
                        power: float, min_ratio: float, warmup_ratio: float
                        ) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`warmup_poly` per iteration."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_poly(
        s, warmup_iters, iters, power, min_ratio, warmup_ratio))
