"""Decode heads in native PyTorch, as MMSegmentation's ``UPerHead``, ``FCNHead``, ``FPN`` neck and
``FPNHead`` (paper section 4.2: UperNet and semantic FPN).

Every head maps a list of pyramid maps (strides 4, 8, 16, 32) to logits (B, num_classes, H / 4,
W / 4) (the FCN auxiliary head: at its input level's stride). ``ConvModule`` is conv (no bias) +
BatchNorm + ReLU as MMSegmentation's with ``norm_cfg=BN``; ``cls_seg`` is Dropout2d(0.1) and a 1x1
conv initialised N(0, 0.01).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False) to ``size`` = (h, w); no-op when already that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ConvModule(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU: (B, in, h, w) -> (B, out, h', w')."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1, padding: int = 0) -> None:
        conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding, bias=False)
        super().__init__(conv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")


class ClsSeg(nn.Sequential):
    """Dropout2d then 1x1 conv to class logits: (B, channels, h, w) -> (B, num_classes, h, w)."""

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        conv = nn.Conv2d(channels, num_classes, 1)
        super().__init__(nn.Dropout2d(dropout), conv)
        nn.init.normal_(conv.weight, std=0.01)
        nn.init.zeros_(cast(torch.Tensor, conv.bias))  # bias=True


class PPM(nn.Module):
    """Pyramid pooling: (B, C, h, w) -> list of (B, channels, h, w), one per pool scale."""

    def __init__(self, pool_scales: Sequence[int], in_ch: int, channels: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(in_ch, channels)) for s in pool_scales
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.training and x.shape[0] == 1 and any(
                type(m) is nn.BatchNorm2d for m in self.stages[0].modules()):
            # the 1x1-pooled branch would batch-normalise a single value per channel
            raise ValueError(
                "UperNet's pyramid pooling normalises over the batch: train with at least 2 images "
                "per device (or convert to SyncBatchNorm under DDP), or call .eval() for inference"
            )
        return [resize(stage(x), x.shape[-2:]) for stage in self.stages]


class UPerHead(nn.Module):
    """UperNet: PPM on the last level + FPN fusion of all levels.

    ``forward(feats)``: list of 4 maps (B, in_channels[i], h_i, w_i), finest first -> logits
    (B, num_classes, h_0, w_0).
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int = 512,
                 pool_scales: Sequence[int] = (1, 2, 3, 6), dropout: float = 0.1) -> None:
        super().__init__()
        self.in_channels, self.channels = list(in_channels), channels
        top = self.in_channels[-1]
        self.psp_modules = PPM(pool_scales, top, channels)
        self.bottleneck = ConvModule(top + len(pool_scales) * channels, channels, 3, padding=1)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels) for c in self.in_channels[:-1])
        self.fpn_convs = nn.ModuleList(
            ConvModule(channels, channels, 3, padding=1) for _ in self.in_channels[:-1]
        )
        self.fpn_bottleneck = ConvModule(len(self.in_channels) * channels, channels, 3, padding=1)
        self.cls_seg = ClsSeg(channels, num_classes, dropout)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        top = feats[-1]
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, feats)]
        laterals.append(self.bottleneck(torch.cat([top, *self.psp_modules(top)], dim=1)))
        for i in range(len(laterals) - 1, 0, -1):  # top-down path
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[-2:])
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals)] + [laterals[-1]]
        size = outs[0].shape[-2:]
        fused = self.fpn_bottleneck(torch.cat([resize(o, size) for o in outs], dim=1))  # (B, ch, h0, w0)
        return self.cls_seg(fused)


class FCNHead(nn.Module):
    """Auxiliary FCN head on one level: 3x3 ConvModule(s) -> cls_seg.

    ``forward(feats)`` reads ``feats[in_index]`` (B, in_ch, h, w) -> (B, num_classes, h, w).
    ``loss_weight`` (0.4 as MMSegmentation's UperNet configs) scales its loss in the segmentor.
    """

    def __init__(self, in_ch: int, num_classes: int, channels: int = 256, num_convs: int = 1,
                 in_index: int = 2, loss_weight: float = 0.4, dropout: float = 0.1) -> None:
        super().__init__()
        self.in_index, self.loss_weight = in_index, loss_weight
        self.convs = nn.Sequential(
            *(ConvModule(in_ch if i == 0 else channels, channels, 3, padding=1) for i in range(num_convs))
        )
        self.cls_seg = ClsSeg(channels, num_classes, dropout)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.cls_seg(self.convs(feats[self.in_index]))


class FPN(nn.Module):
    """FPN neck (MMSegmentation's ``FPN``, no norm): 1x1 laterals, top-down sum (nearest, x2 or
    to size), 3x3 output convs; list of (B, C_i, h_i, w_i) -> list of (B, out_channels, h_i, w_i).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels
        )
        for conv in [*self.lateral_convs, *self.fpn_convs]:
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, feats)]
        for i in range(len(laterals) - 1, 0, -1):
            up = F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
            laterals[i - 1] = laterals[i - 1] + up
        return [conv(x) for conv, x in zip(self.fpn_convs, laterals)]


class FPNHead(nn.Module):
    """Semantic FPN head: level i (stride s_i) goes through max(1, log2(s_i / s_0)) 3x3 ConvModules,
    each followed by a x2 bilinear upsample while above the finest stride; the levels are summed.

    ``forward(feats)``: list of (B, in_ch, h_i, w_i) -> (B, num_classes, h_0, w_0).
    """

    def __init__(self, in_ch: int, num_classes: int, channels: int = 128,
                 feature_strides: Sequence[int] = (4, 8, 16, 32), dropout: float = 0.1) -> None:
        super().__init__()
        self.scale_heads = nn.ModuleList()
        for stride in feature_strides:
            n = max(1, (stride // feature_strides[0]).bit_length() - 1)
            layers: list[nn.Module] = []
            for k in range(n):
                layers.append(ConvModule(in_ch if k == 0 else channels, channels, 3, padding=1))
                if stride != feature_strides[0]:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*layers))
        self.cls_seg = ClsSeg(channels, num_classes, dropout)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        out = self.scale_heads[0](feats[0])
        for head, x in zip(self.scale_heads[1:], feats[1:]):
            out = out + resize(head(x), out.shape[-2:])  # odd sides: the x2 path may be off by one
        return self.cls_seg(out)


class SemanticFPN(nn.Module):
    """FPN neck (``fpn_channels``, 256) then :class:`FPNHead` (``channels``, 128): pyramid ->
    logits (B, num_classes, h_0, w_0)."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int = 128,
                 fpn_channels: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.fpn = FPN(in_channels, fpn_channels)
        self.head = FPNHead(fpn_channels, num_classes, channels, dropout=dropout)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.head(self.fpn(feats))
