"""What a training step asks of the host and of the device, counted on any machine.

On a GPU a step of lkca's small models is bound by kernel launches and by every moment the host
waits for the device, not by arithmetic. Neither can be timed on a CPU, but both can be counted
there, exactly and without noise:

- **host waits**: calls that read a device value back to the host (on a GPU each one drains the
  queue): ``item``, ``tolist``, ``cpu``, ``numpy``, ``bool`` / ``int`` / ``float`` / ``index`` /
  ``format`` of a tensor, and the operations whose output size depends on the data (``nonzero``,
  ``unique``, ``masked_select``, ``bincount``, ``repeat_interleave`` with tensor repeats), seen
  through a :class:`torch.overrides.TorchFunctionMode`;
- **aten ops**: every operator that reaches the dispatcher (forward, backward and optimiser
  alike; roughly one kernel launch each on a GPU), seen through a
  :class:`torch.utils._python_dispatch.TorchDispatchMode`.

``with count_step() as counts: ...`` counts everything run inside the block;
:func:`model_step_counts` counts the model's own training step (forward, cross-entropy,
backward, fused AdamW), the floor a whole training step is compared with.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

# Tensor methods and torch functions that read a device value back to the host.
HOST_READS = frozenset({"item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__",
                        "__index__", "__format__", "nonzero", "argwhere", "unique",
                        "unique_consecutive", "masked_select", "bincount"})


@dataclass
class StepCounts:
    """Host-waiting calls and aten ops counted inside a :func:`count_step` block."""

    host_waits: int = 0
    aten_ops: int = 0
    host_wait_names: collections.Counter = field(default_factory=collections.Counter)
    aten_op_names: collections.Counter = field(default_factory=collections.Counter)


class _HostWaits(TorchFunctionMode):
    def __init__(self, counts: StepCounts) -> None:
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in HOST_READS or (name == "repeat_interleave" and len(args) > 1
                                  and isinstance(args[1], torch.Tensor)):
            self.counts.host_waits += 1
            self.counts.host_wait_names[name] += 1
        return func(*args, **(kwargs or {}))


class _AtenOps(TorchDispatchMode):
    def __init__(self, counts: StepCounts) -> None:
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        self.counts.aten_ops += 1
        self.counts.aten_op_names[str(func.overloadpacket.__name__)] += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def count_step() -> Iterator[StepCounts]:
    """Count the host-waiting calls and the aten ops of everything run inside the block."""
    counts = StepCounts()
    with _HostWaits(counts), _AtenOps(counts):
        yield counts


def model_step_counts(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      steps: int = 2) -> StepCounts:
    """The counts of the model's own training step, averaged over ``steps`` steps after one
    uncounted step (AdamW creates its state on the first): ``model(images)``, cross-entropy,
    ``zero_grad``, backward and a fused AdamW step. Nothing else: no augmentation, no mixing, no
    schedule, no logging. The optimiser is a fresh one; the model's weights change."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    model.train()

    def step() -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    with count_step() as counts:
        for _ in range(steps):
            step()
    return per_step(counts, steps)


def per_step(counts: StepCounts, steps: int) -> StepCounts:
    """``counts`` divided by ``steps`` (the name counters stay totals)."""
    return StepCounts(counts.host_waits / steps, counts.aten_ops / steps,  # type: ignore[arg-type]
                      counts.host_wait_names, counts.aten_op_names)
