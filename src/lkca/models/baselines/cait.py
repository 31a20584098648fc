"""CaiT, "Going deeper with Image Transformers" (Touvron et al. 2021, arXiv 2103.17239).

The paper's CaiT-T / CaiT-S (Tables 4, 5) as the paper's authors build them
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet ``models/cait.py``, vit-pytorch's
CaiT; shapes in ``models/create_model.py``). Two ideas on top of ViT: LayerScale (each residual
branch multiplied by a learned per-channel diagonal, initialised at 0.1 up to block 18, 1e-5 to
24, 1e-6 deeper) and class attention (a class token that joins only the last ``cls_depth``
blocks, where it alone queries [class token, patch tokens]). Every attention is talking-heads
(a learned heads x heads mixing of the logits before the softmax and of the weights after).

As the authors' file, unlike CaiT's paper: q/k/v without bias and ``heads * dim_head`` inner
channels; the class blocks also use talking heads; the patch tokens enter the class blocks
without their LayerNorm (only the class token is normalised); no final LayerNorm other than the
head's; vit-pytorch's patch embedding (LayerNorm, Linear, LayerNorm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lkca.layers import DropPath
from lkca.layers.input_checks import check_images
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.baselines.vit_pytorch_blocks import (
    FeedForward,
    PixelPatchEmbed,
    merge_heads,
    split_heads,
)
from lkca.models.registry import register_model


@dataclass
class CaiTConfig:
    """CaiT hyper-parameters: ``depth`` self-attention blocks, then ``cls_depth`` class blocks."""

    img_size: int = 32
    patch_size: int | None = None  # None: img_size // 8 (authors' create_model: 4 at 32, 8 at 64)
    in_chans: int = 3
    num_classes: int = 10
    dim: int = 72
    depth: int = 16
    cls_depth: int = 1
    num_heads: int = 4
    dim_head: int = 32
    mlp_dim: int = 144
    # the authors' create_model passes no stochastic depth to CaiT (configs set drop_path: 0)
    drop_path_rate: float = 0.0


def layer_scale_init(block: int) -> float:
    """CaiT's LayerScale initial value for the ``block``-th block (from 1) of a transformer."""
    return 0.1 if block <= 18 else 1e-5 if block <= 24 else 1e-6


class TalkingHeadsAttention(nn.Module):
    """Attention whose per-head logits (before the softmax) and weights (after) are mixed across
    heads by learned heads x heads matrices.

    ``forward(x, context=None)``: x (B, n, dim) is normalised and queries itself, or
    [itself, context (B, m, dim)] when a context is given (class attention); returns (B, n, dim).
    """

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, inner, bias=False)
        self.kv = nn.Linear(dim, 2 * inner, bias=False)
        self.mix_pre = nn.Parameter(torch.randn(heads, heads))  # on the logits
        self.mix_post = nn.Parameter(torch.randn(heads, heads))  # on the weights
        self.proj = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        keys = x if context is None else torch.cat([x, context], dim=1)  # (B, m, dim)
        q = split_heads(self.q(x), self.heads)  # (B, h, n, d)
        k, v = (split_heads(t, self.heads) for t in self.kv(keys).chunk(2, dim=-1))
        logits = torch.matmul(q, k.transpose(-1, -2)) * self.scale  # (B, h, n, m)
        logits = torch.einsum("bhij,hg->bgij", logits, self.mix_pre)
        weights = torch.einsum("bhij,hg->bgij", logits.softmax(-1), self.mix_post)
        return self.proj(merge_heads(torch.matmul(weights, v)))  # (B, n, dim)


class LayerScaleBlock(nn.Module):
    """x + gamma1 * attn(x, context), then + gamma2 * feed_forward(x). (B, n, dim) -> same."""

    def __init__(self, cfg: CaiTConfig, init: float, drop_path: float) -> None:
        super().__init__()
        self.attn = TalkingHeadsAttention(cfg.dim, cfg.num_heads, cfg.dim_head)
        self.gamma1 = nn.Parameter(torch.full((cfg.dim,), init))
        self.ff = FeedForward(cfg.dim, cfg.mlp_dim)
        self.gamma2 = nn.Parameter(torch.full((cfg.dim,), init))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.gamma1 * self.attn(x, context))
        return x + self.drop_path(self.gamma2 * self.ff(x))


class CaiT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the class token."""

    def __init__(self, cfg: CaiTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or CaiTConfig(**kwargs)
        self.cfg = cfg
        patch = common.eighth(cfg.img_size, cfg.patch_size)
        self.patch_embed = PixelPatchEmbed(patch, cfg.in_chans, cfg.dim)
        self.pos_embed = nn.Parameter(torch.randn(1, (cfg.img_size // patch) ** 2, cfg.dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim))
        (rates,) = common.drop_path_rates(cfg.drop_path_rate, [cfg.depth], "constant")
        self.blocks = nn.ModuleList(
            LayerScaleBlock(cfg, layer_scale_init(i + 1), r) for i, r in enumerate(rates))
        self.cls_blocks = nn.ModuleList(
            LayerScaleBlock(cfg, layer_scale_init(i + 1), cfg.drop_path_rate)
            for i in range(cfg.cls_depth))
        self.head_norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "CaiT")
        x = self.patch_embed(x)  # (B, N, dim)
        if x.shape[1] != self.pos_embed.shape[1]:
            raise ValueError(f"CaiT built for {self.cfg.img_size}x{self.cfg.img_size} images "
                             f"got {x.shape[1]} patches; build it with img_size=<your size>")
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        # repeat, not expand: a view of a parameter as a module input trips torch's flop counter
        cls = self.cls_token.repeat(x.shape[0], 1, 1)  # (B, 1, dim)
        for block in self.cls_blocks:
            cls = block(cls, x)
        return self.head(self.head_norm(cls[:, 0]))


@register_model("cait_t_cifar", aliases=("cait_t",),
                paper=paper_row("CaiT-T", 1.00e6, 61.16e6, "Tables 4, 5"))
def cait_t_cifar(**overrides: Any) -> CaiT:
    """CaiT-T (paper Table 4: 1.00M params, 61.16M MACs at 32x32, 10 classes): the authors'
    ``cait-t`` (create_model.py:150): dim 72, 16 + 1 class block, 4 heads of 32, MLP 144, patch
    4 (8 at 64x64)."""
    return build(CaiT, CaiTConfig(dim=72, depth=16, cls_depth=1, num_heads=4, dim_head=32,
                                  mlp_dim=144), overrides)


@register_model("cait_s_cifar", aliases=("cait_s",),
                paper=paper_row("CaiT-S", 2.74e6, 163.55e6, "Tables 4, 5"))
def cait_s_cifar(**overrides: Any) -> CaiT:
    """CaiT-S (paper Table 4: 2.74M params, 163.55M MACs at 32x32, 10 classes): the authors'
    ``cait-s`` (create_model.py:145): dim 96, 18 + 2 class blocks, 4 heads of 64, MLP 192, patch
    4 (8 at 64x64)."""
    return build(CaiT, CaiTConfig(dim=96, depth=18, cls_depth=2, num_heads=4, dim_head=64,
                                  mlp_dim=192), overrides)
