"""XCiT, "Cross-Covariance Image Transformers" (El-Nouby, Touvron et al. 2021, arXiv 2106.09681),
as the paper's authors build it.

The paper's XCiT-T / XCiT-S (Table 5) come from the authors' ``models/xcit.py`` (the
vit-pytorch XCiT) with the shapes of their ``models/create_model.py`` (``xcit-t``, ``xcit-s``):

- patches of img_size // 8 pixels: LayerNorm of the flattened patch, linear to ``dim``,
  LayerNorm; a learned position table added;
- ``depth`` XCA blocks of three pre-LN branches, each scaled by a LayerScale vector (0.1 at
  init) and added: cross-covariance attention (per head, the dim_head x dim_head product of the
  L2-normalised (over tokens) queries and keys, times exp(temperature), softmaxed, mixes the
  channels of V), local patch interaction (depthwise 3x3 conv, BatchNorm, GELU, depthwise 3x3
  conv on the token map) and a feed-forward (hidden ``mlp_dim``);
- a final LayerNorm, then ``cls_depth`` class-attention blocks: a learned class token attends
  to itself and the patch tokens (LayerScale, feed-forward);
- LayerNorm and a linear classifier on the class token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import DropPath
from lkca.layers.input_checks import check_images
from lkca.models.baselines.common import eighth
from lkca.models.baselines.factory import build, paper_row
from lkca.models.baselines.softmax_attention import attend
from lkca.models.registry import register_model


@dataclass
class XCiTConfig:
    """XCiT hyper-parameters, named as the authors' create_model passes them."""

    img_size: int = 64
    patch_size: int | None = None  # None: img_size // 8 (create_model: 4 at 32, 8 at 64)
    in_chans: int = 3
    num_classes: int = 200
    dim: int = 120
    depth: int = 8
    cls_depth: int = 2
    heads: int = 4
    dim_head: int = 30
    mlp_dim: int = 120
    lpi_kernel: int = 3  # vit-pytorch's local_patch_kernel_size
    drop_path_rate: float = 0.0  # create_model passes no stochastic depth (layer_dropout 0)


def layer_scale_init(layer: int) -> float:
    """LayerScale's initial value at 1-based block index ``layer`` in the authors' xcit.py: 0.1
    up to 18, else 1e-6 (its 1e-5 branch is unreachable as written)."""
    return 0.1 if layer <= 18 else 1e-6


class FeedForward(nn.Module):
    """LayerNorm, Linear, GELU, Linear: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # a module, as the authors' (ptflops counts it twice)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class CrossCovarianceAttention(nn.Module):
    """XCA: LayerNorm, then per head softmax(exp(t) * q_hat k_hat^T) (dim_head x dim_head) applied
    to V's channels; q_hat, k_hat are L2-normalised over the tokens. (B, N, dim) -> same."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(heads * dim_head, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        q, k, v = (t.reshape(B, N, self.heads, -1).permute(0, 2, 3, 1)  # (B, heads, d, N)
                   for t in self.qkv(self.norm(x)).chunk(3, dim=-1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        out = attend(q, k, v, self.temperature.exp())  # (B, heads, d, N): mixes channels
        return self.proj(out.permute(0, 3, 1, 2).reshape(B, N, -1))


class LocalPatchInteraction(nn.Module):
    """LayerNorm, depthwise conv, BatchNorm, GELU, depthwise conv on the token map.
    (B, N, dim), grid -> (B, N, dim)."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"XCiT: lpi_kernel must be odd, got {kernel}")
        self.norm = nn.LayerNorm(dim)
        self.conv1 = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.bn = nn.BatchNorm2d(dim)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        x = self.norm(x).transpose(1, 2).reshape(B, C, *grid)
        x = self.conv2(self.act(self.bn(self.conv1(x))))
        return x.flatten(2).transpose(1, 2)


class XCABlock(nn.Module):
    """x + g1 * XCA(x), x + g2 * LPI(x), x + g3 * FF(x), with LayerScale vectors g."""

    def __init__(self, cfg: XCiTConfig, layer: int) -> None:
        super().__init__()
        init = layer_scale_init(layer)
        self.attn = CrossCovarianceAttention(cfg.dim, cfg.heads, cfg.dim_head)
        self.gamma1 = nn.Parameter(torch.full((cfg.dim,), init))
        self.lpi = LocalPatchInteraction(cfg.dim, cfg.lpi_kernel)
        self.gamma2 = nn.Parameter(torch.full((cfg.dim,), init))
        self.ff = FeedForward(cfg.dim, cfg.mlp_dim)
        self.gamma3 = nn.Parameter(torch.full((cfg.dim,), init))
        self.drop_path = DropPath(cfg.drop_path_rate)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x) * self.gamma1)
        x = x + self.drop_path(self.lpi(x, grid) * self.gamma2)
        return x + self.drop_path(self.ff(x) * self.gamma3)


class ClassAttention(nn.Module):
    """LayerNorm of the class token x (B, 1, dim); it attends to itself and ``tokens`` (B, N,
    dim, not re-normalised). -> (B, 1, dim)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, heads * dim_head, bias=False)
        self.kv = nn.Linear(dim, 2 * heads * dim_head, bias=False)
        self.proj = nn.Linear(heads * dim_head, dim)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        B = x.shape[0]
        q = self.q(x).reshape(B, 1, self.heads, -1).transpose(1, 2)
        k, v = (t.reshape(B, -1, self.heads, q.shape[-1]).transpose(1, 2)
                for t in self.kv(torch.cat([x, tokens], dim=1)).chunk(2, dim=-1))
        out = attend(q, k, v, q.shape[-1] ** -0.5)  # (B, heads, 1, d)
        return self.proj(out.transpose(1, 2).reshape(B, 1, -1))


