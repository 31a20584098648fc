"""Split an image into non-overlapping patches and project each to the embedding dimension."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lkca.errors import InvalidArgumentError


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class PatchEmbed(nn.Module):
    """Image (B, C, H, W) -> tokens (B, N, dim) with N = (H / p) * (W / p), and the grid (H/p, W/p).

    Any image whose sides are multiples of the patch size is accepted at run time.
    """

    def __init__(self, img_size: int | tuple[int, int], patch_size: int, in_chans: int, dim: int):
        super().__init__()
        self.img_size, self.patch_size = _pair(img_size), patch_size
        check_divisible(self.img_size, patch_size)
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.proj = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if x.dim() != 4 or x.shape[1] != self.proj.in_channels:
            raise InvalidArgumentError(
                f"PatchEmbed: expected images (B, {self.proj.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        check_divisible((x.shape[-2], x.shape[-1]), self.patch_size)
        B, C, H, W = x.shape
        p = self.patch_size
        grid = (H // p, W // p)
        # the stride-p convolution as the Linear over each flattened patch it is (the authors'
        # patch embedding): half the time of the convolution's forward + backward on CPU
        patches = x.reshape(B, C, grid[0], p, grid[1], p).permute(0, 2, 4, 1, 3, 5)
        tokens = F.linear(patches.reshape(B, grid[0] * grid[1], C * p * p),
                          self.proj.weight.reshape(self.proj.out_channels, -1), self.proj.bias)
        return tokens, grid  # (B, N, dim)


def check_divisible(img_size: tuple[int, int], patch_size: int) -> None:
    """Raise a clear :class:`~lkca.errors.InvalidArgumentError` unless both image sides are
    positive multiples of the patch."""
    if patch_size <= 0 or any(s <= 0 or s % patch_size for s in img_size):
        raise InvalidArgumentError(
            f"image size {img_size[0]}x{img_size[1]} is not divisible by the patch size "
            f"{patch_size}; resize or crop the images to a multiple of {patch_size}, or choose "
            "another patch_size"
        )
