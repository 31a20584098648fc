"""CvT, "Introducing Convolutions to Vision Transformers" (Wu et al. 2021, arXiv 2103.15808).

The paper's CvT-B (Table 5). Three stages; each starts with a convolutional token embedding (an
overlapping strided conv, then LayerNorm) that shrinks the map and widens the channels, and its
blocks use convolutional projection: queries, keys and values are each a depthwise 3x3 conv +
BatchNorm of the token map (stride 2 for keys and values, which quarters the attention cost)
followed by a linear map. There is no position embedding; a class token joins in the last stage
only (it skips the convolutions) and is classified after a final LayerNorm. As CvT-13: widths
(C, 3C, 6C) with heads of C channels ((1, 3, 6) at C = 64), MLP ratio 4, embeddings 7x7 / 4,
3x3 / 2, 3x3 / 2 at 64x64 (a 16x16, 8x8, 4x4 pyramid; the first stride is img_size // 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import Mlp, PreNormBlock
from lkca.layers.weight_init import init_weights
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model


@dataclass
class CvTConfig:
    """CvT hyper-parameters, one value per stage where a tuple."""

    img_size: int = 64
    patch_stride: int | None = None  # first embedding; None: img_size // 16 (>= 1), kernel 2s - 1
    in_chans: int = 3
    num_classes: int = 200
    dims: tuple[int, ...] = (60, 180, 360)
    depths: tuple[int, ...] = (1, 2, 3)
    num_heads: tuple[int, ...] = (1, 3, 6)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    kv_stride: int = 2
    drop_path_rate: float = 0.1


class ConvProjection(nn.Module):
    """Depthwise 3x3 conv (given stride) + BatchNorm on the map, then a linear map of the tokens:
    (B, C, H, W) -> (B, N', C)."""

    def __init__(self, dim: int, stride: int, bias: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, stride=stride, padding=1, groups=dim, bias=False)
        self.bn = nn.BatchNorm2d(dim)
        self.linear = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.bn(self.conv(x)).flatten(2).transpose(1, 2))


class ConvAttention(nn.Module):
    """Attention with convolutional q/k/v projections.

    ``forward(x, grid, has_cls)``: x (B, [1 +] H*W, C) -> same shape; the class token (first, if
    ``has_cls``) is projected by the linear maps only.
    """

    def __init__(self, dim: int, num_heads: int, kv_stride: int, qkv_bias: bool) -> None:
        super().__init__()
        common.check_heads("CvT", dim, num_heads)
        self.num_heads = num_heads
        self.q = ConvProjection(dim, 1, qkv_bias)
        self.k = ConvProjection(dim, kv_stride, qkv_bias)
        self.v = ConvProjection(dim, kv_stride, qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, grid: tuple[int, int], has_cls: bool) -> torch.Tensor:
        B, N, C = x.shape
        cls, tokens = (x[:, :1], x[:, 1:]) if has_cls else (None, x)
        fmap = tokens.transpose(1, 2).reshape(B, C, *grid)
        q, k, v = self.q(fmap), self.k(fmap), self.v(fmap)  # (B, N or N', C)
        if cls is not None:
            q, k, v = (torch.cat([lin(cls), t], dim=1)
                       for lin, t in ((self.q.linear, q), (self.k.linear, k), (self.v.linear, v)))
        d = C // self.num_heads
        q, k, v = (t.reshape(B, -1, self.num_heads, d).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class CvTStage(nn.Module):
    """Convolutional token embedding (conv + LN), then blocks; the last stage adds a class token.

    ``forward(x)``: map (B, C_in, H, W) -> (map (B, C, H', W'), class token (B, C) or None).
    """

    def __init__(self, cfg: CvTConfig, i: int, in_dim: int, stride: int, rates: list[float],
                 with_cls: bool) -> None:
        super().__init__()
        dim, kernel = cfg.dims[i], max(3, 2 * stride - 1)
        self.embed = nn.Conv2d(in_dim, dim, kernel, stride=stride, padding=kernel // 2)
        self.embed_norm = nn.LayerNorm(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim).normal_(std=0.02)) if with_cls else None
        # pre-LN blocks: x + DropPath(ConvAttention(LN(x))), then x + DropPath(MLP(LN(x)))
        self.blocks = nn.ModuleList(
            PreNormBlock(
                dim, [("attn", ConvAttention(dim, cfg.num_heads[i], cfg.kv_stride, cfg.qkv_bias))],
                Mlp(dim, int(dim * cfg.mlp_ratio)), r) for r in rates)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.embed(x)
        B, C, H, W = x.shape
        x = self.embed_norm(x.flatten(2).transpose(1, 2))  # (B, N, C)
        has_cls = self.cls_token is not None
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.repeat(B, 1, 1), x], dim=1)
        for block in self.blocks:
            x = block(x, (H, W), has_cls)
        cls = x[:, 0] if has_cls else None
        tokens = x[:, 1:] if has_cls else x
        return tokens.transpose(1, 2).reshape(B, C, H, W), cls


class CvT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the last stage's class token."""

    def __init__(self, cfg: CvTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or CvTConfig(**kwargs)
        common.check_stages("CvT", cfg, "dims", "depths", "num_heads")
        n = len(cfg.dims)
        self.cfg = cfg
        stride = cfg.patch_stride or max(1, cfg.img_size // 16)
        self.stages = nn.ModuleList()
        in_dim = cfg.in_chans
        for i, rates in enumerate(common.drop_path_rates(cfg.drop_path_rate, cfg.depths)):
            self.stages.append(CvTStage(cfg, i, in_dim, stride if i == 0 else 2, rates,
                                        i == n - 1))
            in_dim = cfg.dims[i]
        self.norm = nn.LayerNorm(cfg.dims[-1])
        self.head = nn.Linear(cfg.dims[-1], cfg.num_classes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = None
        for stage in self.stages:
            x, cls = stage(x)
        return self.head(self.norm(cls))


# How the sizes were chosen: the paper gives only "# Params" and "Flops" at Tiny-ImageNet (64x64,
# 200 classes), and neither it nor the recipe it follows gives CvT settings. CvT-B keeps CvT-13's
# heads (1, 3, 6), its width ratio (C, 3C, 6C) and first two stages' depths (1, 2); CvT-13's own
# width (C = 64) is 11% over the paper's count with 3 last-stage blocks and 17% under with 2.
# Among C in steps of 4 and last-stage depths up to CvT-13's 10, two pairs are within 2.5%:
# (40, 8) and (60, 3); we take (60, 3), the one nearer CvT-13's width. Tests hold +-5%.


@register_model("cvt_b_tiny", aliases=("cvt_b",),
                paper=paper_row("CvT-B", 6.48e6, 25.63e6, "Table 5", 64, 200))
def cvt_b_tiny(**overrides: Any) -> CvT:
    """CvT-B (paper Table 5: 6.48M params, 25.63M MACs at 64x64, 200 classes).

    Widths (60, 180, 360), heads (1, 3, 6) of 60 channels, depths (1, 2, 3): 6.32M params.
    """
    return build(CvT, CvTConfig(), overrides)
