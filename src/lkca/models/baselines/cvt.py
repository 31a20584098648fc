"""CvT, "Introducing Convolutions to Vision Transformers" (Wu et al. 2021, arXiv 2103.15808).

The paper's CvT-B (Table 5) as the paper's authors build it
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet ``models/cvt.py``, vit-pytorch's
CvT; shape ``cvt-b`` in ``models/create_model.py``). Three stages, each a strided convolutional
token embedding (7x7 / stride 4, then 3x3 / stride 2) with a channel LayerNorm, then
transformer blocks on the 2-D map whose queries, keys and values are convolutional projections
(3x3 depthwise conv, BatchNorm, 1x1 conv; stride 2 for keys and values); global average
pooling and a linear head.

As the authors' file, unlike CvT's paper: no class token (the last map is averaged), every
head is 64 channels wide (inner width 64 x heads, not the stage width), no q/k/v bias, the
feed-forward and output projections are 1x1 convolutions on the map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers import DropPath
from lkca.layers.input_checks import check_images
from lkca.models.baselines import common
from lkca.models.baselines.factory import build, paper_row
from lkca.models.baselines.vit_pytorch_blocks import attend
from lkca.models.registry import register_model


@dataclass
class CvTConfig:
    """CvT hyper-parameters, one value per stage."""

    img_size: int = 64
    in_chans: int = 3
    num_classes: int = 200
    dims: tuple[int, ...] = (32, 96, 192)
    embed_kernels: tuple[int, ...] = (7, 3, 3)
    embed_strides: tuple[int, ...] = (4, 2, 2)
    num_heads: tuple[int, ...] = (1, 3, 6)
    depths: tuple[int, ...] = (1, 2, 10)
    dim_head: int = 64
    mlp_ratio: int = 4
    proj_kernel: int = 3
    kv_stride: int = 2
    # the authors' create_model passes no stochastic depth to CvT (configs set drop_path: 0)
    drop_path_rate: float = 0.0


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a map: (B, C, H, W) -> same."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias)
        return x.permute(0, 3, 1, 2)


def conv_projection(dim: int, out: int, kernel: int, stride: int) -> nn.Sequential:
    """CvT's convolutional projection: depthwise kernel x kernel conv (stride), BatchNorm, 1x1
    conv to ``out`` channels; no biases. (B, dim, H, W) -> (B, out, H / stride, W / stride)."""
    return nn.Sequential(
        nn.Conv2d(dim, dim, kernel, stride, kernel // 2, groups=dim, bias=False),
        nn.BatchNorm2d(dim),
        nn.Conv2d(dim, out, 1, bias=False))


class ConvAttention(nn.Module):
    """Channel LayerNorm, convolutional q / k / v projections, multi-head attention over the map's
    positions, 1x1 output conv. (B, dim, H, W) -> same."""

    def __init__(self, dim: int, heads: int, dim_head: int, kernel: int, kv_stride: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.norm = ChannelLayerNorm(dim)
        self.q = conv_projection(dim, inner, kernel, 1)
        self.kv = conv_projection(dim, 2 * inner, kernel, kv_stride)
        self.proj = nn.Conv2d(inner, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        x = self.norm(x)

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, h*d, h', w') -> (B, h, h'*w', d)
            return t.reshape(B, self.heads, t.shape[1] // self.heads, -1).transpose(2, 3)

        k, v = self.kv(x).chunk(2, dim=1)
        out = attend(heads(self.q(x)), heads(k), heads(v), self.scale)  # (B, h, H*W, d)
        return self.proj(out.transpose(2, 3).reshape(B, -1, H, W))


class ConvFeedForward(nn.Module):
    """Channel LayerNorm, 1x1 conv to ``ratio * dim``, GELU, 1x1 conv back. (B, dim, H, W) -> same."""

    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(dim)
        self.fc1 = nn.Conv2d(dim, dim * ratio, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(dim * ratio, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class CvTBlock(nn.Module):
    """x + attn(x), then + feed_forward(x), on the map. (B, dim, H, W) -> same."""

    def __init__(self, dim: int, heads: int, cfg: CvTConfig, drop_path: float) -> None:
        super().__init__()
        self.attn = ConvAttention(dim, heads, cfg.dim_head, cfg.proj_kernel, cfg.kv_stride)
        self.ff = ConvFeedForward(dim, cfg.mlp_ratio)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x))
        return x + self.drop_path(self.ff(x))


class CvTStage(nn.Module):
    """Convolutional token embedding (strided conv, channel LayerNorm), then ``depth`` blocks.
    (B, c_in, H, W) -> (B, dim, H / stride, W / stride)."""

    def __init__(self, c_in: int, dim: int, kernel: int, stride: int, heads: int, depth: int,
                 cfg: CvTConfig, rates: list[float]) -> None:
        super().__init__()
        self.embed = nn.Conv2d(c_in, dim, kernel, stride, kernel // 2)
        self.embed_norm = ChannelLayerNorm(dim)
        self.blocks = nn.ModuleList(CvTBlock(dim, heads, cfg, r) for r in rates[:depth])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.embed(x))
        for block in self.blocks:
            x = block(x)
        return x


class CvT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes) from the averaged last map."""

    def __init__(self, cfg: CvTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or CvTConfig(**kwargs)
        common.check_stages("CvT", cfg, "dims", "embed_kernels", "embed_strides", "num_heads",
                            "depths")
        self.cfg = cfg
        rates = common.drop_path_rates(cfg.drop_path_rate, cfg.depths, "constant")
        c_in = cfg.in_chans
        self.stages = nn.ModuleList()
        for i, (dim, k, s, h, d) in enumerate(zip(cfg.dims, cfg.embed_kernels, cfg.embed_strides,
                                                  cfg.num_heads, cfg.depths)):
            self.stages.append(CvTStage(c_in, dim, k, s, h, d, cfg, rates[i]))
            c_in = dim
        self.head = nn.Linear(c_in, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "CvT")
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean((2, 3)))


# The paper's CvT-B figures (6.48M, 25.63M) are the authors' model's at 32x32 with 10 classes
# (6,479,274 params; ptflops 25.63M), not at Tiny-ImageNet's input where Table 5 trains it and
# where the row is registered (their README: 6.52M, 102.56M there); docs/baselines.md shows both.
@register_model("cvt_b_tiny", aliases=("cvt_b",),
                paper=paper_row("CvT-B", 6.48e6, 25.63e6, "Table 5", 64, 200))
def cvt_b_tiny(**overrides: Any) -> CvT:
    """CvT-B (paper Table 5: 6.48M params, 25.63M MACs, the authors' model's at 32x32 with 10
    classes; their README: 6.52M, 102.56M at 64x64, 200 classes): the authors' ``cvt-b``
    (create_model.py:168): widths (32, 96, 192), depths (1, 2, 10), heads (1, 3, 6) of 64,
    embedding convs 7/4, 3/2, 3/2, MLP ratio 4."""
    return build(CvT, CvTConfig(), overrides)
