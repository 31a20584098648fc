"""Model pieces several comparison families build the same way.

Checks of the head count and of per-stage settings, SPT's ViT settings and patch embedding,
ViT's class token. The stochastic-depth rates (:func:`lkca.layers.drop_path_rates`) and the pre-LN
residual block (:class:`lkca.layers.PreNormBlock`) are the ViT's own, shared from
:mod:`lkca.layers`. (How a family registers its sizes: :mod:`lkca.models.baselines.factory`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lkca.layers import PatchEmbed
from lkca.layers.drop_path import drop_path_rates


@dataclass
class SPTViTConfig:
    """The ViT settings of the recipe the paper follows (SPT) at Tiny-ImageNet, which the ViT-like
    families (DeepViT, RvT) keep and add their own fields to."""

    img_size: int = 64
    patch_size: int | None = None  # None: img_size // 8, an 8x8 grid (SPT)
    in_chans: int = 3
    num_classes: int = 200
    dim: int = 192
    depth: int = 9
    num_heads: int = 12
    mlp_ratio: float = 2.0
    drop_path_rate: float = 0.1


def check_heads(family: str, dim: int, num_heads: int) -> None:
    """Raise ``ValueError`` unless ``dim`` splits into ``num_heads`` equal heads."""
    if dim % num_heads:
        raise ValueError(f"{family}: dim ({dim}) must be a multiple of num_heads ({num_heads})")


def check_stages(family: str, cfg: Any, *fields: str) -> None:
    """Raise ``ValueError`` unless the per-stage tuples ``cfg.<field>`` have one length."""
    values = [getattr(cfg, f) for f in fields]
    if len({len(v) for v in values}) > 1:
        names = ", ".join(fields[:-1]) + " and " + fields[-1]
        raise ValueError(f"{family}: {names} need one value per stage; got "
                         + ", ".join(map(str, values)))


def eighth(img_size: int, given: int | None = None) -> int:
    """``given``, or when None an eighth of the image side, at least 1: the patch (or window) of
    an 8x8 grid, as the recipe the paper follows (SPT) and the authors' create_model size them
    (4 at 32 px, 8 at 64)."""
    return given or max(1, img_size // 8)


def spt_patch_embed(cfg: Any) -> PatchEmbed:
    """Patch embedding to width ``cfg.dim``; patch ``cfg.patch_size`` or, when None, img_size // 8
    (:func:`eighth`). (B, in_chans, H, W) -> (B, N, dim)."""
    return PatchEmbed(cfg.img_size, eighth(cfg.img_size, cfg.patch_size), cfg.in_chans, cfg.dim)


def class_token(dim: int) -> nn.Parameter:
    """A learned class token (1, 1, dim), truncated-normal with std 0.02 as ViT."""
    token = nn.Parameter(torch.zeros(1, 1, dim))
    nn.init.trunc_normal_(token, std=0.02)
    return token


__all__ = ["SPTViTConfig", "check_heads", "check_stages", "class_token", "drop_path_rates",
           "eighth", "spt_patch_embed"]
