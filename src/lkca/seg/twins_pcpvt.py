"""Twins-PCPVT-S segmentation backbone (Chu et al. 2021), the paper's Table 7 Twins_PCPVT-S row.

PCPVT is PVT with the absolute position embedding replaced by the positional encoding generator
(PEG, a 3x3 depthwise conv added to the tokens) after the first block of each stage. Per stage:
a patch embedding (conv, kernel = stride = 4 for the first stage and 2 after, + LayerNorm), then
pre-LN blocks of spatial-reduction attention (keys/values from the map sub-sampled ``sr`` times
by a strided conv + LayerNorm; Twins' global sub-sampled attention) and an MLP. PCPVT-S: dims
(64, 128, 320, 512), depths (3, 4, 6, 3), heads (1, 2, 5, 8), sr (8, 4, 2, 1), MLP ratios
(8, 8, 4, 4), drop-path 0.2 (as MMSegmentation's ``PCPVT`` with ``norm_after_stage=False``).
The four stage outputs are at strides 4, 8, 16, 32, so no neck is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import DropPath, Mlp
from lkca.models.baselines import common
from lkca.models.vit import init_weights


class GlobalSubsampledAttention(nn.Module):
    """GSA: queries from every token, keys/values from the map sub-sampled ``sr`` times.

    x (B, H*W, C), grid -> (B, H*W, C); ``sr == 1`` is plain global attention.
    """

    def __init__(self, dim: int, num_heads: int, sr: int, qkv_bias: bool = True) -> None:
        super().__init__()
        common.check_heads("PCPVT", dim, num_heads)
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.sr = nn.Conv2d(dim, dim, sr, stride=sr) if sr > 1 else None
        self.norm = nn.LayerNorm(dim) if sr > 1 else None

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        d = C // self.num_heads
        q = self.q(x).reshape(B, N, self.num_heads, d).transpose(1, 2)  # (B, heads, N, d)
        kv_in = x
        if self.sr is not None and self.norm is not None:  # both set when sr > 1, else neither
            kv_in = self.sr(x.transpose(1, 2).reshape(B, C, *grid)).flatten(2).transpose(1, 2)
            kv_in = self.norm(kv_in)  # (B, N / sr^2, C)
        k, v = self.kv(kv_in).reshape(B, -1, 2, self.num_heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class PEG(nn.Module):
    """Conditional position encoding: x + depthwise 3x3 conv of the token map. (B, N, C) -> same."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        return x + self.proj(x.transpose(1, 2).reshape(B, C, *grid)).flatten(2).transpose(1, 2)


class PVTBlock(nn.Module):
    """x + DropPath(SRA(LN(x))), then x + DropPath(MLP(LN(x))): (B, h*w, C), grid -> same."""

    def __init__(self, dim: int, num_heads: int, sr: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = GlobalSubsampledAttention(dim, num_heads, sr)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), grid))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ConvPatchEmbed(nn.Module):
    """Map (B, in, H, W) -> tokens (B, H/p * W/p, dim) (conv kernel = stride = p, LayerNorm), grid."""

    def __init__(self, in_ch: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)
        return self.norm(x.flatten(2).transpose(1, 2)), (x.shape[-2], x.shape[-1])


class PCPVTBackbone(nn.Module):
    """Images (B, in_chans, H, W), H and W multiples of 32 -> 4 maps (B, dims[i], H / 4 / 2**i,
    W / 4 / 2**i), i = 0..3."""

    patch_size = 32  # the coarsest stride: the segmentor pads inputs to a multiple of it

    def __init__(self, dims: Sequence[int] = (64, 128, 320, 512), depths: Sequence[int] = (3, 4, 6, 3),
                 num_heads: Sequence[int] = (1, 2, 5, 8), sr_ratios: Sequence[int] = (8, 4, 2, 1),
                 mlp_ratios: Sequence[float] = (8, 8, 4, 4), drop_path_rate: float = 0.2,
                 in_chans: int = 3) -> None:
        super().__init__()
        if not len(dims) == len(depths) == len(num_heads) == len(sr_ratios) == len(mlp_ratios):
            raise ValueError("PCPVT: dims, depths, num_heads, sr_ratios and mlp_ratios need one "
                             "entry per stage")
        rates = common.drop_path_rates(drop_path_rate, tuple(depths))
        self.embeds, self.stages, self.pegs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        in_ch = in_chans
        for i, dim in enumerate(dims):
            self.embeds.append(ConvPatchEmbed(in_ch, dim, 4 if i == 0 else 2))
            self.stages.append(nn.ModuleList(
                PVTBlock(dim, num_heads[i], sr_ratios[i], mlp_ratios[i], rates[i][j])
                for j in range(depths[i])))
            self.pegs.append(PEG(dim))
            in_ch = dim
        self.out_channels = list(dims)
        self.apply(init_weights)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x, outs = images, []
        for embed, stage, peg in zip(self.embeds, self.stages, self.pegs):
            t, grid = embed(x)  # (B, h*w, C)
            assert isinstance(stage, nn.ModuleList)  # of PVTBlock
            for j, block in enumerate(stage):
                t = block(t, grid)
                if j == 0:
                    t = peg(t, grid)  # position encoding generator after the first block
            x = t.transpose(1, 2).reshape(t.shape[0], t.shape[2], *grid)  # (B, C, h, w)
            outs.append(x)
        return outs


def twins_pcpvt_s_seg(img_size: int | None = None, **overrides: Any) -> PCPVTBackbone:
    """Twins-PCPVT-S (dims 64/128/320/512, depths 3/4/6/3): 23.6M parameters.

    ``img_size`` (the ViT grid the seg engine passes) is unused: any multiple of 32 is taken.
    """
    return PCPVTBackbone(**overrides)
