"""RvT, the Rotary Vision Transformer: a ViT with RoFormer's rotary position embedding.

The paper's RvT-T / RvT-S (Table 5; its reference is RoFormer, Su et al., arXiv 2104.09864).
No position table is added to the tokens; instead each attention rotates the queries and keys
of the patch tokens by angles proportional to their position (RoFormer's theta_i =
base^(-2i/d)), so q . k depends on the relative offset only. On images the rotation is axial:
half of each head's channel pairs turn with the token's row, half with its column. The class
token is not rotated. The feed-forward is gated (GEGLU: ``W2 (GELU(x W_g) * x W_1)``), as in the
Rotary Vision Transformer the paper's row names. Otherwise the ViT of the recipe the paper
follows (SPT: patch img_size // 8, class token, heads of 16 channels, hidden ratio 2, no qkv
bias).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import PreNormBlock
from lkca.layers.weight_init import init_weights
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model


@dataclass
class RvTConfig(common.SPTViTConfig):
    """RvT hyper-parameters: SPT's ViT settings (``mlp_ratio``: GEGLU hidden width / dim)."""

    rope_base: float = 10000.0  # RoFormer's base of the rotation frequencies


def axial_rotary_angles(grid: tuple[int, int], head_dim: int, base: float,
                        device: torch.device | None = None) -> torch.Tensor:
    """Rotation angles (H*W, head_dim // 2), one per channel pair of each token.

    The first half of the pairs turn with the row index, the second half with the column index,
    each at RoFormer's frequencies ``base ** (-i / n)``, i < n = head_dim // 4.
    """
    if head_dim % 4:
        raise ValueError(f"RvT: the head width ({head_dim}) must be a multiple of 4 (two axes x "
                         "channel pairs); change dim or num_heads")
    n = head_dim // 4
    freqs = base ** (-torch.arange(n, device=device, dtype=torch.float32) / n)  # (n,)
    rows, cols = torch.meshgrid(torch.arange(grid[0], device=device),
                                torch.arange(grid[1], device=device), indexing="ij")
    return torch.cat([rows.reshape(-1, 1) * freqs, cols.reshape(-1, 1) * freqs], dim=-1)


def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Turn each channel pair (x[2i], x[2i+1]) of x (..., N, d) by angles (N, d // 2)."""
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # each (..., N, d/2)
    cos, sin = angles.cos(), angles.sin()
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2).to(x.dtype)


class RotaryAttention(nn.Module):
    """Multi-head self-attention with rotary queries/keys for the patch tokens.

    ``forward(x, angles)``: x (B, 1 + N, C) with the class token first, angles (N, head_dim/2).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        common.check_heads("RvT", dim, num_heads)
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, 1 + N, d)
        q = torch.cat([q[:, :, :1], rotate(q[:, :, 1:], angles)], dim=2)
        k = torch.cat([k[:, :, :1], rotate(k[:, :, 1:], angles)], dim=2)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, 1 + N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class GEGLU(nn.Module):
    """Gated feed-forward: (..., dim) -> (..., dim) through a GELU-gated hidden layer."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 2 * hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.gelu(gate) * x)


class RvT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the class token."""

    def __init__(self, cfg: RvTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or RvTConfig(**kwargs)
        self.cfg = cfg
        self.head_dim = cfg.dim // cfg.num_heads
        axial_rotary_angles((1, 1), self.head_dim, cfg.rope_base)  # validates the head width
        self.patch_embed = common.spt_patch_embed(cfg)
        self.cls_token = common.class_token(cfg.dim)
        (rates,) = common.drop_path_rates(cfg.drop_path_rate, [cfg.depth])
        # pre-LN blocks: rotary attention, then the gated feed-forward, each with DropPath
        self.blocks = nn.ModuleList(
            PreNormBlock(cfg.dim, [("attn", RotaryAttention(cfg.dim, cfg.num_heads))],
                         GEGLU(cfg.dim, int(cfg.dim * cfg.mlp_ratio)), r) for r in rates)
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, grid = self.patch_embed(x)  # (B, N, C); no position table
        angles = axial_rotary_angles(grid, self.head_dim, self.cfg.rope_base, x.device)
        x = torch.cat([self.cls_token.repeat(x.shape[0], 1, 1), x], dim=1)  # (B, 1 + N, C)
        for block in self.blocks:
            x = block(x, angles)
        return self.head(self.norm(x)[:, 0])


# How the sizes were chosen: the paper gives only "# Params" and "Flops" at Tiny-ImageNet (64x64,
# 200 classes). Both sizes keep SPT's ViT settings above (patch 8 at 64x64, hidden ratio 2,
# heads of 16 channels) and the width of the ViT of their group (ViT-Lite: 128, ViT-Small: 192)
# with the depth nearest the paper's count (a GEGLU block has 10 dim^2 weights, a ViT block 8,
# so both have fewer blocks than that ViT); tests hold it within +-5%.


@register_model("rvt_t_tiny", aliases=("rvt_t",),
                paper=paper_row("RvT-T", 1.07e6, 57.59e6, "Table 5", 64, 200))
def rvt_t_tiny(**overrides: Any) -> RvT:
    """RvT-T (paper Table 5: 1.07M params, 57.59M MACs at 64x64, 200 classes).

    Dim 128, depth 6, 8 heads of 16: 1.04M params.
    """
    return build(RvT, RvTConfig(dim=128, depth=6, num_heads=8), overrides)


@register_model("rvt_s_tiny", aliases=("rvt_s",),
                paper=paper_row("RvT-S", 2.70e6, 145.07e6, "Table 5", 64, 200))
def rvt_s_tiny(**overrides: Any) -> RvT:
    """RvT-S (paper Table 5: 2.70M params, 145.07M MACs at 64x64, 200 classes).

    Dim 192, depth 7, 12 heads of 16: 2.67M params.
    """
    return build(RvT, RvTConfig(dim=192, depth=7, num_heads=12), overrides)
