"""AdamW for every task: the fused kernel, and the weight-decay groups.

The schedules are each task's recipe: :mod:`lkca.train.optim` (warm-up + cosine, paper 4.1) and
:mod:`lkca.seg.optim` (warm-up + poly, paper 4.2).
"""

from __future__ import annotations

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float, decay_1d: bool = False) -> list[dict]:
    """Two groups, ``[decayed, undecayed]``: parameters of two or more dimensions (matrices,
    kernels, position tables, class tokens) decay; 1-D ones (biases, norm gains) decay only with
    ``decay_1d``, otherwise their group has weight decay 0.

    ``decay_1d=False`` is timm's and MMSegmentation's habit; SPT, whose recipe the paper's
    classification follows, decays every parameter (``AdamW(model.parameters())``, SPT main.py:230),
    which ``decay_1d=True`` reproduces (the undecayed group is then empty).
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if decay_1d or p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def adamw(groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW with the fused kernel where torch has one for the parameters' device (CPU and CUDA):
    one pass over all parameters instead of a dozen element-wise ops each, the same update up to
    rounding (tests/runtime/test_adamw.py)."""
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point()
                                 for p in params)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)
