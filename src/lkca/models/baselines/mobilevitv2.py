"""The paper's MobileViTv2-T / -S (Table 4) and MobileViTv2 (Table 5) as the paper's authors build
them: vit-pytorch's MobileViT (Mehta & Rastegari 2021, arXiv 2110.02178) with each row's widths
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet ``models/mbvit.py``; shapes
``mbv2-t``, ``mbv2-s``, ``mbv2`` in ``models/create_model.py``).

A 3x3 stride-2 stem, seven MobileNetV2 inverted-residual blocks (expansion 4) of which four
halve the map, three MobileViT blocks (local 3x3 conv, 1x1 conv to the transformer width,
transformer blocks of 4 heads of 8 over the map's pixels, 1x1 conv back, concatenation with the
block's input and a 3x3 fusion conv), a 1x1 conv, global average pooling and a linear head
without bias. BatchNorm and SiLU after every conv except the blocks' last projections.

As the authors' file, unlike MobileViTv2's paper (arXiv 2206.02680): MobileViT (v1)'s blocks, with
multi-head self-attention (not separable attention) over 1x1 patches, 2 / 4 / 3 transformer
blocks with MLP ratio 2 / 4 / 4, and the rows' channel lists; every map is pooled to 1x1 by
global averaging (the authors' ``AvgPool2d(img_size // 32)`` is the same at 32x32 and 64x64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lkca.layers.input_checks import check_images
from lkca.models.baselines.factory import build, paper_row
from lkca.models.baselines.vit_pytorch_blocks import (
    FeedForward,
    MultiHeadAttention,
    TransformerBlock,
)
from lkca.models.registry import register_model


@dataclass
class MobileViTConfig:
    """MobileViT hyper-parameters as the authors' rows give them.

    ``channels`` (11 values, vit-pytorch's list): stem, then the inverted residuals' outputs
    (c1 .. c8, where c3 = c2, c5 = c4, c7 = c6, c9 = c8 as the blocks chain), the head conv's
    output c10. ``dims``: the three MobileViT blocks' transformer widths.
    """

    img_size: int = 32
    in_chans: int = 3
    num_classes: int = 10
    dims: tuple[int, ...] = (54, 60, 72)
    channels: tuple[int, ...] = (10, 20, 36, 36, 54, 54, 72, 72, 94, 94, 384)
    depths: tuple[int, ...] = (2, 4, 3)
    mlp_ratios: tuple[int, ...] = (2, 4, 4)
    expansion: int = 4
    num_heads: int = 4
    dim_head: int = 8
    # the authors' create_model passes no stochastic depth to MobileViT (configs set drop_path: 0)
    drop_path_rate: float = 0.0


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1,
                act: bool = True) -> nn.Sequential:
    """Conv (no bias, padding 1 for 3x3), BatchNorm, SiLU (unless ``act=False``)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                               nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.SiLU()) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise (stride), 1x1 project (no activation);
    residual when the shape is kept. (B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.expand = conv_bn_act(c_in, hidden, 1)
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.SiLU())
        self.project = conv_bn_act(hidden, c_out, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class MobileViTBlock(nn.Module):
    """Local 3x3 conv, 1x1 to ``dim``, transformer over the map's pixels, 1x1 back, fusion with
    the input by a 3x3 conv. (B, channels, H, W) -> same."""

    def __init__(self, channels: int, dim: int, depth: int, mlp_dim: int, cfg: MobileViTConfig):
        super().__init__()
        self.local = conv_bn_act(channels, channels, 3)
        self.to_tokens = conv_bn_act(channels, dim, 1)
        self.blocks = nn.ModuleList(
            TransformerBlock(MultiHeadAttention(dim, cfg.num_heads, cfg.dim_head),
                             FeedForward(dim, mlp_dim, act=nn.SiLU), cfg.drop_path_rate)
            for _ in range(depth))
        self.from_tokens = conv_bn_act(dim, channels, 1)
        self.fuse = conv_bn_act(2 * channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.to_tokens(self.local(x))
        B, D, H, W = y.shape
        t = y.flatten(2).transpose(1, 2)  # (B, H*W, dim): one token per pixel (1x1 patches)
        for block in self.blocks:
            t = block(t)
        y = self.from_tokens(t.transpose(1, 2).reshape(B, D, H, W))
        return self.fuse(torch.cat([y, x], dim=1))


class MobileViT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes)."""

    def __init__(self, cfg: MobileViTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or MobileViTConfig(**kwargs)
        c = cfg.channels
        per_block = {len(cfg.dims), len(cfg.depths), len(cfg.mlp_ratios)}
        if len(c) != 11 or any(c[i] != c[i + 1] for i in (2, 4, 6, 8)) or per_block != {3}:
            raise ValueError(f"MobileViT: channels needs 11 values with c3 = c2, c5 = c4, "
                             f"c7 = c6, c9 = c8, and dims, depths, mlp_ratios 3 values each; "
                             f"got {c}, {cfg.dims}, {cfg.depths}, {cfg.mlp_ratios}")
        self.cfg = cfg
        e = cfg.expansion
        self.stem = conv_bn_act(cfg.in_chans, c[0], 3, stride=2)
        # (in, out, stride) of the inverted residuals, and after which a MobileViT block follows
        self.mv2 = nn.ModuleList(InvertedResidual(i, o, s, e) for i, o, s in [
            (c[0], c[1], 1), (c[1], c[2], 2), (c[2], c[3], 1), (c[3], c[3], 1), (c[3], c[4], 2),
            (c[5], c[6], 2), (c[7], c[8], 2)])
        self.mvit = nn.ModuleList(
            MobileViTBlock(c[5 + 2 * i], d, n, d * r, cfg)
            for i, (d, n, r) in enumerate(zip(cfg.dims, cfg.depths, cfg.mlp_ratios)))
        self.head_conv = conv_bn_act(c[9], c[10], 1)
        self.head = nn.Linear(c[10], cfg.num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "MobileViT")
        x = self.stem(x)
        for block in self.mv2[:5]:
            x = block(x)
        x = self.mvit[0](x)
        x = self.mvit[1](self.mv2[5](x))
        x = self.mvit[2](self.mv2[6](x))
        return self.head(self.head_conv(x).mean((2, 3)))


@register_model("mobilevitv2_t_cifar", aliases=("mobilevitv2_t",),
                paper=paper_row("MobileViTv2-T", 1.00e6, 7.43e6, "Table 4"))
def mobilevitv2_t_cifar(**overrides: Any) -> MobileViT:
    """MobileViTv2-T (paper Table 4: 1.00M params, 7.43M MACs at 32x32, 10 classes): the
    authors' ``mbv2-t`` (create_model.py:104): dims (54, 60, 72), channels (10, 20, 36, 36, 54,
    54, 72, 72, 94, 94, 384)."""
    return build(MobileViT, MobileViTConfig(
        dims=(54, 60, 72), channels=(10, 20, 36, 36, 54, 54, 72, 72, 94, 94, 384)), overrides)


@register_model("mobilevitv2_s_cifar", aliases=("mobilevitv2_s",),
                paper=paper_row("MobileViTv2-S", 3.92e6, 24.55e6, "Table 4"))
def mobilevitv2_s_cifar(**overrides: Any) -> MobileViT:
    """MobileViTv2-S (paper Table 4: 3.92M params, 24.55M MACs at 32x32, 10 classes): the
    authors' ``mbv2-s`` (create_model.py:109): dims (144, 180, 224), channels (24, 48, 54, 54,
    72, 72, 108, 108, 120, 120, 384)."""
    return build(MobileViT, MobileViTConfig(
        dims=(144, 180, 224), channels=(24, 48, 54, 54, 72, 72, 108, 108, 120, 120, 384)),
        overrides)


@register_model("mobilevitv2_b_tiny", aliases=("mobilevitv2_b",),
                paper=paper_row("MobileViTv2", 8.17e6, 189.77e6, "Table 5", img_size=64,
                                num_classes=200))
def mobilevitv2_b_tiny(**overrides: Any) -> MobileViT:
    """MobileViTv2 of Table 5 (8.17M params, 189.77M MACs at 64x64, 200 classes): the authors'
    ``mbv2`` (create_model.py:114): dims (224, 302, 324), channels (48, 53, 72, 72, 80, 80, 120,
    120, 156, 156, 384)."""
    return build(MobileViT, MobileViTConfig(
        dims=(224, 302, 324), channels=(48, 53, 72, 72, 80, 80, 120, 120, 156, 156, 384),
        img_size=64, num_classes=200), overrides)
