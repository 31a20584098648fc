"""T2T-ViT, "Tokens-to-Token ViT" (Yuan et al. 2021, arXiv 2101.11986).

The paper's T2T-T / T2T-S / T2T-B (Table 5). Instead of cutting the image into patches once, the
Tokens-to-Token module repeats *soft split* (overlapping 3x3 neighbourhoods unfolded into one
token, stride 2) and *re-structurization* (a small one-head transformer over those tokens, then
reshaped back into a map), so each final token models its local structure; a linear projection
gives the backbone's tokens, which a ViT (class token, fixed sinusoidal positions) classifies.
Small-input settings of the recipe the paper follows (SPT's t2t.py): 3x3 / stride 2 soft splits
until an 8x8 grid (two at 32x32, three at 64x64), token dim 64, MLP ratio 2, heads of 64
channels, no qkv bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import Mlp
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model
from lkca.models.vit import Block, ViTConfig, init_weights


@dataclass
class T2TConfig:
    """T2T-ViT hyper-parameters: the T2T module, then ``depth`` ViT blocks of width ``dim``."""

    img_size: int = 64
    in_chans: int = 3
    num_classes: int = 200
    token_dim: int = 64  # width of the re-structurization transformers
    dim: int = 256
    depth: int = 12
    num_heads: int = 4
    mlp_ratio: float = 2.0
    qkv_bias: bool = False
    drop_path_rate: float = 0.1


def num_soft_splits(img_size: int) -> int:
    """Stride-2 soft splits that bring ``img_size`` to an 8x8 grid (SPT: 2 at 32, 3 at 64), >= 1."""
    return max(1, round(math.log2(max(img_size, 1) / 8)))


def sinusoid_table(n: int, dim: int) -> torch.Tensor:
    """T2T's fixed 1-D sinusoidal position table (1, n, dim): sin on even, cos on odd channels."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    rate = 10000.0 ** (-2 * (torch.arange(dim) // 2) / dim).double()
    angle = pos * rate  # (n, dim)
    table = torch.where(torch.arange(dim) % 2 == 0, angle.sin(), angle.cos())
    return table.float()[None]


