"""Learnable absolute position embedding, interpolated when the patch grid changes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def resize_pos_embed(pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]):
    """Bicubically resample a (1, H*W, C) position table from ``old_grid`` to ``new_grid``."""
    if tuple(old_grid) == tuple(new_grid):
        return pos
    C = pos.shape[-1]
    grid = pos.reshape(1, old_grid[0], old_grid[1], C).permute(0, 3, 1, 2)  # (1, C, H, W)
    grid = F.interpolate(grid, size=new_grid, mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], C)


class PosEmbed(nn.Module):
    """Adds a learnable (1, prefix_tokens + H*W, C) table to tokens (B, prefix_tokens + N, C).

    ``prefix_tokens`` rows (a class token's, as SPT's ViT: 65 rows for an 8x8 grid) come first and
    are added as they are; on another grid only the H*W patch rows are interpolated (bicubic).
    """

    def __init__(self, grid_size: tuple[int, int], dim: int, prefix_tokens: int = 0) -> None:
        super().__init__()
        if prefix_tokens < 0:
            raise ValueError(f"PosEmbed: prefix_tokens must be >= 0, got {prefix_tokens}")
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.prefix_tokens = prefix_tokens
        rows = prefix_tokens + grid_size[0] * grid_size[1]
        self.pos = nn.Parameter(torch.zeros(1, rows, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        p = self.prefix_tokens
        patches = resize_pos_embed(self.pos[:, p:], self.grid_size, grid_size)
        table = torch.cat([self.pos[:, :p], patches], dim=1) if p else patches
        return x + table.to(x.dtype)
