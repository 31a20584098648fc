"""RegionViT, "Regional-to-Local Attention for Vision Transformers" (Chen, Panda, Fan 2021, arXiv
2106.02689).

The paper's RegionViT-T / -S / -B (Table 5). Two token streams: local tokens from small patches
and one regional token per ``window`` x ``window`` block of them (from a patch ``window`` times
larger). Each regional-to-local (R2L) block runs regional self-attention (RSA: the regional
tokens attend to each other), then local self-attention (LSA: each regional token with its
window's local tokens, a relative position bias between the local ones) with the *same*
attention weights, then one MLP for all tokens; every branch is pre-LN with DropPath. Stages are
joined by a 3x3 / stride-2 conv (shared by both streams) that halves the maps and widens the
channels. The last stage's regional tokens are LayerNorm-ed and mean-pooled. Small-input
settings as the recipe the paper follows uses for Swin (SPT): local patch img_size // 16 (4 at
64x64), window 4, three stages (local grids 16, 8, 4; regional 4, 2, 1), MLP ratio 4 and heads
(2, 4, 8) as RegionViT-Ti's first three stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import DropPath, Mlp
from lkca.layers.weight_init import init_weights
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model


@dataclass
class RegionViTConfig:
    """RegionViT hyper-parameters, one value per stage where a tuple."""

    img_size: int = 64
    patch_size: int | None = None  # local tokens; None: img_size // 16 (>= 1)
    window_size: int = 4  # local tokens per regional token, per side
    in_chans: int = 3
    num_classes: int = 200
    dims: tuple[int, ...] = (40, 80, 160)
    depths: tuple[int, ...] = (2, 2, 8)
    num_heads: tuple[int, ...] = (2, 4, 8)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.1


class BiasedAttention(nn.Module):
    """Multi-head self-attention with an optional additive bias (heads, n, n). (B, n, C) -> same."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        common.check_heads("RegionViT", dim, num_heads)
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, d)
        mask = None if bias is None else bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class R2LBlock(nn.Module):
    """RSA over regional tokens, LSA over each region + its local window, then the MLP.

    ``forward(local, region)``: local (B, H, W, C), region (B, h, w, C) with H = h * wh and
    W = w * ww (windows wh x ww no larger than ``window``) -> both updated, same shapes.
    """

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float, qkv_bias: bool,
                 drop_path: float) -> None:
        super().__init__()
        self.window = window
        self.norm0 = nn.LayerNorm(dim)  # before RSA
        self.norm1 = nn.LayerNorm(dim)  # before LSA
        self.attn = BiasedAttention(dim, num_heads, qkv_bias)  # shared by RSA and LSA
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.relative_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_bias, std=0.02)

    def local_bias(self, wh: int, ww: int) -> torch.Tensor:
        """(heads, 1 + wh*ww, 1 + wh*ww): learned bias by relative offset between local tokens,
        zero on the regional token's row and column."""
        dev = self.relative_bias.device
        ys, xs = torch.meshgrid(torch.arange(wh, device=dev), torch.arange(ww, device=dev),
                                indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        span = 2 * self.window - 1
        index = (ys[:, None] - ys[None] + self.window - 1) * span + (xs[:, None] - xs[None]
                                                                      + self.window - 1)
        bias = self.relative_bias[index].permute(2, 0, 1)  # (heads, n, n)
        return F.pad(bias, (1, 0, 1, 0))

    def forward(self, local: torch.Tensor, region: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        (B, H, W, C), (h, w) = local.shape, region.shape[1:3]
        wh, ww = H // h, W // w
        r = region.reshape(B, h * w, C)
        r = r + self.drop_path(self.attn(self.norm0(r)))  # RSA
        windows = local.view(B, h, wh, w, ww, C).transpose(2, 3).reshape(B * h * w, wh * ww, C)
        x = torch.cat([r.reshape(B * h * w, 1, C), windows], dim=1)  # (B*h*w, 1 + wh*ww, C)
        x = x + self.drop_path(self.attn(self.norm1(x), self.local_bias(wh, ww)))  # LSA
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        region = x[:, 0].reshape(B, h, w, C)
        local = x[:, 1:].reshape(B, h, w, wh, ww, C).transpose(2, 3).reshape(B, H, W, C)
        return local, region


class RegionViT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the mean regional token."""

    def __init__(self, cfg: RegionViTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or RegionViTConfig(**kwargs)
        common.check_stages("RegionViT", cfg, "dims", "depths", "num_heads")
        self.cfg = cfg
        p = cfg.patch_size or max(1, cfg.img_size // 16)
        self.region_patch = p * cfg.window_size
        self.local_embed = nn.Conv2d(cfg.in_chans, cfg.dims[0], p, stride=p)
        self.region_embed = nn.Conv2d(cfg.in_chans, cfg.dims[0], self.region_patch,
                                      stride=self.region_patch)
        self.downsamples = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(cfg.dims[:-1], cfg.dims[1:]))
        self.stages = nn.ModuleList()
        for i, rates in enumerate(common.drop_path_rates(cfg.drop_path_rate, cfg.depths)):
            self.stages.append(nn.ModuleList(
                R2LBlock(cfg.dims[i], cfg.num_heads[i], cfg.window_size, cfg.mlp_ratio,
                         cfg.qkv_bias, r) for r in rates))
        self.norm = nn.LayerNorm(cfg.dims[-1])
        self.head = nn.Linear(cfg.dims[-1], cfg.num_classes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        if H % self.region_patch or W % self.region_patch:
            raise ValueError(f"RegionViT: image {H}x{W} is not a multiple of the regional patch "
                             f"{self.region_patch}; resize or crop the images")
        local, region = self.local_embed(x), self.region_embed(x)  # (B, C, H/p, W/p), (B, C, h, w)
        for i, stage in enumerate(self.stages):
            if i:
                local, region = self.downsamples[i - 1](local), self.downsamples[i - 1](region)
            lh, rh = local.shape[-2:], region.shape[-2:]
            if lh[0] % rh[0] or lh[1] % rh[1] or lh[0] // rh[0] > self.cfg.window_size:
                raise ValueError(f"RegionViT: stage {i} has a {lh} local grid for {rh} regions; "
                                 "use an image size that is a power-of-2 multiple of "
                                 f"{self.region_patch}")
            local, region = local.permute(0, 2, 3, 1), region.permute(0, 2, 3, 1)  # channels last
            assert isinstance(stage, nn.ModuleList)  # of R2LBlock
            for block in stage:
                local, region = block(local, region)
            local, region = local.permute(0, 3, 1, 2), region.permute(0, 3, 1, 2)
        return self.head(self.norm(region.flatten(2).transpose(1, 2)).mean(1))


# How the sizes were chosen: the paper gives only "# Params" and "Flops" at Tiny-ImageNet (64x64,
# 200 classes), and neither it nor the recipe it follows gives RegionViT settings. Every size
# keeps the small-input layout above, widths (C, 2C, 4C) and two blocks in the first two stages
# (as RegionViT-Ti), and takes the (C, last-stage depth) nearest the paper's count among C in
# steps of 8; tests hold it within +-5%.


def _sized(c: int, depth: int) -> RegionViTConfig:
    return RegionViTConfig(dims=(c, 2 * c, 4 * c), depths=(2, 2, depth))


@register_model("regionvit_t_tiny", aliases=("regionvit_t",),
                paper=paper_row("RegionViT-T", 0.97e6, 29.38e6, "Table 5", 64, 200))
def regionvit_t_tiny(**overrides: Any) -> RegionViT:
    """RegionViT-T (paper Table 5: 0.97M params, 29.38M MACs at 64x64, 200 classes).

    Widths (24, 48, 96), depths (2, 2, 7), heads of 12: 0.95M params.
    """
    return build(RegionViT, _sized(24, 7), overrides)


@register_model("regionvit_s_tiny", aliases=("regionvit_s",),
                paper=paper_row("RegionViT-S", 2.86e6, 53.82e6, "Table 5", 64, 200))
def regionvit_s_tiny(**overrides: Any) -> RegionViT:
    """RegionViT-S (paper Table 5: 2.86M params, 53.82M MACs at 64x64, 200 classes).

    Widths (40, 80, 160), depths (2, 2, 8), heads of 20: 2.89M params.
    """
    return build(RegionViT, _sized(40, 8), overrides)


@register_model("regionvit_b_tiny", aliases=("regionvit_b",),
                paper=paper_row("RegionViT-B", 12.39e6, 195.02e6, "Table 5", 64, 200))
def regionvit_b_tiny(**overrides: Any) -> RegionViT:
    """RegionViT-B (paper Table 5: 12.39M params, 195.02M MACs at 64x64, 200 classes).

    Widths (112, 224, 448), depths (2, 2, 4), heads of 56: 12.49M params.
    """
    return build(RegionViT, _sized(112, 4), overrides)
