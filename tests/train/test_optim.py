"""The classification optimiser and schedule against SPT's definitions (paper section 4.1;
aanna0701/SPT_LSA_ViT at 54bd796: main.py:230-231, utils/scheduler.py, docs/recipe.md)."""

import math

import pytest
import torch
from torch import nn

from lkca.runtime.optim import param_groups
from lkca.train.optim import build_optimizer, build_scheduler, warmup_cosine_lr


class _SPTSchedule:
    """SPT's CosineAnnealingWarmupRestarts with cycle_mult 1, gamma 1, written out from
    utils/scheduler.py:17-89 (not imported): the constructor steps once (step_in_cycle -1 -> 0)
    then init_lr() sets every group to min_lr (:45-51); each step() adds one to step_in_cycle and
    get_lr() (:53-62) gives warm-up from min_lr, then cosine to min_lr."""

    def __init__(self, first_cycle_steps, max_lr, min_lr, warmup_steps):
        self.total, self.max_lr, self.min_lr, self.warmup = (first_cycle_steps, max_lr, min_lr,
                                                             warmup_steps)
        self.step_in_cycle = 0
        self.lr = min_lr  # init_lr

    def step(self):
        self.step_in_cycle += 1
        if self.step_in_cycle >= self.total:  # a new cycle (one past the last training step)
            self.step_in_cycle -= self.total
        k, base = self.step_in_cycle, self.min_lr
        if k < self.warmup:
            self.lr = (self.max_lr - base) * k / self.warmup + base
        else:
            self.lr = base + (self.max_lr - base) * (
                1 + math.cos(math.pi * (k - self.warmup) / (self.total - self.warmup))) / 2


def _lkca_lrs(warmup_steps, total_steps, lr=1e-3):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = build_scheduler(opt, warmup_steps, total_steps, lr, min_lr=1e-6, warmup_lr=1e-6)
    lrs = []
    for _ in range(total_steps):
        lrs.append(opt.param_groups[0]["lr"])  # the lr training step i runs with
        opt.step()
        sched.step()
    return lrs


def test_schedule_equals_spt_cosine_annealing_warmup_restarts():
    # SPT build_scheduler (utils/scheduler.py:91-113): num_steps = epochs x iters, warmup_steps =
    # warmup x iters, max_lr = args.lr (main.py:51, 1e-3), min_lr = 1e-6 (:111); here 10 epochs of
    # 7 iterations with 2 warm-up epochs
    warmup, total = 14, 70
    spt = _SPTSchedule(total, 1e-3, 1e-6, warmup)
    reference = []
    for _ in range(total):
        reference.append(spt.lr)
        spt.step()
    ours = _lkca_lrs(warmup, total)
    assert ours[0] == pytest.approx(1e-6, rel=1e-9)  # the first step runs at min_lr, not 0
    for i in (0, warmup // 2, warmup, total - 1):  # first, warm-up middle, peak, last
        assert ours[i] == pytest.approx(reference[i], rel=1e-9), i
    assert ours == pytest.approx(reference, rel=1e-9)
    assert ours[warmup] == pytest.approx(1e-3) and ours[-1] > 1e-6  # min_lr at step `total`
    assert warmup_cosine_lr(total, warmup, total, 1e-3, 1e-6, 1e-6) == pytest.approx(1e-6)


def test_weight_decay_groups():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8))
    model.register_parameter("token", nn.Parameter(torch.zeros(1, 1, 8)))
    matrices = {id(model[0].weight), id(model.token)}
    decay, no_decay = param_groups(model, 0.05)
    assert {id(p) for p in decay["params"]} == matrices and decay["weight_decay"] == 0.05
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0  # bias, LN gain/bias
    # SPT main.py:230: AdamW(model.parameters(), weight_decay=0.05): every parameter decays
    groups = build_optimizer(model, 1e-3, 0.05, decay_1d=True).param_groups
    decayed = [p for g in groups if g["weight_decay"] == 0.05 for p in g["params"]]
    assert len(decayed) == len(list(model.parameters()))
    assert sum(len(g["params"]) for g in groups if g["weight_decay"] == 0.0) == 0
