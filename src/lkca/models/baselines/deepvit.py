"""DeepViT, "Towards Deeper Vision Transformer" (Zhou et al. 2021, arXiv 2103.11886).

The paper's DeepViT-T / DeepViT-S (Table 5). A ViT whose attention is Re-Attention: the softmax
attention maps of the H heads are mixed by a learned H x H matrix Theta and normalised by
BatchNorm before they weight the values, ``Norm(Theta^T softmax(Q K^T / sqrt(d))) V`` (the
paper's remedy for "attention collapse" in deep ViTs). Everything else is the ViT of the recipe
the paper follows (SPT: patch img_size // 8, class token, MLP ratio 2, heads of 16 channels, no
qkv bias, learnable position embedding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lkca.layers import Mlp, PosEmbed, PreNormBlock
from lkca.layers.weight_init import init_weights
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model


@dataclass
class DeepViTConfig(common.SPTViTConfig):
    """DeepViT hyper-parameters (a ViT with Re-Attention in every block): SPT's ViT settings."""

    qkv_bias: bool = False


class ReAttention(nn.Module):
    """Re-Attention: softmax maps mixed across heads by Theta (H x H), BatchNorm, then times V.

    x (B, N, C) -> (B, N, C). Theta starts as the identity plus noise, so a fresh block is close
    to plain attention.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False) -> None:
        super().__init__()
        common.check_heads("DeepViT", dim, num_heads)
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.theta = nn.Parameter(torch.eye(num_heads) + 0.02 * torch.randn(num_heads, num_heads))
        self.norm = nn.BatchNorm2d(num_heads)  # over the heads of the (B, H, N, N) maps
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, d)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(-1)  # (B, H, N, N)
        attn = torch.einsum("bhij,hg->bgij", attn, self.theta)  # mix the H maps
        attn = self.norm(attn)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class DeepViT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the class token."""

    def __init__(self, cfg: DeepViTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or DeepViTConfig(**kwargs)
        self.cfg = cfg
        self.patch_embed = common.spt_patch_embed(cfg)
        self.pos_embed = PosEmbed(self.patch_embed.grid_size, cfg.dim)
        self.cls_token = common.class_token(cfg.dim)
        (rates,) = common.drop_path_rates(cfg.drop_path_rate, [cfg.depth])
        # pre-LN blocks: x + DropPath(ReAttention(LN(x))), then x + DropPath(MLP(LN(x)))
        self.blocks = nn.ModuleList(
            PreNormBlock(cfg.dim, [("attn", ReAttention(cfg.dim, cfg.num_heads, cfg.qkv_bias))],
                         Mlp(cfg.dim, int(cfg.dim * cfg.mlp_ratio)), r) for r in rates)
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, grid = self.patch_embed(x)  # (B, N, C)
        x = self.pos_embed(x, grid)
        x = torch.cat([self.cls_token.repeat(x.shape[0], 1, 1), x], dim=1)  # (B, 1 + N, C)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


# How the sizes were chosen: the paper gives only "# Params" and "Flops" at Tiny-ImageNet (64x64,
# 200 classes). Both sizes keep SPT's ViT settings above (patch 8 at 64x64, MLP ratio 2, heads of
# 16 channels) and the width of the ViT of their group (ViT-Lite: 128, ViT-Small: 192), with one
# block fewer than it (8 -> 7, 9 -> 8), the depth nearest the paper's count; tests hold it within
# +-5%.


@register_model("deepvit_t_tiny", aliases=("deepvit_t",),
                paper=paper_row("DeepViT-T", 0.99e6, 62.96e6, "Table 5", 64, 200))
def deepvit_t_tiny(**overrides: Any) -> DeepViT:
    """DeepViT-T (paper Table 5: 0.99M params, 62.96M MACs at 64x64, 200 classes).

    Dim 128, depth 7, 8 heads of 16 (ViT-Lite's width, one block fewer): 0.98M params.
    """
    return build(DeepViT, DeepViTConfig(dim=128, depth=7, num_heads=8), overrides)


@register_model("deepvit_s_tiny", aliases=("deepvit_s",),
                paper=paper_row("DeepViT-S", 2.53e6, 162.85e6, "Table 5", 64, 200))
def deepvit_s_tiny(**overrides: Any) -> DeepViT:
    """DeepViT-S (paper Table 5: 2.53M params, 162.85M MACs at 64x64, 200 classes).

    Dim 192, depth 8, 12 heads of 16 (ViT-Small's width, one block fewer): 2.46M params.
    """
    return build(DeepViT, DeepViTConfig(dim=192, depth=8, num_heads=12), overrides)