class ClassAttentionBlock(nn.Module):
    """cls + g1 * CA(cls, tokens), cls + g2 * FF(cls), with LayerScale vectors g."""

    def __init__(self, cfg: XCiTConfig, layer: int) -> None:
        super().__init__()
        init = layer_scale_init(layer)
        self.attn = ClassAttention(cfg.dim, cfg.heads, cfg.dim_head)
        self.gamma1 = nn.Parameter(torch.full((cfg.dim,), init))
        self.ff = FeedForward(cfg.dim, cfg.mlp_dim)
        self.gamma2 = nn.Parameter(torch.full((cfg.dim,), init))
        self.drop_path = DropPath(cfg.drop_path_rate)

    def forward(self, cls: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        cls = cls + self.drop_path(self.attn(cls, tokens) * self.gamma1)
        return cls + self.drop_path(self.ff(cls) * self.gamma2)


class XCiT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the class token."""

    def __init__(self, cfg: XCiTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or XCiTConfig(**kwargs)
        self.cfg = cfg
        self.patch = eighth(cfg.img_size, cfg.patch_size)
        patch_dim = cfg.in_chans * self.patch**2
        self.patch_norm = nn.LayerNorm(patch_dim)
        self.patch_embed = nn.Linear(patch_dim, cfg.dim)
        self.embed_norm = nn.LayerNorm(cfg.dim)
        self.pos_embed = nn.Parameter(torch.randn(1, (cfg.img_size // self.patch) ** 2, cfg.dim))
        self.cls_token = nn.Parameter(torch.randn(cfg.dim))
        self.blocks = nn.ModuleList(XCABlock(cfg, i + 1) for i in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.cls_blocks = nn.ModuleList(ClassAttentionBlock(cfg, i + 1)
                                        for i in range(cfg.cls_depth))
        self.head_norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "XCiT")
        B, C, H, W = x.shape
        p = self.patch
        grid = (H // p, W // p)
        x = x.reshape(B, C, grid[0], p, grid[1], p).permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, p, C)
        x = self.patch_norm(x.reshape(B, grid[0] * grid[1], p * p * C))
        x = self.embed_norm(self.patch_embed(x))
        x = x + self.pos_embed[:, :x.shape[1]]
        for block in self.blocks:
            x = block(x, grid)
        x = self.norm(x)
        cls = self.cls_token.repeat(B, 1, 1)  # (B, 1, dim); a copy, not a view of the leaf
        for block in self.cls_blocks:
            cls = block(cls, x)
        return self.head(self.head_norm(cls[:, 0]))


# The shapes: the authors' models/create_model.py, rows 'xcit-t' and 'xcit-s' (patch
# img_size // 8, LPI kernel 3, no dropout).


@register_model("xcit_t_tiny", aliases=("xcit_t",),
                paper=paper_row("XCiT-T", 0.95e6, 51.44e6, "Table 5", 64, 200))
def xcit_t_tiny(**overrides: Any) -> XCiT:
    """XCiT-T (paper Table 5: 0.95M params, 51.44M MACs at 64x64, 200 classes).

    The authors' ``xcit-t``: dim 120, 8 XCA + 2 class-attention blocks, 4 heads of 30, MLP 120.
    """
    return build(XCiT, XCiTConfig(dim=120, depth=8, cls_depth=2, heads=4, dim_head=30,
                                  mlp_dim=120), overrides)


@register_model("xcit_s_tiny", aliases=("xcit_s",),
                paper=paper_row("XCiT-S", 2.81e6, 157.54e6, "Table 5", 64, 200))
def xcit_s_tiny(**overrides: Any) -> XCiT:
    """XCiT-S (paper Table 5: 2.81M params, 157.54M MACs at 64x64, 200 classes).

    The authors' ``xcit-s``: dim 192, 10 XCA + 2 class-attention blocks, 4 heads of 48, MLP 192.
    """
    return build(XCiT, XCiTConfig(dim=192, depth=10, cls_depth=2, heads=4, dim_head=48,
                                  mlp_dim=192), overrides)
