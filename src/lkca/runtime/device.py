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


def mixed_precision(device: torch.device) -> AbstractContextManager:
    """bf16 autocast on CUDA; nothing (fp32) elsewhere. Reusable across ``with`` blocks."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()
