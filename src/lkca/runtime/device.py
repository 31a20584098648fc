"""The training device and its precision."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

import torch

from lkca.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when visible, else CPU; ``"cuda"`` -> this process's GPU (LOCAL_RANK
    under torchrun). UserError when CUDA is asked for but not visible."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


# The precision of a run's forward passes (config key ``precision``, docs/recipe.md): fp32 (the
# authors' runs, on an RTX 2080 Ti), bf16 or fp16 autocast; fp16 also scales the loss
# (Session.backward_and_step).
PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def mixed_precision(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (nothing for fp32), on CPU and CUDA
    alike. Reusable across ``with`` blocks."""
    if precision not in PRECISIONS:
        raise UserError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=_AUTOCAST[precision])