class TokenTransformer(nn.Module):
    """Re-structurization: one-head attention ``in_dim -> token_dim``, MLP ratio 1.

    (B, N, in_dim) -> (B, N, token_dim). As T2T, the attention's residual goes through V (the
    input has another width).
    """

    def __init__(self, in_dim: int, token_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(in_dim)
        self.qkv = nn.Linear(in_dim, 3 * token_dim, bias=False)
        self.proj = nn.Linear(token_dim, token_dim)
        self.norm2 = nn.LayerNorm(token_dim)
        self.mlp = Mlp(token_dim, token_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm1(x)).unsqueeze(1).chunk(3, dim=-1)  # each (B, 1, N, token_dim)
        x = (v + self.proj(F.scaled_dot_product_attention(q, k, v))).squeeze(1)  # (B, N, token_dim)
        return x + self.mlp(self.norm2(x))


class T2TModule(nn.Module):
    """Image (B, C, H, W) -> tokens (B, N, dim) and their grid, by soft split + re-structurization."""

    def __init__(self, img_size: int, in_chans: int, token_dim: int, dim: int) -> None:
        super().__init__()
        splits = num_soft_splits(img_size)
        self.soft_split = nn.Unfold(kernel_size=3, stride=2, padding=1)
        channels = [in_chans] + [token_dim] * (splits - 1)
        self.restructure = nn.ModuleList(TokenTransformer(9 * c, token_dim) for c in channels[:-1])
        self.project = nn.Linear(9 * channels[-1], dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        for transformer in self.restructure:
            h, w = (x.shape[-2] + 1) // 2, (x.shape[-1] + 1) // 2  # 3x3, stride 2, padding 1
            x = transformer(self.soft_split(x).transpose(1, 2))  # (B, h*w, token_dim)
            x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)  # back to a map
        grid = ((x.shape[-2] + 1) // 2, (x.shape[-1] + 1) // 2)
        return self.project(self.soft_split(x).transpose(1, 2)), grid  # (B, N, dim)


class T2TViT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the class token."""

    pos_embed: torch.Tensor  # (1, 1 + N, dim) buffer

    def __init__(self, cfg: T2TConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or T2TConfig(**kwargs)
        self.cfg = cfg
        self.tokens_to_token = T2TModule(cfg.img_size, cfg.in_chans, cfg.token_dim, cfg.dim)
        self.cls_token = common.class_token(cfg.dim)
        side = cfg.img_size // 2 ** num_soft_splits(cfg.img_size)
        # fixed, as T2T: a buffer (not a parameter), rebuilt for another token count
        self.register_buffer("pos_embed", sinusoid_table(side * side + 1, cfg.dim),
                             persistent=False)
        block_cfg = ViTConfig(dim=cfg.dim, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
                              qkv_bias=cfg.qkv_bias)
        (rates,) = common.drop_path_rates(cfg.drop_path_rate, [cfg.depth])
        self.blocks = nn.ModuleList(Block(block_cfg, "A", (side, side), r) for r in rates)
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, grid = self.tokens_to_token(x)  # (B, N, dim)
        x = torch.cat([self.cls_token.repeat(x.shape[0], 1, 1), x], dim=1)  # (B, 1 + N, dim)
        pos = self.pos_embed
        if pos.shape[1] != x.shape[1]:
            pos = sinusoid_table(x.shape[1], x.shape[2]).to(x.device)
        x = x + pos.to(x.dtype)
        for block in self.blocks:
            x = block(x, grid)
        return self.head(self.norm(x)[:, 0])


# How the sizes were chosen: the paper gives only "# Params" and "Flops" at Tiny-ImageNet (64x64,
# 200 classes). SPT's T2T (dim 256, depth 12, 4 heads: T2T-ViT-12's backbone) has 6.7M
# parameters there. Every size keeps SPT's T2T module, MLP ratio 2 and heads of 64 channels and
# takes the (dim, depth) nearest the paper's count among widths in steps of 64 (one more head of
# 64 per step; T2T-B lands on T2T-ViT-14's width 384); tests hold it within +-5%.


@register_model("t2t_t_tiny", aliases=("t2t_t",),
                paper=paper_row("T2T-T", 1.07e6, 78.23e6, "Table 5", 64, 200))
def t2t_t_tiny(**overrides: Any) -> T2TViT:
    """T2T-T (paper Table 5: 1.07M params, 78.23M MACs at 64x64, 200 classes).

    Dim 128, depth 6, 2 heads: 1.04M params.
    """
    return build(T2TViT, T2TConfig(dim=128, depth=6, num_heads=2), overrides)


@register_model("t2t_s_tiny", aliases=("t2t_s",),
                paper=paper_row("T2T-S", 2.56e6, 52.96e6, "Table 5", 64, 200))
def t2t_s_tiny(**overrides: Any) -> T2TViT:
    """T2T-S (paper Table 5: 2.56M params, 52.96M MACs at 64x64, 200 classes).

    Dim 192, depth 8, 3 heads: 2.66M params.
    """
    return build(T2TViT, T2TConfig(dim=192, depth=8, num_heads=3), overrides)


@register_model("t2t_b_tiny", aliases=("t2t_b",),
                paper=paper_row("T2T-B", 13.45e6, 853.02e6, "Table 5", 64, 200))
def t2t_b_tiny(**overrides: Any) -> T2TViT:
    """T2T-B (paper Table 5: 13.45M params, 853.02M MACs at 64x64, 200 classes).

    Dim 384, depth 11, 6 heads (T2T-ViT-14's width): 13.45M params.
    """
    return build(T2TViT, T2TConfig(dim=384, depth=11, num_heads=6), overrides)
