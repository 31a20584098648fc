"""Stochastic depth (Huang et al. 2016): drop a residual branch per sample while training."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lkca.errors import ConfigError

DROP_PATH_SCHEDULES = ("constant", "linear")


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Zero the whole branch of each sample with probability ``drop_prob``; rescale the rest."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask.div_(keep)  # the rescale on the (B, 1, ...) mask: one pass over x, not two


class DropPath(nn.Module):
    """Module form of :func:`drop_path`. Each call draws its own mask, so one module applied to
    several residual branches drops each branch independently."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"DropPath: drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


def drop_path_rates(rate: float, depths: Sequence[int],
                    schedule: str = "linear") -> list[list[float]]:
    """The stochastic-depth rate of every block, grouped per stage (``depths`` blocks each).

    ``"linear"``: rising from 0 at the first block to ``rate`` at the last, over all stages
    (timm, MMSegmentation). ``"constant"``: ``rate`` in every block, as the training code the
    paper follows (SPT) builds it: one ``DropPath(stochastic_depth)`` applied to both residual
    branches of every block (docs/recipe.md).
    """
    if schedule not in DROP_PATH_SCHEDULES:
        raise ConfigError(f"drop_path_schedule {schedule!r} is not one of "
                          f"{', '.join(DROP_PATH_SCHEDULES)}; use 'constant' (SPT) or 'linear'")
    total = sum(depths)
    if schedule == "constant":
        rates = [float(rate)] * total
    else:
        rates = torch.linspace(0, rate, total, device="cpu").tolist()  # also under a meta device
    starts = [sum(depths[:i]) for i in range(len(depths))]
    return [rates[s:s + d] for s, d in zip(starts, depths)]
