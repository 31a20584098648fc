"""RvT, the Rotary Vision Transformer, as the paper's authors build it.

The paper's RvT-T / RvT-S (Table 5) come from the authors' ``models/rvt.py`` (the vit-pytorch
RvT) with the shapes of their ``models/create_model.py`` (``rvt-t``, ``rvt-s``). A ViT with a
class token and no position table: every block is

- attention: LayerNorm; the query from a depthwise 5x5 conv + pointwise conv of the patch-token
  map (the class token's query from a linear map), keys / values linear (no bias), ``heads``
  heads of ``dim_head`` channels (64, wider than dim: inner width heads * dim_head);
  queries and keys of the patch tokens rotated axially (the first half of each head's channel
  pairs by the token's row, the second half by its column, at angles pi * pos * s, pos in
  [-1, 1] across the grid, s = linspace(1, img_size / 2, dim_head / 4));
- feed-forward: LayerNorm, GEGLU (``W2 (x W_1 * GELU(x W_g))``, hidden ``mlp_dim``);

each added to the tokens (optionally through stochastic depth, off in the authors' code). The
class token is LayerNorm-ed and classified. Patch img_size // 8 (the authors' create_model).
"""

from __future__ import annotations

import math
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
class RvTConfig:
    """RvT hyper-parameters, named as the authors' create_model passes them."""

    img_size: int = 64
    patch_size: int | None = None  # None: img_size // 8 (create_model: 4 at 32, 8 at 64)
    in_chans: int = 3
    num_classes: int = 200
    dim: int = 64
    depth: int = 6
    heads: int = 8
    dim_head: int = 64  # the vit-pytorch default, which create_model keeps
    mlp_dim: int = 64
    query_kernel: int = 5  # the depthwise conv of the query (vit-pytorch's conv_query_kernel)
    drop_path_rate: float = 0.0  # create_model passes no stochastic depth to RvT


