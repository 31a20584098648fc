"""Twins-SVT, "Twins: Revisiting the Design of Spatial Attention in Vision Transformers" (Chu et
al. 2021, arXiv 2104.13840), as the paper's authors build it.

The paper's Twins_SVT-S / Twins_SVT-B (Table 5) come from the authors' ``models/twins_svt.py``
(the vit-pytorch TwinsSVT) with the shapes of their ``models/create_model.py`` (``twinssvt-s``,
``twinssvt-b``). Everything runs on (B, C, H, W) maps, normalised over channels. Four stages,
each:

- patch merging: the pixels of each 2x2 patch stacked as channels, channel LayerNorm, 1x1 conv
  to the stage width, channel LayerNorm;
- one Twins block, a PEG (x + depthwise 3x3 conv), then ``depth`` Twins blocks.

A Twins block is four residual branches, each pre-normed: locally-grouped attention (LSA, within
``local_window`` x ``local_window`` windows), a feed-forward (1x1 convs, ratio 4), global
sub-sampled attention (GSA: keys / values from a ``global_k`` x ``global_k`` / stride
``global_k`` conv), a feed-forward; the last stage has only the GSA and its feed-forward. Every
attention has 8 heads of 64 channels whatever the stage width, queries / keys / values without
bias. The last map is average-pooled and classified (no final norm).

Where the authors' code cannot run (maps smaller than a window or a stride, e.g. the third
stage's 4x4 map at 32x32 input under an 8x8 window), a window or kernel larger than the map is
cut to the map and a map smaller than the patch is zero-padded; at 64x64 none of this happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import DropPath
from lkca.layers.input_checks import check_images
from lkca.models.baselines.common import check_stages
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model


@dataclass
class TwinsConfig:
    """Twins-SVT hyper-parameters, one value per stage where a tuple (four stages)."""

    img_size: int = 64  # any input runs; kept for the registry's common fields
    in_chans: int = 3
    num_classes: int = 200
    dims: tuple[int, ...] = (16, 16, 24, 48)
    depths: tuple[int, ...] = (1, 1, 2, 1)
    patch_size: int = 2  # every stage's patch merging (create_model: s*_patch_size = 2)
    local_window: int = 8  # create_model: s*_local_patch_size = 8
    global_k: int = 3  # create_model: s*_global_k = 3
    heads: int = 8  # twins_svt.py's attention defaults, which create_model keeps
    dim_head: int = 64
    mlp_ratio: int = 4
    peg_kernel: int = 3
    drop_path_rate: float = 0.0  # create_model passes no stochastic depth to Twins-SVT


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map (biased variance, eps 1e-5)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, 1e-5)
        return x.permute(0, 3, 1, 2)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, heads * d, h, w) -> (B, heads, h * w, d)."""
    return x.flatten(2).unflatten(1, (heads, -1)).transpose(-2, -1)


