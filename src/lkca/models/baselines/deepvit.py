"""DeepViT, "Towards Deeper Vision Transformer" (Zhou et al. 2021, arXiv 2103.11886).

The paper's DeepViT-T / DeepViT-S (Table 5) as the paper's authors build them
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet ``models/deepvit.py``,
vit-pytorch's DeepViT; shapes in ``models/create_model.py``). A ViT whose attention is
Re-Attention: the heads' softmax maps are mixed by a learned heads x heads matrix Theta before
they weight the values, regenerating diverse maps in deep blocks.

As the authors' file, unlike DeepViT's paper: the mixed maps are normalised by a LayerNorm over
the heads axis (the paper: BatchNorm), q/k/v have no bias with ``heads * dim_head`` inner
channels, and vit-pytorch's patch embedding (LayerNorm, Linear, LayerNorm); 4 at 32x32 and 8 at
64x64 (an 8x8 grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lkca.layers.input_checks import check_images
from lkca.models.baselines.common import eighth
from lkca.models.baselines.factory import build, paper_row
from lkca.models.baselines.vit_pytorch_blocks import (
    FeedForward,
    PixelPatchEmbed,
    TransformerBlock,
    merge_heads,
    split_heads,
)
from lkca.models.registry import register_model


@dataclass
class DeepViTConfig:
    """DeepViT hyper-parameters (a ViT of Re-Attention blocks)."""

    img_size: int = 64
    patch_size: int | None = None  # None: img_size // 8 (authors' create_model: 4 at 32, 8 at 64)
    in_chans: int = 3
    num_classes: int = 200
    dim: int = 80
    depth: int = 10
    num_heads: int = 4
    dim_head: int = 64
    mlp_dim: int = 80
    # the authors' create_model passes no stochastic depth to DeepViT (configs set drop_path: 0)
    drop_path_rate: float = 0.0


class ReAttention(nn.Module):
    """Re-Attention: softmax maps (B, h, N, N) mixed across heads by Theta (h, h), normalised
    over the heads axis, then applied to the values. (B, N, dim) -> (B, N, dim)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.theta = nn.Parameter(torch.randn(heads, heads))
        self.map_norm = nn.LayerNorm(heads)
        self.proj = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(self.norm(x)).chunk(3, dim=-1))
        maps = (torch.matmul(q, k.transpose(-1, -2)) * self.scale).softmax(-1)  # (B, h, N, N)
        maps = torch.einsum("bhij,hg->bgij", maps, self.theta)
        maps = self.map_norm(maps.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # norm over heads
        return self.proj(merge_heads(torch.matmul(maps, v)))  # (B, N, dim)


class DeepViT(nn.Module):
    """Images (B, in_chans, img_size, img_size) -> logits (B, num_classes) from the class
    token."""

    def __init__(self, cfg: DeepViTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or DeepViTConfig(**kwargs)
        self.cfg = cfg
        patch = eighth(cfg.img_size, cfg.patch_size)
        self.patch_embed = PixelPatchEmbed(patch, cfg.in_chans, cfg.dim)
        self.num_patches = (cfg.img_size // patch) ** 2
        self.pos_embed = nn.Parameter(torch.randn(1, self.num_patches + 1, cfg.dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(ReAttention(cfg.dim, cfg.num_heads, cfg.dim_head),
                             FeedForward(cfg.dim, cfg.mlp_dim), cfg.drop_path_rate)
            for _ in range(cfg.depth))
        self.head_norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "DeepViT")
        x = self.patch_embed(x)  # (B, N, dim)
        if x.shape[1] != self.num_patches:
            raise ValueError(f"DeepViT built for {self.cfg.img_size}x{self.cfg.img_size} images "
                             f"got {x.shape[1]} patches; build it with img_size=<your size>")
        cls = self.cls_token.repeat(x.shape[0], 1, 1)  # (B, 1, dim)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.head_norm(x[:, 0]))


@register_model("deepvit_t_tiny", aliases=("deepvit_t",),
                paper=paper_row("DeepViT-T", 0.99e6, 62.96e6, "Table 5", 64, 200))
def deepvit_t_tiny(**overrides: Any) -> DeepViT:
    """DeepViT-T (paper Table 5: 0.99M params, 62.96M MACs at 64x64, 200 classes): the authors'
    ``deepvit-t`` (create_model.py:198): dim 80, depth 10, 4 heads of 64, MLP 80."""
    return build(DeepViT, DeepViTConfig(dim=80, depth=10, num_heads=4, dim_head=64, mlp_dim=80),
                 overrides)


@register_model("deepvit_s_tiny", aliases=("deepvit_s",),
                paper=paper_row("DeepViT-S", 2.53e6, 162.85e6, "Table 5", 64, 200))
def deepvit_s_tiny(**overrides: Any) -> DeepViT:
    """DeepViT-S (paper Table 5: 2.53M params, 162.85M MACs at 64x64, 200 classes): the authors'
    ``deepvit-s`` (create_model.py:213): dim 136, depth 14, 4 heads of 64, MLP 136."""
    return build(DeepViT, DeepViTConfig(dim=136, depth=14, num_heads=4, dim_head=64,
                                        mlp_dim=136), overrides)
