"""VAN's Large Kernel Attention (Guo et al., "Visual Attention Network"), the closest prior method.

A 21x21 receptive field from a 5x5 depthwise conv, a 7x7 depthwise conv with dilation 3 and a 1x1
conv; the result gates the input element-wise.
"""

from __future__ import annotations

import torch
from torch import nn


class LKA(nn.Module):
    """Large Kernel Attention as a token mixer: x (B, N, C) on an (H, W) grid -> (B, N, C).

    Follows VAN's ``SpatialAttention``: 1x1 conv, GELU, LKA gating, 1x1 conv, plus a shortcut;
    ``proj_drop`` is dropout on the output, as attention's (VAN has none; 0 keeps VAN's module).
    """

    def __init__(self, dim: int, grid_size: int | tuple[int, int], proj_drop: float = 0.0) -> None:
        super().__init__()
        self.grid_size = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, 7, padding=9, groups=dim, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.proj_2 = nn.Conv2d(dim, dim, 1)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int] | None = None) -> torch.Tensor:
        H, W = self.grid_size if grid_size is None else grid_size
        B, N, C = x.shape
        if N != H * W:
            raise ValueError(f"LKA: {N} tokens do not fill the {H}x{W} grid")
        y = x.transpose(1, 2).reshape(B, C, H, W)  # (B, C, H, W)
        u = self.act(self.proj_1(y))
        attn = self.conv1(self.conv_spatial(self.conv0(u)))
        y = self.proj_2(u * attn) + y
        return self.proj_drop(y.reshape(B, C, N).transpose(1, 2))
