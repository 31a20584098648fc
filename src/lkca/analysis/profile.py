"""Parameters and multiply-accumulates (the paper's "Flops") of one 1-image forward pass."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop

from lkca.errors import InvalidArgumentError
from lkca.layers.lkca import LKCA


@contextlib.contextmanager
def _lkca_as_matmul(model: nn.Module) -> Iterator[None]:
    """Count LKCA as its attention view (heads x N x N matrix times V), as attention is counted.

    The FFT path has no flop formula in torch and the conv path counts the zero-padded border, so
    MACs would depend on the implementation ``auto`` picks; the matmul view is the
    operation's own count (C * N^2 per image and block), like the SDPA count of attention.
    """
    mixers = [m for m in model.modules() if isinstance(m, LKCA)]
    saved = [m.impl for m in mixers]
    for m in mixers:
        m.impl = "toeplitz"
    try:
        yield
    finally:
        for m, impl in zip(mixers, saved):
            m.impl = impl


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    return sdpa_flop(query_shape, key_shape, value_shape)


# torch's counter knows the CUDA attention kernels but not the CPU flash kernel that
# F.scaled_dot_product_attention dispatches to here; without this, attention would count zero.
_EXTRA_FORMULAS = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _EXTRA_FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = (
        _cpu_attention_flops
    )


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def profile(
    model: nn.Module, img_size: int | tuple[int, int], in_chans: int = 3
) -> dict[str, int]:
    """Params and MACs of one image of ``img_size`` (torch's flop counter / 2).

    Returns ``{"params", "macs", "token_mixing_macs"}``; the last is the part of ``macs`` spent
    mixing tokens (attention's QK^T and AV, LKCA's matrix times V), which the paper's counts leave
    out (its ViT 174.25M equals our ViT's ``macs - token_mixing_macs`` to 1%).
    """
    size = _image_size(img_size)
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans <= 0:
        raise InvalidArgumentError(f"profile: in_chans must be a positive int, got {in_chans!r}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(1, in_chans, *size, device=device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS)
    try:
        with torch.no_grad(), _lkca_as_matmul(model), counter:
            model(x)
    finally:
        model.train(was_training)
    by_op = counter.get_flop_counts().get("Global", {})
    mixing = sum(n for op, n in by_op.items() if _is_token_mixing(op))
    return {"params": count_params(model), "macs": counter.get_total_flops() // 2,
            "token_mixing_macs": mixing // 2}


def _image_size(img_size: object) -> tuple[int, int]:
    """(H, W) of an int or a pair of positive ints; anything else an InvalidArgumentError."""
    pair = (img_size, img_size) if not isinstance(img_size, (tuple, list)) else tuple(img_size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                 for s in pair):
        raise InvalidArgumentError(
            f"profile: img_size must be a positive int or a pair (H, W) of them, got {img_size!r}")
    return pair  # type: ignore[return-value]


def _is_token_mixing(op: object) -> bool:
    # Linear layers run as mm/addmm; the token-mixing products are attention kernels and the
    # batched matmul of LKCA's (heads, N, N) matrix with V.
    name = str(op)
    return "attention" in name or name.endswith("bmm") or "bmm." in name


def macs_without_mixing(stats: Mapping[str, int]) -> int:
    """MACs of :func:`profile` without the token-mixing products: what the paper's "Flops" count.

    The paper's figures leave out attention's QK^T / AV and LKCA's kernel application: its ViT
    (SPT's, 174.25M) is our ViT's ``macs - token_mixing_macs`` (173.12M) to 0.7%, while with
    the token mixing ours is 187.7M (+8%). Every comparison with a paper "Flops" figure (``lkca
    profile``, ``lkca tables``, the README's model table) uses this number.
    """
    return int(stats["macs"]) - int(stats["token_mixing_macs"])


def paper_comparison(stats: Mapping[str, int], paper: Mapping[str, Any]) -> dict[str, Any]:
    """Our params and MACs (:func:`profile`'s ``stats``) beside a paper row's "# Params" and
    "Flops" (``paper["params"]``, ``paper["macs"]``; either may be missing).

    Returns ``params``, ``paper_params``, ``params_diff`` (ours / paper - 1), ``macs`` (all),
    ``macs_without_mixing`` (:func:`macs_without_mixing`), ``paper_macs``, ``macs_diff``
    (``macs_without_mixing`` / paper - 1); a missing paper figure gives None for it and its diff.
    """
    params, core = int(stats["params"]), macs_without_mixing(stats)
    paper_params, paper_macs = paper.get("params"), paper.get("macs")
    return {
        "params": params, "paper_params": paper_params,
        "params_diff": None if not paper_params else params / paper_params - 1,
        "macs": int(stats["macs"]), "macs_without_mixing": core, "paper_macs": paper_macs,
        "macs_diff": None if not paper_macs else core / paper_macs - 1,
    }
