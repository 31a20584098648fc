"""The step counter (lkca.analysis.step_counts) sees host reads and aten ops."""

import torch
from torch import nn

from lkca.analysis.step_counts import count_step, model_step_counts


def test_counts_host_reads_and_ops():
    x = torch.arange(6.0)
    with count_step() as counts:
        y = x * 2 + 1          # two aten ops
        y.sum().item()          # one host read (and a sum)
        bool(y[0] > 0)          # one host read
        torch.bincount(torch.tensor([1, 2]))  # host read
        y.repeat_interleave(2)  # int repeats: no host read
        y.repeat_interleave(torch.tensor([1, 1, 1, 1, 1, 1]))  # tensor repeats: a host read
    assert counts.host_waits == 4, counts.host_wait_names
    assert counts.host_wait_names["item"] == 1 and counts.host_wait_names["__bool__"] == 1
    assert counts.aten_op_names["mul"] == 1 and counts.aten_op_names["add"] == 1
    assert counts.aten_ops >= 6


def test_model_step_has_no_host_reads():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    counts = model_step_counts(model, torch.randn(8, 3, 2, 2), torch.randint(0, 4, (8,)))
    assert counts.host_waits == 0, counts.host_wait_names
    assert counts.aten_ops > 5
