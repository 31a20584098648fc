"""How many runs share one GPU by default (``--runs-per-gpu``).

A ViT of 0.5-13M parameters on 32x32 or 64x64 images leaves most of a modern GPU idle, so the
local launcher packs several runs per GPU. The default is the number whose estimated memory
fits in ``MEMORY_SHARE`` of the GPU, at most ``MAX_RUNS_PER_GPU``:

    memory of a run = CONTEXT_BYTES (CUDA context and allocator slack, assumed)
                    + the data set held on the GPU (uint8, train + test; classification only)
                    + 16 bytes per parameter (fp32 weights, gradients, AdamW's two moments)
                    + activations saved for backward per image x the batch

The activations are measured, not guessed: the tensors autograd saves in one forward of the model
on the CPU in fp32 (batch 1 and batch 2; the difference is one image's). A tensor saved by two
operations counts twice and bf16 autocast on a GPU halves most of them, so the figure is an
upper bound. The cap of 4 is a projection: packing pays while a GPU still has idle
compute, and where that stops has not been measured on a GPU yet (benchmarks/run_packing.py
measures it; docs/reproduce.md).
"""

from __future__ import annotations

from typing import Any

from lkca.reproduce.cost import TEST_IMAGES, TRAIN_IMAGES
from lkca.reproduce.plan import PlannedRun
from lkca.reproduce.run_model import build_run_model

CONTEXT_BYTES = 1 << 30
MEMORY_SHARE = 0.8
MAX_RUNS_PER_GPU = 4
ADAMW_BYTES_PER_PARAM = 16


def saved_activation_bytes(model: Any, shape: tuple[int, ...], batch: int = 1,
                           forward: Any = None) -> int:
    """Bytes of the tensors autograd saves for backward in one training-mode forward of
    ``model`` on a zero batch of ``batch`` x ``shape`` (CPU, fp32). ``forward(model, x)``
    replaces ``model(x)`` (e.g. a segmentor's ``forward_train``)."""
    import torch

    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    x = torch.zeros(batch, *shape)
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward(model, x) if forward else model(x)
    return total


def activation_bytes_per_image(model: Any, shape: tuple[int, ...], forward: Any = None) -> int:
    """What one more image adds to the saved activations (batch 2 minus batch 1: the weights
    that autograd also saves count once and cancel)."""
    return (saved_activation_bytes(model, shape, 2, forward)
            - saved_activation_bytes(model, shape, 1, forward))


def run_memory_bytes(run: PlannedRun) -> int:
    """The estimated GPU memory of ``run`` (module docstring)."""
    cfg = run.resolved
    built = build_run_model(run.task, cfg)
    data = 0  # segmentation images are decoded per batch, not held on the GPU
    if run.task == "cls":
        from lkca.data import dataset_info

        name, (c, h, w) = dataset_info(cfg["dataset"]).name, built.shape
        data = (TRAIN_IMAGES[name] + TEST_IMAGES[name]) * c * h * w
    per_image = activation_bytes_per_image(built.model, built.shape, built.forward)
    params = sum(p.numel() for p in built.model.parameters())
    return CONTEXT_BYTES + data + ADAMW_BYTES_PER_PARAM * params + per_image * int(cfg["batch_size"])


def runs_per_gpu(memory_per_run: int, gpu_memory: int) -> int:
    """``floor(MEMORY_SHARE x gpu_memory / memory_per_run)``, between 1 and ``MAX_RUNS_PER_GPU``."""
    return max(1, min(MAX_RUNS_PER_GPU, int(MEMORY_SHARE * gpu_memory // max(memory_per_run, 1))))


def default_runs_per_gpu(runs: list[PlannedRun], gpu_memory: int) -> tuple[int, int]:
    """(runs per GPU, the largest estimated run memory) for a plan: the rule applied to its
    largest run, so any mix of its runs fits."""
    sizes: dict[Any, int] = {}
    for run in runs:
        key = run.config
        if key not in sizes:
            sizes[key] = run_memory_bytes(run)
    largest = max(sizes.values(), default=CONTEXT_BYTES)
    return runs_per_gpu(largest, gpu_memory), largest


def gpu_memory_bytes() -> int:
    """Total memory of the smallest visible GPU (0 without one)."""
    import torch

    if not torch.cuda.is_available():
        return 0
    return min(torch.cuda.get_device_properties(i).total_memory
               for i in range(torch.cuda.device_count()))
