"""MobileViTv2, "Separable Self-attention for Mobile Vision Transformers" (Mehta & Rastegari 2022,
arXiv 2206.02680): the paper's MobileViTv2-T / -S (Table 4) and MobileViTv2 (Table 5).

A MobileNetV2 body (inverted residuals) whose last three stages each end in a MobileViTv2 block:
local 3x3 depthwise + 1x1 convolutions, then ``attn_blocks`` transformer blocks over 2x2-pixel
patches with *separable* self-attention (one context score per token, softmax over tokens,
linear in the token count), then a 1x1 projection back. Widths scale with a width multiplier
``width`` (alpha): stem 32a, stages 64a, 128a, 256a, 384a, 512a; attention dims 128a, 192a, 256a
with 2, 4, 3 blocks; FFN 2x; MobileNetV2 expansion 2 (the MobileViTv2 paper's architecture, as
its reference implementation ml-cvnets builds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import DropPath
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.registry import register_model


@dataclass
class MobileViTv2Config:
    """MobileViTv2 hyper-parameters; every width is the ImageNet width times ``width``."""

    img_size: int = 32  # any size works (the network is convolutional); kept for the registry
    in_chans: int = 3
    num_classes: int = 10
    width: float = 1.0
    ffn_multiplier: float = 2.0
    expand_ratio: float = 2.0
    attn_blocks: tuple[int, int, int] = (2, 4, 3)
    patch_size: int = 2
    drop_path_rate: float = 0.1  # on the transformer blocks (the paper trains without)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a width to a multiple of ``divisor`` without losing more than 10% (MobileNetV2)."""
    min_value = min_value or divisor
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1,
            act: bool = True) -> nn.Sequential:
    """Conv (no bias), BatchNorm, SiLU (if ``act``): (B, cin, H, W) -> (B, cout, H/s, W/s)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (stride), 1x1 project; residual if shapes keep."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = make_divisible(round(cin * expand_ratio), 8)
        self.block = nn.Sequential(
            conv_bn(cin, hidden, 1),
            conv_bn(hidden, hidden, 3, stride, groups=hidden),
            conv_bn(hidden, cout, 1, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class SeparableSelfAttention(nn.Module):
    """x (B, d, P, N): N patches of P pixels -> same. Cost linear in N.

    One 1x1 conv gives a query score (1 channel), keys and values (d each); the scores, softmaxed
    over the N patches, pool the keys into one context vector per pixel position, which scales
    ReLU(values) everywhere; a 1x1 conv projects the result.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.qkv = nn.Conv2d(dim, 1 + 2 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split([1, self.dim, self.dim], dim=1)
        scores = q.softmax(dim=-1)  # (B, 1, P, N)
        context = (k * scores).sum(dim=-1, keepdim=True)  # (B, d, P, 1)
        return self.proj(F.relu(v) * context)  # (B, d, P, N)


class LinearTransformerBlock(nn.Module):
    """Pre-norm separable attention and 1x1-conv FFN with residuals, on (B, d, P, N)."""

    def __init__(self, dim: int, ffn_dim: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim)  # LayerNorm over (d, P, N), as MobileViTv2
        self.attn = SeparableSelfAttention(dim)
        self.norm2 = nn.GroupNorm(1, dim)
        self.ffn = nn.Sequential(nn.Conv2d(dim, ffn_dim, 1), nn.SiLU(), nn.Conv2d(ffn_dim, dim, 1))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.ffn(self.norm2(x)))


