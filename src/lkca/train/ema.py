"""An exponential moving average of a model's weights whose update never waits for the host.

The average of :class:`torch.optim.swa_utils.AveragedModel` with
``get_ema_multi_avg_fn(decay)`` and ``use_buffers=True`` (the same checkpoint layout: ``module.*``
and ``n_averaged``, so runs saved with it resume), with the update kept on the device: the
first update copies the weights, every later one moves the average ``1 - decay`` of the way to
them, and a step masked as bad (:class:`lkca.runtime.nonfinite.NonFiniteSteps`) leaves the
average and its count alone. AveragedModel reads ``n_averaged`` on the host every update (two
host waits) and copies it to the device.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA(nn.Module):
    """The average of ``model``'s parameters and floating-point buffers, ``decay`` per update;
    :attr:`module` is the averaged model, for evaluation. Integer buffers (counters such as
    BatchNorm's ``num_batches_tracked``; lkca's ViTs have none) are copied, where AveragedModel
    averages them in floating point and truncates."""

    n_averaged: torch.Tensor
    _rate: torch.Tensor

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.module = copy.deepcopy(model)
        device = next(model.parameters()).device
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=device))
        self.register_buffer("_rate", torch.tensor(1.0 - decay, device=device), persistent=False)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module, skip: torch.Tensor | None = None) -> None:
        """Average ``model``'s current weights in, unless ``skip`` (a device bool) is True."""
        ours = list(self.module.parameters()) + list(self.module.buffers())
        theirs = list(model.parameters()) + list(model.buffers())
        floats = [(a, b.detach()) for a, b in zip(ours, theirs, strict=True)
                  if a.is_floating_point()]
        others = [(a, b) for a, b in zip(ours, theirs, strict=True) if not a.is_floating_point()]
        # the step's weight: 1 on the first update (a copy), then 1 - decay; 0 when skipped
        rate = torch.where(self.n_averaged == 0, torch.ones_like(self._rate), self._rate)
        if skip is not None:
            rate = torch.where(skip, torch.zeros_like(rate), rate)
        if floats:
            avg, cur = [a for a, _ in floats], [b for _, b in floats]
            step = torch._foreach_sub(cur, avg)
            torch._foreach_mul_(step, rate)
            torch._foreach_add_(avg, step)
        for a, b in others:  # counters such as BatchNorm's num_batches_tracked: the model's
            a.copy_(b if skip is None else torch.where(skip, a, b))
        self.n_averaged += 1 if skip is None else (~skip).to(torch.long)
