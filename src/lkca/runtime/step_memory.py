"""The memory one training step needs at least, counted before anything is allocated.

A model and a batch that cannot fit the device are refused in one line before the run starts,
instead of failing in an allocation (or swapping the machine to a halt) in the first step.

The model, built on the meta device by the caller, runs forward once on a meta batch (no data,
no arithmetic: shapes only). Every tensor autograd keeps for the backward pass is seen by
``torch.autograd.graph.saved_tensors_hooks`` and each storage is counted once; to that come the
weights, their gradients and AdamW's two moments (4 x the parameters). That sum is a lower bound
on one step's memory (it leaves out workspaces, the data set on the device and the allocator's
slack), so a run refused by it could not have run; under bf16 or fp16 autocast the activations
are counted at half their fp32 size, for the same reason. LKCA layers are counted with the
``conv`` implementation, the one that keeps least.

The bound: the device's whole memory (CPU: the machine's physical memory; CUDA: the GPU's total
memory), as :func:`device_memory` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from lkca.errors import UserError
from lkca.layers.lkca import LKCA
from lkca.runtime.device import resolve_device
from lkca.runtime.distributed import world_size


def step_bytes(model: nn.Module, batch_shape: tuple[int, ...], precision: str = "fp32") -> int | None:
    """The lower bound above, in bytes, for ``model`` and a batch of ``batch_shape`` (on the
    model's device: the meta device counts without computing); None when the model does not run
    there (not estimated). Sets every LKCA layer's implementation to ``conv``."""
    for module in model.modules():
        if isinstance(module, LKCA):
            module.impl = "conv"
    weights = {p.untyped_storage()._cdata for p in model.parameters()}  # counted below
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in weights:
            kept[storage._cdata] = storage.nbytes()
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model.train()(torch.empty(batch_shape, device=next(model.parameters()).device))
    except Exception:  # noqa: BLE001 - an operation the meta device cannot run (no meta kernel,
        return None  # a value read back): the step is not estimated, and the run goes on
    activations = sum(kept.values()) // (1 if precision in ("fp32", "tf32") else 2)  # fp32 storage
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return activations + 4 * params


def device_memory(device: torch.device) -> int:
    """The whole memory of ``device`` in bytes: the GPU's total, or the machine's physical memory."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_step_memory(build: Callable[[], nn.Module], batch: int, image: tuple[int, int, int],
                      device: str, precision: str, what: str, fix: str = "lower batch_size") -> None:
    """UserError (one line) when one training step of the model ``build()`` makes, on this
    process's share of a global batch of ``batch`` images of ``image`` (C, H, W), needs more
    than the whole memory of ``device`` (:func:`step_bytes`). The model is built on the meta
    device: nothing is allocated."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):  # the run's seeded draws
        need = step_bytes(build(), shape := (max(1, batch // world_size()), *image), precision)
    resolved = resolve_device(device)
    have = device_memory(resolved)
    if need is not None and need > have:
        where = "this machine's memory" if resolved.type == "cpu" else f"GPU {resolved}"
        raise UserError(f"one training step of {what} on a batch of {shape[0]} "
                        f"{image[1]}x{image[2]} images needs at least {need / 2**30:.1f} GiB, "
                        f"more than the {have / 2**30:.1f} GiB of {where}; {fix} (or the "
                        "model's size)")
