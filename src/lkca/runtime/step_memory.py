"""The memory one training step, or one inference forward, needs at least, counted before
anything is allocated.

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

An inference forward (:func:`forward_bytes`, for ``lkca erf``, ``export``, ``profile``,
``kernels`` and ``seg predict``) is counted with the same hooks, in eval mode with the weights
frozen and the batch requiring grad: with a gradient of the input (``lkca erf``) all that is
kept, else only the largest kept tensor (one intermediate the forward must hold), each beside the
weights and the batch.

The bound: the device's whole memory (CPU: the machine's physical memory, or the address-space
limit when lower; CUDA: the GPU's total memory), as :func:`device_memory` reads it.
"""

from __future__ import annotations

import copy
import math
import os
import resource
from collections.abc import Callable

import torch
from torch import nn

from lkca.errors import UserError
from lkca.layers.lkca import LKCA
from lkca.runtime.device import resolve_device
from lkca.runtime.distributed import world_size


def _kept_storages(model: nn.Module, batch: torch.Tensor, impl: str, train: bool
                   ) -> dict[int, int] | None:
    """Storage -> bytes of each storage autograd keeps (weights left out) while ``model`` runs
    forward once on ``batch`` (an empty tensor on the model's device), in train or eval mode,
    with every LKCA layer set to ``impl``; None when the model does not run there."""
    for module in model.modules():
        if isinstance(module, LKCA):
            module.impl = impl
    weights = {p.untyped_storage()._cdata for p in model.parameters()}  # counted by the callers
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in weights:
            kept[storage._cdata] = storage.nbytes()
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model.train(train)(batch)
    except Exception:  # noqa: BLE001 - an operation the meta device cannot run (no meta kernel,
        return None  # a value read back): not estimated, and the command goes on
    return kept


def _empty_batch(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, device=next(model.parameters()).device)


def _weight_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def step_bytes(model: nn.Module, batch_shape: tuple[int, ...], precision: str = "fp32") -> int | None:
    """The lower bound above, in bytes, for ``model`` and a batch of ``batch_shape`` (on the
    model's device: the meta device counts without computing); None when the model does not run
    there (not estimated). Sets every LKCA layer's implementation to ``conv``."""
    kept = _kept_storages(model, _empty_batch(model, batch_shape), "conv", train=True)
    if kept is None:
        return None
    activations = sum(kept.values()) // (1 if precision in ("fp32", "tf32") else 2)  # fp32 storage
    return activations + 4 * _weight_bytes(model)


def forward_bytes(model: nn.Module, batch_shape: tuple[int, ...] | None, impl: str = "conv",
                  input_grad: bool = False) -> int | None:
    """A lower bound, in bytes, on one inference forward of ``model`` (eval mode, fp32, LKCA
    layers set to ``impl``) on a batch of ``batch_shape`` (None: the weights only, for a command
    that builds the model and runs nothing). The weights and the batch, plus:

    - ``input_grad`` (a gradient with respect to the input, parameters frozen): every tensor
      autograd keeps for that gradient (counted as :func:`step_bytes` does), and the gradient;
    - else (no grad): the largest of those tensors alone, one intermediate the forward must
      hold at some point.

    None when the model does not run on its device (not estimated)."""
    weights = _weight_bytes(model)
    if batch_shape is None:
        return weights
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        batch = _empty_batch(model, batch_shape).requires_grad_(True)
        kept = _kept_storages(model, batch, impl, train=False)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    if kept is None:
        return None
    kept.pop(batch.untyped_storage()._cdata, None)  # the batch: counted here, once
    image = 4 * math.prod(batch_shape)  # fp32
    if input_grad:  # the batch, its gradient and what autograd keeps for it
        return weights + 2 * image + sum(kept.values())
    return weights + image + max(kept.values(), default=0)


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the meta device (shapes only), for an estimate of a model already
    built; ``model`` itself is left as it is."""
    return copy.deepcopy(model).to("meta")


def device_memory(device: torch.device) -> int:
    """The whole memory of ``device`` in bytes: the GPU's total, or the machine's physical memory
    (or the process's address-space limit, ``RLIMIT_AS``, when that is lower)."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cap = resource.getrlimit(resource.RLIMIT_AS)[0]
    return physical if cap == resource.RLIM_INFINITY else min(physical, cap)


def _refuse_past_memory(need: int | None, device: str | torch.device, what: str, fix: str) -> None:
    """UserError (one line): ``what`` needs at least ``need`` bytes, more than ``device`` has."""
    resolved = resolve_device(device) if isinstance(device, str) else device
    have = device_memory(resolved)
    if need is not None and need > have:
        where = "this machine's memory" if resolved.type == "cpu" else f"GPU {resolved}"
        raise UserError(f"{what} needs at least {need / 2**30:.1f} GiB, more than the "
                        f"{have / 2**30:.1f} GiB of {where}; {fix}")


def check_step_memory(build: Callable[[], nn.Module], batch: int, image: tuple[int, int, int],
                      device: str, precision: str, what: str, fix: str = "lower batch_size") -> None:
    """UserError (one line) when one training step of the model ``build()`` makes, on this
    process's share of a global batch of ``batch`` images of ``image`` (C, H, W), needs more
    than the whole memory of ``device`` (:func:`step_bytes`). The model is built on the meta
    device: nothing is allocated."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):  # the run's seeded draws
        need = step_bytes(build(), shape := (max(1, batch // world_size()), *image), precision)
    _refuse_past_memory(need, device, f"one training step of {what} on a batch of {shape[0]} "
                        f"{image[1]}x{image[2]} images", f"{fix} (or the model's size)")


def check_forward_memory(build: Callable[[], nn.Module], batch_shape: tuple[int, ...] | None,
                         device: str | torch.device, what: str, impl: str = "conv",
                         input_grad: bool = False, fix: str = "pass a smaller --img-size") -> None:
    """UserError (one line) when one inference forward of the model ``build()`` makes on a batch
    of ``batch_shape`` (N, C, H, W; None: building the model alone) needs more than the whole
    memory of ``device`` (:func:`forward_bytes`). The model is built on the meta device, the
    caller's random state untouched: nothing is allocated."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        need = forward_bytes(build(), batch_shape, impl, input_grad)
    if batch_shape is None:
        task = f"building {what}"
    else:
        n, _, h, w = batch_shape
        grad = " with the gradient of the input" if input_grad else ""
        task = f"one forward of {what} on a batch of {n} {h}x{w} images{grad}"
    _refuse_past_memory(need, device, task, fix)
