"""Model pieces several comparison families build the same way.

Checks of the head count and of per-stage settings, SPT's ViT settings and patch embedding,
ViT's class token, the linearly rising stochastic-depth rates, and the pre-LN residual block
around a family's own attention and feed-forward. (How a family registers its sizes:
:mod:`lkca.models.baselines.factory`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lkca.layers import DropPath, PatchEmbed


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


def spt_patch_embed(cfg: Any) -> PatchEmbed:
    """Patch embedding to width ``cfg.dim``; patch ``cfg.patch_size`` or, when None, img_size // 8
    (an 8x8 grid, as the recipe the paper follows, SPT). (B, in_chans, H, W) -> (B, N, dim)."""
    patch = cfg.patch_size or max(1, cfg.img_size // 8)
    return PatchEmbed(cfg.img_size, patch, cfg.in_chans, cfg.dim)


def class_token(dim: int) -> nn.Parameter:
    """A learned class token (1, 1, dim), truncated-normal with std 0.02 as ViT."""
    token = nn.Parameter(torch.zeros(1, 1, dim))
    nn.init.trunc_normal_(token, std=0.02)
    return token


def drop_path_rates(rate: float, depths: Sequence[int]) -> list[list[float]]:
    """Stochastic-depth rates rising linearly from 0 to ``rate`` over all blocks, per stage."""
    rates = torch.linspace(0, rate, sum(depths)).tolist()
    starts = [sum(depths[:i]) for i in range(len(depths))]
    return [rates[s:s + d] for s, d in zip(starts, depths)]


class PreNormBlock(nn.Module):
    """Pre-LN block: x + DropPath(attn(LN(x), *args)), then x + DropPath(mlp(LN(x))).

    ``attn`` and ``mlp`` map (B, N, dim) -> (B, N, dim); ``forward(x, *args)`` passes ``args``
    (a grid, a rotation table, ...) to ``attn``.
    """

    def __init__(self, dim: int, attn: nn.Module, mlp: nn.Module, drop_path: float) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), attn
        self.norm2, self.mlp = nn.LayerNorm(dim), mlp
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), *args))
        return x + self.drop_path(self.mlp(self.norm2(x)))
