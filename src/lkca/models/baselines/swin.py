"""Swin Transformer (Liu et al. 2021, arXiv 2103.14030), the paper's Swin-T / Swin-S (Tables 4, 5).

Self-attention inside non-overlapping windows of ``window_size`` x ``window_size`` tokens, the
windows of every second block shifted by half a window (with the attention mask that keeps
wrapped-around regions apart), a learned relative position bias per head, and a hierarchy of
stages joined by patch merging (2x2 neighbours concatenated, LayerNorm, Linear 4C -> 2C).

As the paper's authors build it (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet
``models/swin.py``, SPT's Swin; shapes in ``models/create_model.py``): three stages, window 4,
MLP ratio 2, patch 2 at 32x32 and 4 at 64x64, a LayerNorm after the patch embedding and, unlike
Swin's paper, a learned absolute position embedding added to the patch tokens; stochastic depth
rising linearly to the recipe's rate over all blocks; PyTorch's default initialisation of the
linear layers (the authors' file applies no other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import DropPath, Mlp, PatchEmbed
from lkca.layers.input_checks import check_images
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model


@dataclass
class SwinConfig:
    """Swin hyper-parameters; stage ``i`` has ``embed_dim * 2**i`` channels."""

    img_size: int = 32
    patch_size: int | None = None  # None: 2 up to 32x32, img_size // 16 above (authors: 2 / 4)
    in_chans: int = 3
    num_classes: int = 10
    embed_dim: int = 64
    depths: tuple[int, ...] = (1, 2, 1)
    num_heads: tuple[int, ...] = (2, 4, 8)
    window_size: int = 4
    mlp_ratio: float = 2.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.1


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of ``ws`` -> windows (B, nW, ws*ws, C)."""
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, (H // ws) * (W // ws), ws * ws, C)


def window_reverse(windows: torch.Tensor, ws: int, H: int, W: int) -> torch.Tensor:
    """Windows (B, nW, ws*ws, C) -> (B, H, W, C); the inverse of :func:`window_partition`."""
    B, C = windows.shape[0], windows.shape[-1]
    x = windows.view(B, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H, W, C)


def shifted_window_mask(H: int, W: int, ws: int, shift: int, device: torch.device) -> torch.Tensor:
    """Additive mask (nW, ws*ws, ws*ws): -100 between tokens of different regions after the
    cyclic shift (as Swin), so wrapped-around tokens do not attend to each other."""
    region = torch.zeros(1, H, W, 1, device=device)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for h in cuts:
        for w in cuts:
            region[:, h, w, :] = label
            label += 1
    ids = window_partition(region, ws).squeeze(0).squeeze(-1)  # (nW, ws*ws)
    diff = ids[:, None, :] - ids[:, :, None]  # (nW, ws*ws, ws*ws)
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention within each window, plus a relative position bias per head.

    ``forward(x, mask)``: x (B, nW, n, C) with n = ws*ws tokens per window, mask (nW, n, n) or
    None; returns (B, nW, n, C).
    """

    relative_position_index: torch.Tensor  # (n, n) buffer

    def __init__(self, dim: int, num_heads: int, window_size: int, qkv_bias: bool = True):
        super().__init__()
        common.check_heads("Swin", dim, num_heads)
        self.num_heads, self.window_size = num_heads, window_size
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        ws = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij"))
        coords = coords.flatten(1)  # (2, n)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)  # (n, n, 2)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1],
                             persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # windows folded into the batch: attention on 4-D tensors, the only rank ONNX takes
        B, nW, n, C = x.shape
        qkv = self.qkv(x).reshape(B * nW, n, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B*nW, heads, n, d)
        bias = self.relative_position_bias_table[self.relative_position_index]  # (n, n, heads)
        attn_mask = bias.permute(2, 0, 1)  # (heads, n, n), the same for every window
        if mask is not None:  # window w of every image gets mask[w]: (B*nW, heads, n, n)
            attn_mask = (attn_mask + mask[:, None]).repeat(B, 1, 1, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(B, nW, n, C))  # (B, nW, n, C)


class SwinBlock(nn.Module):
    """LN, (shifted) window attention, residual; LN, MLP, residual. x (B, H*W, C) -> same."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float,
                 qkv_bias: bool, drop_path: float) -> None:
        super().__init__()
        self.window_size, self.shift = window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        (H, W), (B, N, C), ws, s = grid, x.shape, self.window_size, self.shift
        y = self.norm1(x).view(B, H, W, C)
        y = F.pad(y, (0, 0, 0, -W % ws, 0, -H % ws))  # grids that are not window multiples
        Hp, Wp = y.shape[1:3]
        mask = None
        if s:
            y = torch.roll(y, (-s, -s), dims=(1, 2))
            mask = shifted_window_mask(Hp, Wp, ws, s, x.device)
        y = window_reverse(self.attn(window_partition(y, ws), mask), ws, Hp, Wp)
        if s:
            y = torch.roll(y, (s, s), dims=(1, 2))
        x = x + self.drop_path(y[:, :H, :W].reshape(B, N, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Halve the grid: 2x2 neighbours concatenated (4C), LayerNorm, Linear 4C -> 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        (H, W), (B, _, C) = grid, x.shape
        x = F.pad(x.view(B, H, W, C), (0, 0, 0, W % 2, 0, H % 2))  # odd grids
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        grid = (x.shape[1], x.shape[2])
        return self.reduction(self.norm(x.reshape(B, -1, 4 * C))), grid  # (B, N/4, 2C)


class SwinStage(nn.Module):
    """``depth`` Swin blocks at one grid, then (except in the last stage) patch merging.

    ``forward(x, grid)``: x (B, H*W, C) -> (x', grid') with (B, H*W/4, 2C) after merging.
    """

    def __init__(self, dim: int, depth: int, heads: int, window: int, grid_side: int,
                 mlp_ratio: float, qkv_bias: bool, rates: list[float], merge: bool) -> None:
        super().__init__()
        # as Swin: a window as large as the grid covers it all, and nothing is left to shift
        ws = min(window, grid_side)
        shift = ws // 2 if grid_side > ws else 0
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, ws, shift if j % 2 else 0, mlp_ratio, qkv_bias, rates[j])
            for j in range(depth))
        self.downsample = PatchMerging(dim) if merge else None

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        for block in self.blocks:
            x = block(x, grid)
        if self.downsample is not None:
            x, grid = self.downsample(x, grid)
        return x, grid


