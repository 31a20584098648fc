"""Multi-level neck: four stride-16 ViT maps -> a pyramid of strides 4, 8, 16, 32.

MMSegmentation's ``MultiLevelNeck`` (the neck of its ViT / DeiT UperNet configs,
``configs/_base_/models/upernet_vit-b16_ln_mln.py`` lines 25-29) is: a 1x1 lateral conv per level
to ``out_channels``, a resize of level i by ``scales[i]`` (bilinear), then a 3x3 conv per level.
That is the default here (``resample="bilinear"``): the paper ran MMSegmentation, and with this
neck our UperNet totals land on its Table 6-7 parameter counts (docs/segmentation.md, section 5).
``resample="deconv"`` is the option that resamples as BEiT / MMSegmentation's ``Feature2Pyramid``:

- x4: ConvTranspose2d(2, stride 2) -> BatchNorm -> GELU -> ConvTranspose2d(2, stride 2)
- x2: ConvTranspose2d(2, stride 2)
- x1: identity
- x0.5: MaxPool2d(2, stride 2)

Both keep ``MultiLevelNeck``'s 1x1 lateral and 3x3 output convs (plain convs with bias, no norm
or activation, Xavier init).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

RESAMPLE_MODES = ("deconv", "bilinear")


def _deconv_resampler(scale: float, channels: int) -> nn.Module:
    if scale == 4:
        return nn.Sequential(
            nn.ConvTranspose2d(channels, channels, 2, stride=2),
            nn.BatchNorm2d(channels),
            nn.GELU(),
            nn.ConvTranspose2d(channels, channels, 2, stride=2),
        )
    if scale == 2:
        return nn.ConvTranspose2d(channels, channels, 2, stride=2)
    if scale == 1:
        return nn.Identity()
    if scale == 0.5:
        return nn.MaxPool2d(2, stride=2)
    if scale == 0.25:
        return nn.MaxPool2d(4, stride=4)
    raise ValueError(f"MultiLevelNeck: resample='deconv' supports scales 4, 2, 1, 0.5, 0.25, got {scale}")


class _Bilinear(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class MultiLevelNeck(nn.Module):
    """Lateral 1x1 conv, resample by ``scales[i]``, 3x3 conv: list of (B, C_i, h, w) ->
    list of (B, out_channels, h * s_i, w * s_i) (max-pool floors odd sides).

    Args:
        in_channels: channels of each input level (ViT-S: [384] * 4).
        out_channels: channels of every output level (MMSegmentation's ViT-S configs: 384).
        scales: resampling factor per level; (4, 2, 1, 0.5) turns stride 16 into 4, 8, 16, 32.
        resample: "bilinear" (MultiLevelNeck, the default) or "deconv" (Feature2Pyramid-style).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        scales: Sequence[float] = (4, 2, 1, 0.5),
        resample: str = "bilinear",
    ) -> None:
        super().__init__()
        if len(in_channels) != len(scales):
            raise ValueError(f"MultiLevelNeck: {len(in_channels)} input levels but {len(scales)} scales")
        if resample not in RESAMPLE_MODES:
            raise ValueError(f"MultiLevelNeck: resample must be one of {RESAMPLE_MODES}, got {resample!r}")
        self.in_channels, self.out_channels = list(in_channels), out_channels
        self.scales, self.resample = tuple(scales), resample
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.resamplers = nn.ModuleList(
            _deconv_resampler(s, out_channels) if resample == "deconv" else _Bilinear(s)
            for s in scales
        )
        self.convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in scales)
        for conv in [*self.lateral_convs, *self.convs]:
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats) != len(self.lateral_convs):
            raise ValueError(f"MultiLevelNeck: expected {len(self.lateral_convs)} maps, got {len(feats)}")
        return [
            conv(resample(lateral(x)))
            for x, lateral, resample, conv in zip(feats, self.lateral_convs, self.resamplers, self.convs)
        ]
