"""RegionViT, "Regional-to-Local Attention for Vision Transformers" (Chen, Panda, Fan 2021, arXiv
2106.02689), as the paper's authors build it.

The paper's RegionViT-T / -S / -B (Table 5) come from the authors' ``models/regionvit.py`` (the
vit-pytorch RegionViT) with the shapes of their ``models/create_model.py`` (``regionvit-t``,
``-s``, ``-b``). Two token maps: local tokens from an 8x8 / stride-4 conv (padding 3), regional
tokens from a 1x1 conv over the pixels of each region_patch x region_patch region (region_patch =
local_patch_size * window_size). Four stages; stages 2-4 first halve both maps with one shared
3x3 / stride-2 conv. Each stage's regional-to-local blocks, with one attention module per block
(pre-LN, ``heads`` of ``dim_head`` channels whatever the width, no qkv bias):

- the regional tokens attend to each other (x + attn(x));
- each regional token with the local tokens of its window attends within the group, a learned
  relative position bias between local tokens (zero for the regional token), x + attn(x);
- a feed-forward (pre-LN, ratio 4) on the groups, x + ff(x).

The regional tokens of the last stage are mean-pooled, LayerNorm-ed and classified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import DropPath
from lkca.layers.input_checks import check_images
from lkca.models.baselines.common import check_stages, eighth
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model


@dataclass
class RegionViTConfig:
    """RegionViT hyper-parameters, one value per stage where a tuple (four stages)."""

    img_size: int = 64
    in_chans: int = 3
    num_classes: int = 200
    dims: tuple[int, ...] = (48, 72, 108, 112)
    depths: tuple[int, ...] = (1, 1, 2, 1)
    window_size: int | None = None  # None: img_size // 8 (create_model), at least 1
    local_patch_size: int | None = None  # None: (img_size // 8) // 2 (create_model)
    heads: int = 4  # regionvit.py's R2LTransformer defaults, which create_model keeps
    dim_head: int = 32
    mlp_ratio: int = 4
    drop_path_rate: float = 0.0  # create_model passes no stochastic depth to RegionViT

    def region_patch(self) -> int:
        """Pixels per region side: local_patch_size * window_size (create_model: 8 at 32x32, 32
        at 64x64); at least 4, one local token, where the inputs are smaller than the authors'."""
        local = self.local_patch_size if self.local_patch_size is not None else self.img_size // 16
        return max(4, local * self.window())

    def window(self) -> int:
        """Local tokens per window side: ``window_size``, or when None img_size // 8
        (create_model)."""
        return eighth(self.img_size, self.window_size)