class LocallyGroupedAttention(nn.Module):
    """LSA: channel norm, then self-attention inside window x window windows (a window larger
    than the map is cut to it). (B, dim, H, W) -> same."""

    def __init__(self, dim: int, heads: int, dim_head: int, window: int) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.norm = ChannelNorm(dim)
        self.q = nn.Conv2d(dim, heads * dim_head, 1, bias=False)
        self.kv = nn.Conv2d(dim, 2 * heads * dim_head, 1, bias=False)
        self.proj = nn.Conv2d(heads * dim_head, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        wh, ww = min(self.window, H), min(self.window, W)
        if H % wh or W % ww:
            raise ValueError(f"Twins-SVT: a {H}x{W} map does not split into {wh}x{ww} windows; "
                             "use an input whose stage maps are multiples of local_window")
        x = self.norm(x).reshape(B, C, H // wh, wh, W // ww, ww).permute(0, 2, 4, 1, 3, 5)
        x = x.reshape(-1, C, wh, ww)  # (B * windows, C, wh, ww)
        q, k, v = (_heads(t, self.heads) for t in (self.q(x), *self.kv(x).chunk(2, dim=1)))
        out = F.scaled_dot_product_attention(q, k, v)  # (B * windows, heads, wh * ww, d)
        out = out.transpose(-2, -1).reshape(B, H // wh, W // ww, -1, wh, ww)
        return self.proj(out.permute(0, 3, 1, 4, 2, 5).reshape(B, -1, H, W))


class GlobalSubsampledAttention(nn.Module):
    """GSA: channel norm, queries from every position, keys / values from a k x k / stride-k conv
    (a kernel larger than the map is cut to it). (B, dim, H, W) -> same."""

    def __init__(self, dim: int, heads: int, dim_head: int, k: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = ChannelNorm(dim)
        self.q = nn.Conv2d(dim, heads * dim_head, 1, bias=False)
        self.kv = nn.Conv2d(dim, 2 * heads * dim_head, k, stride=k, bias=False)
        self.proj = nn.Conv2d(heads * dim_head, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        x = self.norm(x)
        k = self.kv.kernel_size[0]
        if H >= k and W >= k:
            kv = self.kv(x)
        else:  # smaller than the authors' code runs on: the kernel cut to the map
            kh, kw = min(k, H), min(k, W)
            kv = F.conv2d(x, self.kv.weight[:, :, :kh, :kw], stride=(kh, kw))
        q, keys, v = (_heads(t, self.heads) for t in (self.q(x), *kv.chunk(2, dim=1)))
        out = F.scaled_dot_product_attention(q, keys, v)  # (B, heads, H * W, d)
        return self.proj(out.transpose(-2, -1).reshape(B, -1, H, W))


class FeedForward(nn.Module):
    """Channel norm, 1x1 conv, GELU, 1x1 conv: (B, dim, H, W) -> same."""

    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        self.norm = ChannelNorm(dim)
        self.fc1 = nn.Conv2d(dim, dim * ratio, 1)
        self.act = nn.GELU()  # a module, as the authors' (ptflops counts it twice)
        self.fc2 = nn.Conv2d(dim * ratio, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TwinsBlock(nn.Module):
    """x + LSA(x), x + FF(x) (not in the last stage), then x + GSA(x), x + FF(x)."""

    def __init__(self, dim: int, cfg: TwinsConfig, local: bool) -> None:
        super().__init__()
        self.local_attn = (LocallyGroupedAttention(dim, cfg.heads, cfg.dim_head, cfg.local_window)
                           if local else None)
        self.local_ff = FeedForward(dim, cfg.mlp_ratio) if local else None
        self.global_attn = GlobalSubsampledAttention(dim, cfg.heads, cfg.dim_head, cfg.global_k)
        self.global_ff = FeedForward(dim, cfg.mlp_ratio)
        self.drop_path = DropPath(cfg.drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.local_attn is not None and self.local_ff is not None:  # both or neither
            x = x + self.drop_path(self.local_attn(x))
            x = x + self.drop_path(self.local_ff(x))
        x = x + self.drop_path(self.global_attn(x))
        return x + self.drop_path(self.global_ff(x))


class PatchMerging(nn.Module):
    """Each patch x patch block's pixels as channels (zero-padding a map smaller than the
    patch), channel norm, 1x1 conv, channel norm: (B, C, H, W) -> (B, dim, H/p, W/p)."""

    def __init__(self, in_dim: int, dim: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.norm_in = ChannelNorm(in_dim * patch**2)
        self.proj = nn.Conv2d(in_dim * patch**2, dim, 1)
        self.norm_out = ChannelNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch
        x = F.pad(x, (0, max(0, p - x.shape[-1]), 0, max(0, p - x.shape[-2])))
        return self.norm_out(self.proj(self.norm_in(F.pixel_unshuffle(x, p))))  # (c, i, j)


class TwinsStage(nn.Module):
    """Patch merging, one Twins block, PEG, ``depth`` Twins blocks."""

    def __init__(self, in_dim: int, dim: int, depth: int, cfg: TwinsConfig, last: bool) -> None:
        super().__init__()
        self.merge = PatchMerging(in_dim, dim, cfg.patch_size)
        self.first = TwinsBlock(dim, cfg, local=not last)
        k = cfg.peg_kernel
        self.peg = nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)
        self.blocks = nn.ModuleList(TwinsBlock(dim, cfg, local=not last) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(self.merge(x))
        x = x + self.peg(x)
        for block in self.blocks:
            x = block(x)
        return x


class TwinsSVT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the pooled last map."""

    def __init__(self, cfg: TwinsConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or TwinsConfig(**kwargs)
        check_stages("Twins-SVT", cfg, "dims", "depths")
        self.cfg = cfg
        ins = (cfg.in_chans, *cfg.dims[:-1])
        n = len(cfg.dims)
        self.stages = nn.ModuleList(TwinsStage(a, b, d, cfg, last=i == n - 1)
                                    for i, (a, b, d) in enumerate(zip(ins, cfg.dims, cfg.depths)))
        self.pool = nn.AdaptiveAvgPool2d(1)  # a module, as the authors' (ptflops counts it twice)
        self.head = nn.Linear(cfg.dims[-1], cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "TwinsSVT")
        for stage in self.stages:
            x = stage(x)
        return self.head(self.pool(x).flatten(1))


# The shapes: the authors' models/create_model.py, rows 'twinssvt-s' and 'twinssvt-b' (every
# stage: patch 2, local window 8, global k 3; PEG kernel 3).


@register_model("twins_svt_s_tiny", aliases=("twins_svt_s",),
                paper=paper_row("Twins_SVT-S", 2.76e6, 197.00e6, "Table 5", 64, 200))
def twins_svt_s_tiny(**overrides: Any) -> TwinsSVT:
    """Twins_SVT-S (paper Table 5: 2.76M params, 197.00M MACs at 64x64, 200 classes).

    The authors' ``twinssvt-s``: widths (16, 16, 24, 48), depths (1, 1, 2, 1).
    """
    return build(TwinsSVT, TwinsConfig(dims=(16, 16, 24, 48), depths=(1, 1, 2, 1)), overrides)


@register_model("twins_svt_b_tiny", aliases=("twins_svt_b",),
                paper=paper_row("Twins_SVT-B", 9.04e6, 308.74e6, "Table 5", 64, 200))
def twins_svt_b_tiny(**overrides: Any) -> TwinsSVT:
    """Twins_SVT-B (paper Table 5: 9.04M params, 308.74M MACs at 64x64, 200 classes).

    The authors' ``twinssvt-b``: widths (16, 32, 64, 128), depths (1, 1, 3, 2).
    """
    return build(TwinsSVT, TwinsConfig(dims=(16, 32, 64, 128), depths=(1, 1, 3, 2)), overrides)
