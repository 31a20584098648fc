"""ResNet-50 segmentation backbone (He et al. 2016), the paper's Table 7 ResNet-50 row.

MMSegmentation's UperNet R-50 uses ``ResNetV1c``: the 7x7 stem conv replaced by three 3x3 convs
(3 -> 32 -> 32 -> 64, the first with stride 2), then 3x3 max-pool stride 2; bottleneck blocks
(1x1 reduce, 3x3 with the stride, 1x1 expand x4, BatchNorm + ReLU) in stages of [3, 4, 6, 3]
blocks with 256, 512, 1024, 2048 output channels, the downsampling projection (1x1 conv + BN) on
the first block of each stage. Strides (1, 2, 2, 2), no dilation: the four stage outputs are at
strides 4, 8, 16, 32, so no neck is needed. ``deep_stem=False`` gives the original 7x7 stem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def _conv_bn(in_ch: int, out_ch: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(out_ch)]


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 (x4 channels), residual: (B, in, h, w) -> (B, 4 * width, h/s, w/s)."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        last = _conv_bn(width, out_ch, 1)
        self.body = nn.Sequential(
            *_conv_bn(in_ch, width, 1), nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3, stride), nn.ReLU(inplace=True),  # stride on the 3x3 (V1b+)
            *last,
        )
        bn = last[1]
        assert isinstance(bn, nn.BatchNorm2d)
        nn.init.zeros_(bn.weight)  # zero-init the last BN (MMSeg's zero_init_residual): identity blocks
        self.downsample = (nn.Sequential(*_conv_bn(in_ch, out_ch, 1, stride))
                           if stride != 1 or in_ch != out_ch else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.downsample(x))


class ResNetBackbone(nn.Module):
    """Images (B, in_chans, H, W), H and W multiples of 32 -> 4 maps (B, 256 * 2**i, H / 4 / 2**i,
    W / 4 / 2**i), i = 0..3 (strides 4, 8, 16, 32)."""

    patch_size = 32  # the coarsest stride: the segmentor pads inputs to a multiple of it

    def __init__(self, depths: Sequence[int] = (3, 4, 6, 3), widths: Sequence[int] = (64, 128, 256, 512),
                 in_chans: int = 3, deep_stem: bool = True, stem_channels: int = 64) -> None:
        super().__init__()
        if deep_stem:
            half = stem_channels // 2
            stem = [*_conv_bn(in_chans, half, 3, 2), nn.ReLU(inplace=True),
                    *_conv_bn(half, half, 3), nn.ReLU(inplace=True),
                    *_conv_bn(half, stem_channels, 3), nn.ReLU(inplace=True)]
        else:
            stem = [*_conv_bn(in_chans, stem_channels, 7, 2), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem, nn.MaxPool2d(3, stride=2, padding=1))
        self.stages = nn.ModuleList()
        in_ch = stem_channels
        for i, (depth, width) in enumerate(zip(depths, widths)):
            blocks = [Bottleneck(in_ch if j == 0 else width * 4, width, 2 if i > 0 and j == 0 else 1)
                      for j in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
            in_ch = width * 4
        self.out_channels = [w * Bottleneck.expansion for w in widths]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(images)  # (B, 64, H / 4, W / 4)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


def resnet50_seg(img_size: int | None = None, **overrides: Any) -> ResNetBackbone:
    """ResNet-50 (V1c, MMSegmentation's UperNet R-50 backbone): 23.53M parameters.

    ``img_size`` (the ViT grid the seg engine passes) is unused: any multiple of 32 is taken.
    """
    return ResNetBackbone(**overrides)