def axial_rotary_angles(grid: tuple[int, int], dim_head: int, img_size: int,
                        device: torch.device | None = None) -> torch.Tensor:
    """Rotation angles (H*W, dim_head // 2): per token, the first dim_head // 4 channel pairs
    turn by pi * row * s, the others by pi * column * s, with row / column spaced evenly over
    [-1, 1] and s = linspace(1, img_size / 2, dim_head // 4) (the authors' rvt.py)."""
    if dim_head % 4:
        raise ValueError(f"RvT: dim_head ({dim_head}) must be a multiple of 4 (two axes x channel "
                         "pairs)")
    scales = torch.linspace(1.0, img_size / 2, dim_head // 4, device=device)
    rows = torch.linspace(-1.0, 1.0, grid[0], device=device)[:, None] * scales * math.pi
    cols = torch.linspace(-1.0, 1.0, grid[1], device=device)[:, None] * scales * math.pi
    rows = rows[:, None].expand(-1, grid[1], -1)  # (H, W, dim_head // 4)
    cols = cols[None].expand(grid[0], -1, -1)
    return torch.cat([rows, cols], dim=-1).reshape(grid[0] * grid[1], dim_head // 2)


def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Turn each channel pair (x[2i], x[2i+1]) of x (..., N, d) by angles (N, d // 2)."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)  # each (..., N, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)


class ConvQuery(nn.Module):
    """The query of RvT's attention: depthwise k x k conv then pointwise conv (no bias) on the
    patch-token map, a linear map of the class token. (B, 1 + H*W, dim), grid -> (B, 1 + H*W,
    inner)."""

    def __init__(self, dim: int, inner: int, kernel: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=False)
        self.pointwise = nn.Conv2d(dim, inner, 1, bias=False)
        self.cls_proj: nn.Module = nn.Linear(dim, inner) if dim != inner else nn.Identity()

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        cls, tokens = x[:, :1], x[:, 1:]
        B, N, C = tokens.shape
        tokens = self.pointwise(self.depthwise(tokens.transpose(1, 2).reshape(B, C, *grid)))
        return torch.cat([self.cls_proj(cls), tokens.flatten(2).transpose(1, 2)], dim=1)


class RotaryAttention(nn.Module):
    """LayerNorm, then multi-head attention with a conv query and rotated patch queries / keys.
    ``forward(x, angles, grid)``: x (B, 1 + N, dim), class token first -> (B, 1 + N, dim)."""

    def __init__(self, dim: int, heads: int, dim_head: int, query_kernel: int) -> None:
        super().__init__()
        self.heads, inner = heads, heads * dim_head
        self.norm = nn.LayerNorm(dim)
        self.q = ConvQuery(dim, inner, query_kernel)
        self.kv = nn.Linear(dim, 2 * inner, bias=False)
        self.proj = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, angles: torch.Tensor,
                grid: tuple[int, int]) -> torch.Tensor:
        x = self.norm(x)
        B, N, _ = x.shape
        q, k, v = (t.reshape(B, N, self.heads, -1).transpose(1, 2)  # each (B, heads, N, d)
                   for t in (self.q(x, grid), *self.kv(x).chunk(2, dim=-1)))
        q = torch.cat([q[:, :, :1], rotate(q[:, :, 1:], angles)], dim=2)
        k = torch.cat([k[:, :, :1], rotate(k[:, :, 1:], angles)], dim=2)
        out = attend(q, k, v, q.shape[-1] ** -0.5)  # (B, heads, N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, -1))


class GEGLUFeedForward(nn.Module):
    """LayerNorm, then ``fc2(x W_1 * GELU(x W_g))``: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * hidden)  # [W_1; W_g]
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.fc1(self.norm(x)).chunk(2, dim=-1)
        return self.fc2(F.gelu(gate) * x)


class RvTBlock(nn.Module):
    """x + attn(x), then x + ff(x) (each branch through stochastic depth)."""

    def __init__(self, cfg: RvTConfig) -> None:
        super().__init__()
        self.attn = RotaryAttention(cfg.dim, cfg.heads, cfg.dim_head, cfg.query_kernel)
        self.ff = GEGLUFeedForward(cfg.dim, cfg.mlp_dim)
        self.drop_path = DropPath(cfg.drop_path_rate)

    def forward(self, x: torch.Tensor, angles: torch.Tensor,
                grid: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x, angles, grid))
        return x + self.drop_path(self.ff(x))


class RvT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the class token."""

    def __init__(self, cfg: RvTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or RvTConfig(**kwargs)
        self.cfg = cfg
        self.patch = eighth(cfg.img_size, cfg.patch_size)
        axial_rotary_angles((1, 1), cfg.dim_head, cfg.img_size)  # validates dim_head
        self.patch_embed = nn.Linear(cfg.in_chans * self.patch**2, cfg.dim)  # pixels (p, p, c)
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim))
        self.blocks = nn.ModuleList(RvTBlock(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "RvT")
        B, C, H, W = x.shape
        p = self.patch
        grid = (H // p, W // p)
        x = x.reshape(B, C, grid[0], p, grid[1], p).permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, p, C)
        x = self.patch_embed(x.reshape(B, grid[0] * grid[1], p * p * C))
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, 1 + N, dim)
        angles = axial_rotary_angles(grid, self.cfg.dim_head, self.cfg.img_size, x.device)
        for block in self.blocks:
            x = block(x, angles, grid)
        return self.head(self.norm(x[:, 0]))


# The shapes: the authors' models/create_model.py, rows 'rvt-t' and 'rvt-s' (patch img_size // 8,
# dim_head left at rvt.py's default 64).


@register_model("rvt_t_tiny", aliases=("rvt_t",),
                paper=paper_row("RvT-T", 1.07e6, 57.59e6, "Table 5", 64, 200))
def rvt_t_tiny(**overrides: Any) -> RvT:
    """RvT-T (paper Table 5: 1.07M params, 57.59M MACs at 64x64, 200 classes).

    The authors' ``rvt-t``: dim 64, depth 6, 8 heads of 64, GEGLU hidden 64.
    """
    return build(RvT, RvTConfig(dim=64, depth=6, heads=8, mlp_dim=64), overrides)


@register_model("rvt_s_tiny", aliases=("rvt_s",),
                paper=paper_row("RvT-S", 2.70e6, 145.07e6, "Table 5", 64, 200))
def rvt_s_tiny(**overrides: Any) -> RvT:
    """RvT-S (paper Table 5: 2.70M params, 145.07M MACs at 64x64, 200 classes).

    The authors' ``rvt-s``: dim 128, depth 7, 8 heads of 64, GEGLU hidden 128.
    """
    return build(RvT, RvTConfig(dim=128, depth=7, heads=8, mlp_dim=128), overrides)
