"""Swin-S segmentation backbone (Liu et al. 2021), the paper's Table 7 Swin-S row.

The blocks are those of the classification Swin (:mod:`lkca.models.baselines.swin`: shifted
window attention with relative position bias, patch merging); the segmentation layout is
MMSegmentation's ``SwinTransformer``: 4x4 patch embedding + LayerNorm, embed dim 96, depths
(2, 2, 18, 2), heads (3, 6, 12, 24), window 7 at every stage (grids padded to window multiples,
as Swin's detection/segmentation code), MLP ratio 4, drop-path 0.3, and a LayerNorm on each of
the four stage outputs (strides 4, 8, 16, 32), so no neck is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lkca.layers import PatchEmbed
from lkca.models.baselines import common
from lkca.models.baselines.swin import PatchMerging, SwinBlock
from lkca.models.vit import init_weights


class SwinBackbone(nn.Module):
    """Images (B, in_chans, H, W), H and W multiples of 32 -> 4 maps (B, embed_dim * 2**i,
    H / 4 / 2**i, W / 4 / 2**i), i = 0..3."""

    patch_size = 32  # the coarsest stride: the segmentor pads inputs to a multiple of it

    def __init__(self, embed_dim: int = 96, depths: Sequence[int] = (2, 2, 18, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), window_size: int = 7,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path_rate: float = 0.3,
                 in_chans: int = 3) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"Swin: depths {tuple(depths)} and num_heads {tuple(num_heads)} "
                             "differ in length; give one head count per stage")
        self.patch_embed = PatchEmbed(4, 4, in_chans, embed_dim)  # any multiple of 4 at run time
        self.embed_norm = nn.LayerNorm(embed_dim)
        rates = common.drop_path_rates(drop_path_rate, tuple(depths))
        self.stages, self.merges, self.out_norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        dim = embed_dim
        self.out_channels: list[int] = []
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            self.stages.append(nn.ModuleList(
                SwinBlock(dim, heads, window_size, window_size // 2 if j % 2 else 0, mlp_ratio,
                          qkv_bias, rates[i][j]) for j in range(depth)))
            self.out_norms.append(nn.LayerNorm(dim))
            self.out_channels.append(dim)
            if i < len(depths) - 1:
                self.merges.append(PatchMerging(dim))
                dim *= 2
        self.apply(init_weights)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x, grid = self.patch_embed(images)  # (B, H/4 * W/4, C)
        x = self.embed_norm(x)
        outs = []
        for i, stage in enumerate(self.stages):
            assert isinstance(stage, nn.ModuleList)  # of SwinBlock
            for block in stage:
                x = block(x, grid)
            y = self.out_norms[i](x)
            outs.append(y.transpose(1, 2).reshape(y.shape[0], y.shape[2], *grid))  # (B, C, h, w)
            if i < len(self.merges):
                x, grid = self.merges[i](x, grid)
        return outs


def swin_s_seg(img_size: int | None = None, **overrides: Any) -> SwinBackbone:
    """Swin-S (embed 96, depths 2/2/18/2, heads 3/6/12/24, window 7): 48.8M parameters.

    ``img_size`` (the ViT grid the seg engine passes) is unused: any multiple of 32 is taken.
    """
    return SwinBackbone(**overrides)