class MobileViTv2Block(nn.Module):
    """Local conv representation, global separable attention over patches, 1x1 projection.

    x (B, C, H, W) -> (B, C, H', W'), H' and W' the sides rounded up to multiples of the patch
    (a smaller map is first resized bilinearly, as MobileViTv2 does).
    """

    def __init__(self, channels: int, attn_dim: int, ffn_dim: int, depth: int, patch: int,
                 drop_paths: list[float]) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Sequential(conv_bn(channels, channels, 3, groups=channels),
                                   nn.Conv2d(channels, attn_dim, 1, bias=False))
        self.blocks = nn.Sequential(
            *(LinearTransformerBlock(attn_dim, ffn_dim, drop_paths[i]) for i in range(depth)))
        self.norm = nn.GroupNorm(1, attn_dim)
        self.proj = conv_bn(attn_dim, channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, (H, W) = self.patch, x.shape[-2:]
        Hp, Wp = -(-H // p) * p, -(-W // p) * p
        if (Hp, Wp) != (H, W):
            x = F.interpolate(x, size=(Hp, Wp), mode="bilinear", align_corners=True)
        y = self.local(x)  # (B, d, Hp, Wp)
        B, d = y.shape[:2]
        patches = F.unfold(y, kernel_size=p, stride=p).reshape(B, d, p * p, -1)  # (B, d, P, N)
        patches = self.norm(self.blocks(patches))
        y = F.fold(patches.reshape(B, d * p * p, -1), (Hp, Wp), kernel_size=p, stride=p)
        return self.proj(y)  # (B, C, Hp, Wp)


class MobileViTv2(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes); global average pool, linear head."""

    def __init__(self, cfg: MobileViTv2Config | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or MobileViTv2Config(**kwargs)
        self.cfg = cfg
        a, e = cfg.width, cfg.expand_ratio
        stem = make_divisible(min(max(32 * a, 16), 64), 8, 16)
        chans = [make_divisible(64 * a, 16)] + [make_divisible(c * a) for c in (128, 256, 384, 512)]
        attn_dims = [make_divisible(c * a) for c in (128, 192, 256)]
        stage_rates = common.drop_path_rates(cfg.drop_path_rate, cfg.attn_blocks)
        layers: list[nn.Module] = [
            conv_bn(cfg.in_chans, stem, 3, 2),
            InvertedResidual(stem, chans[0], 1, e),
            InvertedResidual(chans[0], chans[1], 2, e),
            InvertedResidual(chans[1], chans[1], 1, e),
        ]
        cin = chans[1]
        for i, (cout, dim, depth) in enumerate(zip(chans[2:], attn_dims, cfg.attn_blocks)):
            ffn = make_divisible(dim * cfg.ffn_multiplier, 16)
            layers += [InvertedResidual(cin, cout, 2, e),
                       MobileViTv2Block(cout, dim, ffn, depth, cfg.patch_size,
                                        stage_rates[i])]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


# How the sizes were chosen: the network is the paper's ImageNet MobileViTv2 (at width 0.5, 1.0,
# 1.5 and 1000 classes ours has 1.37M, 4.90M, 10.59M parameters, the published counts) run on
# the small input as is (stem stride 2; the last stage's 1x1 map is resized to one 2x2 patch).
# The standard widths miss the paper's counts (0.5 gives 1.12M at CIFAR-10, 11% over 1.00M), so
# each size takes the width multiplier, in steps of 0.05 (0.01 for -T), whose count is nearest
# the paper's; tests hold it within +-5%. The MACs follow from the width (see docs/baselines.md).


@register_model("mobilevitv2_t_cifar", aliases=("mobilevitv2_t",),
                paper=paper_row("MobileViTv2-T", 1.00e6, 7.43e6, "Table 4"))
def mobilevitv2_t_cifar(**overrides: Any) -> MobileViTv2:
    """MobileViTv2-T (paper Table 4: 1.00M params, 7.43M MACs at 32x32, 10 classes).

    Width multiplier 0.47: 0.99M params, 7.96M MACs (0.46 gives 0.95M, 0.48 1.04M).
    """
    return build(MobileViTv2, MobileViTv2Config(width=0.47), overrides)


@register_model("mobilevitv2_s_cifar", aliases=("mobilevitv2_s",),
                paper=paper_row("MobileViTv2-S", 3.92e6, 24.55e6, "Table 4"))
def mobilevitv2_s_cifar(**overrides: Any) -> MobileViTv2:
    """MobileViTv2-S (paper Table 4: 3.92M params, 24.55M MACs at 32x32, 10 classes).

    Width multiplier 0.95: 3.95M params, 30.1M MACs (the paper's MACs would fit width ~0.85,
    whose 3.16M params are 19% short).
    """
    return build(MobileViTv2, MobileViTv2Config(width=0.95), overrides)


@register_model("mobilevitv2_b_tiny", aliases=("mobilevitv2_b",),
                paper=paper_row("MobileViTv2", 8.17e6, 189.77e6, "Table 5", img_size=64,
                                num_classes=200))
def mobilevitv2_b_tiny(**overrides: Any) -> MobileViTv2:
    """MobileViTv2 of Table 5 (8.17M params, 189.77M MACs at Tiny-ImageNet's 64x64, 200 classes).

    Width multiplier 1.35: 8.05M params, 203M MACs (1.3 gives 7.55M, 1.4 8.77M).
    """
    return build(MobileViTv2, MobileViTv2Config(width=1.35, img_size=64, num_classes=200),
                 overrides)