class SwinTransformer(nn.Module):
    """Images (B, in_chans, img_size, img_size) -> logits (B, num_classes); mean-pooled last
    stage."""

    def __init__(self, cfg: SwinConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or SwinConfig(**kwargs)
        common.check_stages("Swin", cfg, "depths", "num_heads")
        self.cfg = cfg
        patch = cfg.patch_size or (2 if cfg.img_size <= 32 else cfg.img_size // 16)
        self.patch_embed = PatchEmbed(cfg.img_size, patch, cfg.in_chans, cfg.embed_dim)
        self.embed_norm = nn.LayerNorm(cfg.embed_dim)
        grid = self.patch_embed.grid_size
        self.absolute_pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], cfg.embed_dim))
        nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        stage_rates = common.drop_path_rates(cfg.drop_path_rate, cfg.depths, "linear")
        self.layers = nn.ModuleList()
        side, dim, last = min(grid), cfg.embed_dim, len(cfg.depths) - 1
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            common.check_heads("Swin", dim, heads)
            self.layers.append(SwinStage(dim, depth, heads, cfg.window_size, side, cfg.mlp_ratio,
                                         cfg.qkv_bias, stage_rates[i], merge=i < last))
            if i < last:
                side, dim = (side + 1) // 2, 2 * dim
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "SwinTransformer")
        x, grid = self.patch_embed(x)  # (B, N, C)
        if x.shape[1] != self.absolute_pos_embed.shape[1]:
            raise ValueError(f"Swin built for {self.cfg.img_size}x{self.cfg.img_size} images got "
                             f"a {grid[0]}x{grid[1]} patch grid; build it with img_size=<your size>")
        x = self.embed_norm(x) + self.absolute_pos_embed
        for stage in self.layers:
            x, grid = stage(x, grid)
        return self.head(self.norm(x).mean(1))


@register_model("swin_t_cifar", aliases=("swin_t",),
                paper=paper_row("Swin-T", 1.01e6, 38.26e6, "Tables 4, 5"))
def swin_t_cifar(**overrides: Any) -> SwinTransformer:
    """Swin-T (paper Table 4: 1.01M params, 38.26M MACs at 32x32, 10 classes): the authors'
    ``swin-t`` (create_model.py:132): embed dim 64, depths (1, 2, 1), heads (2, 4, 8), window 4,
    MLP ratio 2, patch 2 (4 at 64x64)."""
    return build(SwinTransformer, SwinConfig(embed_dim=64, depths=(1, 2, 1), num_heads=(2, 4, 8)),
                 overrides)


@register_model("swin_s_cifar", aliases=("swin_s",),
                paper=paper_row("Swin-S", 2.87e6, 94.72e6, "Tables 4, 5"))
def swin_s_cifar(**overrides: Any) -> SwinTransformer:
    """Swin-S (paper Table 4: 2.87M params, 94.72M MACs at 32x32, 10 classes): the authors'
    ``swin-s`` (create_model.py:120): embed dim 84, depths (1, 3, 2), heads (3, 6, 12), window
    4, MLP ratio 2, patch 2 (4 at 64x64)."""
    return build(SwinTransformer, SwinConfig(embed_dim=84, depths=(1, 3, 2), num_heads=(3, 6, 12)),
                 overrides)