def relative_position_index(window: tuple[int, int], size: int) -> torch.Tensor:
    """(wh*ww, wh*ww) rows of a (2*size - 1)^2 bias table between the local tokens of one window:
    (d_row + size - 1) + (d_col + size - 1) * (2*size - 1), as the authors' regionvit.py."""
    rows, cols = torch.meshgrid(torch.arange(window[0]), torch.arange(window[1]), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    d_row = rows[:, None] - rows[None] + size - 1
    d_col = cols[:, None] - cols[None] + size - 1
    return d_row + d_col * (2 * size - 1)


class Attention(nn.Module):
    """LayerNorm, then multi-head self-attention (no qkv bias), an optional additive bias.
    (B, N, dim) -> (B, N, dim)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.proj = nn.Linear(heads * dim_head, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        B, N, _ = x.shape
        q, k, v = (t.reshape(B, N, self.heads, -1).transpose(1, 2)
                   for t in self.qkv(self.norm(x)).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(B, N, -1))


class FeedForward(nn.Module):
    """LayerNorm, Linear, GELU, Linear: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * ratio)
        self.act = nn.GELU()  # a module, as the authors' (ptflops counts it twice)
        self.fc2 = nn.Linear(dim * ratio, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class RegionalToLocalStage(nn.Module):
    """One stage's R2L blocks and its relative position bias table.
    ``forward(local (B, C, lh, lw), region (B, C, rh, rw))`` -> both, same shapes."""

    def __init__(self, dim: int, depth: int, cfg: RegionViTConfig, window_size: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.rel_pos_bias = nn.Parameter(torch.randn((2 * window_size - 1) ** 2, cfg.heads))
        self.attns = nn.ModuleList(Attention(dim, cfg.heads, cfg.dim_head) for _ in range(depth))
        self.ffs = nn.ModuleList(FeedForward(dim, cfg.mlp_ratio) for _ in range(depth))
        self.drop_path = DropPath(cfg.drop_path_rate)

    def forward(self, local: torch.Tensor,
                region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, C, lh, lw = local.shape
        rh, rw = region.shape[-2:]
        wh, ww = lh // rh, lw // rw
        index = relative_position_index((wh, ww), self.window_size).to(local.device)
        bias = F.pad(self.rel_pos_bias[index].permute(2, 0, 1), (1, 0, 1, 0))  # (h, 1+n, 1+n)
        # groups: (B * regions, wh * ww, C), regions in row-major order
        groups = local.reshape(B, C, rh, wh, rw, ww).permute(0, 2, 4, 3, 5, 1)
        groups = groups.reshape(B * rh * rw, wh * ww, C)
        regions = region.flatten(2).transpose(1, 2)  # (B, rh*rw, C)
        for attn, ff in zip(self.attns, self.ffs):
            regions = regions + self.drop_path(attn(regions))
            x = torch.cat([regions.reshape(-1, 1, C), groups], dim=1)  # region token first
            x = x + self.drop_path(attn(x, bias.to(x.dtype)))
            x = x + self.drop_path(ff(x))
            regions, groups = x[:, 0].reshape(B, rh * rw, C), x[:, 1:]
        local = groups.reshape(B, rh, rw, wh, ww, C).permute(0, 5, 1, 3, 2, 4)
        return local.reshape(B, C, lh, lw), regions.transpose(1, 2).reshape(B, C, rh, rw)


class RegionViT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the pooled regional tokens."""

    def __init__(self, cfg: RegionViTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or RegionViTConfig(**kwargs)
        check_stages("RegionViT", cfg, "dims", "depths")
        self.cfg = cfg
        self.region_patch = cfg.region_patch()
        window = cfg.window()
        self.local_embed = nn.Conv2d(cfg.in_chans, cfg.dims[0], 8, stride=4, padding=3)
        self.region_embed = nn.Conv2d(cfg.in_chans * self.region_patch**2, cfg.dims[0], 1)
        self.downsamples = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1)
                                         for a, b in zip(cfg.dims[:-1], cfg.dims[1:]))
        self.stages = nn.ModuleList(RegionalToLocalStage(d, n, cfg, window)
                                    for d, n in zip(cfg.dims, cfg.depths))
        self.norm = nn.LayerNorm(cfg.dims[-1])
        self.head = nn.Linear(cfg.dims[-1], cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "RegionViT")
        if x.shape[-1] % self.region_patch or x.shape[-2] % self.region_patch:
            raise ValueError(f"RegionViT: the input ({x.shape[-2]}x{x.shape[-1]}) must be a "
                             f"multiple of the region patch ({self.region_patch}); build the "
                             "model with img_size set to the input")
        local = self.local_embed(x)  # (B, dims[0], H/4, W/4)
        region = self.region_embed(F.pixel_unshuffle(x, self.region_patch))  # channels (c, i, j)
        for i, stage in enumerate(self.stages):
            if i:
                down = self.downsamples[i - 1]
                local, region = down(local), down(region)
            local, region = stage(local, region)
        return self.head(self.norm(region.mean((2, 3))))


# The shapes: the authors' models/create_model.py, rows 'regionvit-t', '-s', '-b' (window
# img_size // 8, local patch (img_size // 8) // 2, no 3-conv tokenizer, no PEG, no dropout).


@register_model("regionvit_t_tiny", aliases=("regionvit_t",),
                paper=paper_row("RegionViT-T", 0.97e6, 29.38e6, "Table 5", 64, 200))
def regionvit_t_tiny(**overrides: Any) -> RegionViT:
    """RegionViT-T (paper Table 5: 0.97M params, 29.38M MACs at 64x64, 200 classes).

    The authors' ``regionvit-t``: widths (48, 72, 108, 112), depths (1, 1, 2, 1).
    """
    return build(RegionViT, RegionViTConfig(dims=(48, 72, 108, 112), depths=(1, 1, 2, 1)),
                 overrides)


@register_model("regionvit_s_tiny", aliases=("regionvit_s",),
                paper=paper_row("RegionViT-S", 2.86e6, 53.82e6, "Table 5", 64, 200))
def regionvit_s_tiny(**overrides: Any) -> RegionViT:
    """RegionViT-S (paper Table 5: 2.86M params, 53.82M MACs at 64x64, 200 classes).

    The authors' ``regionvit-s``: widths (48, 96, 128, 256), depths (1, 2, 3, 2).
    """
    return build(RegionViT, RegionViTConfig(dims=(48, 96, 128, 256), depths=(1, 2, 3, 2)),
                 overrides)


@register_model("regionvit_b_tiny", aliases=("regionvit_b",),
                paper=paper_row("RegionViT-B", 12.39e6, 195.02e6, "Table 5", 64, 200))
def regionvit_b_tiny(**overrides: Any) -> RegionViT:
    """RegionViT-B (paper Table 5: 12.39M params, 195.02M MACs at 64x64, 200 classes).

    The authors' ``regionvit-b``: widths (64, 128, 256, 512), depths (2, 2, 8, 2).
    """
    return build(RegionViT, RegionViTConfig(dims=(64, 128, 256, 512), depths=(2, 2, 8, 2)),
                 overrides)
