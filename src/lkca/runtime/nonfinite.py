"""The non-finite-loss policy: stop with the last good checkpoint kept, or skip the step.

:class:`NonFiniteSteps` keeps the verdicts on the device, so a step never waits for the host
(both engines): the optimiser step of a step whose loss or gradients are not finite is masked on
the device (fused AdamW's ``found_inf``,
:meth:`lkca.runtime.session.Session.backward_and_step`), and the host reads the verdicts only at
:meth:`NonFiniteSteps.check`, every :data:`CHECK_EVERY` steps and before anything is saved or
evaluated.

When the run stops (``skip`` not true), the host learns of a bad step at the next check, after
the steps between. Those steps change no weight either: the first bad step latches
:attr:`NonFiniteSteps.halted`, and every later step's update (weights, optimiser moments, EMA)
is masked until the check raises :class:`NonFiniteLoss` naming the first bad step; nothing is
saved in between, so the last good checkpoint is the one kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from lkca.errors import UserError
from lkca.runtime.distributed import Dist, all_reduce_sum

# Steps between the host's reads of the device (the non-finite verdicts, a progress bar's
# loss). A read drains the device's queue once, costing at most about one step's overlap of
# host and device, so at most 1 / CHECK_EVERY of the time: under 1% at 100. A run that stops on
# a non-finite step learns of it within CHECK_EVERY steps (or at the next save or evaluation).
CHECK_EVERY = 100


class NonFiniteLoss(UserError):
    """The loss became NaN or inf; the last checkpoint is left as it was."""


def non_finite_error(what: str, where: str, checkpoint: Path, skip: bool | None) -> NonFiniteLoss:
    """The one-line stop of a run whose ``what`` (``loss`` or ``gradients``) was not finite at
    ``where``: the checkpoint kept and what to change (``skip`` False: the task has the
    skip_nonfinite option; None: it has none)."""
    fixes = "lower --lr, set grad_clip, or set skip_nonfinite: true" if skip is False else (
        "lower --lr or set grad_clip")
    if not checkpoint.is_file():  # nothing saved yet: nothing to resume
        return NonFiniteLoss(f"non-finite {what} at {where}, before any checkpoint was saved: "
                             f"{fixes}, then start the run again")
    return NonFiniteLoss(f"non-finite {what} at {where}; the last good checkpoint {checkpoint} is "
                         f"kept: {fixes}, then --resume")


def not_finite(x: torch.Tensor) -> torch.Tensor:
    """Whether the 0-d tensor ``x`` is NaN or +-inf, in two device ops (``x - x`` is NaN
    exactly then; ``torch.isfinite`` takes four)."""
    return (x - x) != 0


class NonFiniteSteps:
    """The device-side verdicts of a run's steps since the last :meth:`check`.

    ``skip``: skip bad steps (counted) and go on, or stop at the first (``None``: the task has no
    skip option, so the stop's message does not offer one). :meth:`mask` is what an
    optimiser step must not apply; :meth:`record` adds one step's verdict. Every rank holds the
    same verdicts (the loss's is all-reduced, the gradients are DDP's all-reduced ones), so
    every rank stops or skips together.
    """

    def __init__(self, device: torch.device, env: Dist, checkpoint: Path,
                 skip: bool | None) -> None:
        self.env, self.checkpoint, self.skip = env, checkpoint, skip
        zero = torch.zeros((), dtype=torch.int64, device=device)
        self.steps = zero.clone()  # steps recorded since the last check
        self.bad = zero.clone()  # of which bad
        self.first = zero.clone()  # the first bad one's index since the last check
        self.first_loss = torch.zeros((), dtype=torch.bool, device=device)  # its loss was bad
        self.halted = torch.zeros((), dtype=torch.bool, device=device)  # stop: updates masked

    def loss_bad(self, loss: torch.Tensor) -> torch.Tensor:
        """Whether ``loss`` is not finite on some rank (a device bool; no host wait on a GPU)."""
        bad = not_finite(loss.detach())
        if self.env.world_size > 1:
            bad = all_reduce_sum(bad.to(torch.float32), self.env) > 0
        return bad

    def mask(self, bad: torch.Tensor) -> torch.Tensor:
        """Whether this step's update must be skipped: it is bad, or an earlier one stopped."""
        return bad | self.halted

    def record(self, loss_bad: torch.Tensor, grads_bad: torch.Tensor) -> None:
        """Add one step's verdict (device bools) to the counts."""
        bad = loss_bad | grads_bad
        new = bad & (self.bad == 0)
        self.first = torch.where(new, self.steps, self.first)
        self.first_loss = torch.where(new, loss_bad, self.first_loss)
        self.bad += bad.to(torch.int64)
        self.steps += 1
        if not self.skip:
            self.halted |= bad

    def check(self, where: Callable[[int], str]) -> int:
        """Read the verdicts (one host wait) and start counting afresh: the number of bad steps
        skipped since the last check, or :class:`NonFiniteLoss` (``skip`` false) naming the first
        bad one, ``where(i)`` of its index ``i`` since the last check."""
        bad, first, first_loss = torch.stack([self.bad, self.first,
                                              self.first_loss.to(torch.int64)]).tolist()
        if bad and not self.skip:
            raise non_finite_error("loss" if first_loss else "gradients", where(first),
                                   self.checkpoint, self.skip)
        for counter in (self.steps, self.bad, self.first):
            counter.zero_()
        return bad
