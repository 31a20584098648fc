"""T2T-ViT, "Tokens-to-Token ViT" (Yuan et al. 2021, arXiv 2101.11986).

The paper's T2T-T / T2T-S / T2T-B (Table 5) as the paper's authors build them
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet ``models/t2t.py``, vit-pytorch's
T2T-ViT; shapes in ``models/create_model.py``). Instead of cutting the image into patches once,
the Tokens-to-Token module repeats a *soft split* (overlapping k x k neighbourhoods unfolded
into one token, stride s, zero padding s // 2) and, between splits, *re-structurization* (a
one-head transformer as wide as the unfolded tokens, reshaped back into a map); a linear
projection gives the backbone's tokens, which a ViT (class token, learned positions)
classifies.

As the authors' file, unlike T2T-ViT's paper: each row chooses its own soft splits (T2T-T one
11x11 / stride 8 split, T2T-S 11/8 then 7/4, T2T-B 7/4, 3/2, 2/1), the token transformers keep
the unfolded width (no reduction to a token dim, no output projection) and end in a LayerNorm,
positions are learned (not sinusoidal), and q/k/v have no bias with ``heads * dim_head`` inner
channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lkca.layers.input_checks import check_images
from lkca.models.baselines.factory import build, paper_row
from lkca.models.baselines.vit_pytorch_blocks import Transformer
from lkca.models.registry import register_model


@dataclass
class T2TConfig:
    """T2T-ViT hyper-parameters: the soft splits ``(kernel, stride)``, then the ViT backbone."""

    img_size: int = 64
    in_chans: int = 3
    num_classes: int = 200
    soft_splits: tuple[tuple[int, int], ...] = ((11, 8),)
    dim: int = 128
    depth: int = 10
    num_heads: int = 4
    dim_head: int = 32
    mlp_dim: int = 128
    # the authors' create_model passes no stochastic depth to T2T (configs set drop_path: 0)
    drop_path_rate: float = 0.0


def soft_split_padding(side: int, kernel: int, stride: int) -> int:
    """Zero padding of one soft split: stride // 2 (the authors'), or more on maps smaller than
    the kernel (e.g. 8x8 digits), where that would leave no token."""
    return max(stride // 2, -(-(kernel - side) // 2))


def soft_split_side(side: int, kernel: int, stride: int) -> int:
    """The side of the token grid one soft split leaves of a ``side`` x ``side`` map."""
    return (side + 2 * soft_split_padding(side, kernel, stride) - kernel) // stride + 1


def soft_split(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Map (B, C, H, H) -> tokens (B, N, C * kernel**2), channel-major within each token."""
    pad = soft_split_padding(x.shape[-1], kernel, stride)
    return F.unfold(x, kernel, padding=pad, stride=stride).transpose(1, 2)


class T2TViT(nn.Module):
    """Images (B, in_chans, img_size, img_size) -> logits (B, num_classes) from the class
    token."""

    def __init__(self, cfg: T2TConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or T2TConfig(**kwargs)
        if not cfg.soft_splits:
            raise ValueError("T2T: soft_splits needs at least one (kernel, stride)")
        self.cfg = cfg
        width, side = cfg.in_chans, cfg.img_size
        widths = []
        for kernel, stride in cfg.soft_splits:
            width, side = width * kernel ** 2, soft_split_side(side, kernel, stride)
            widths.append(width)
        # re-structurization between splits: one head as wide as the tokens, MLP as wide
        self.restructure = nn.ModuleList(
            Transformer(w, 1, 1, w, w, final_norm=True) for w in widths[:-1])
        self.project = nn.Linear(width, cfg.dim)
        self.num_tokens = side * side
        self.pos_embed = nn.Parameter(torch.randn(1, self.num_tokens + 1, cfg.dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim))
        self.transformer = Transformer(cfg.dim, cfg.depth, cfg.num_heads, cfg.dim_head,
                                       cfg.mlp_dim, final_norm=True, drop_path=cfg.drop_path_rate)
        self.head_norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def tokens_to_token(self, x: torch.Tensor) -> torch.Tensor:
        """The T2T module: images (B, C, H, H) -> tokens (B, N, dim)."""
        for i, (kernel, stride) in enumerate(self.cfg.soft_splits):
            if i:  # tokens back to their map
                B, N, C = x.shape
                side = int(N ** 0.5)
                x = x.transpose(1, 2).reshape(B, C, side, side)
            x = soft_split(x, kernel, stride)  # (B, N, C * k * k)
            if i < len(self.restructure):
                x = self.restructure[i](x)
        return self.project(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "T2TViT")
        x = self.tokens_to_token(x)  # (B, N, dim)
        if x.shape[1] != self.num_tokens:
            raise ValueError(f"T2T built for {self.cfg.img_size}x{self.cfg.img_size} images got "
                             f"{x.shape[1]} tokens; build it with img_size=<your size>")
        cls = self.cls_token.repeat(x.shape[0], 1, 1)  # (B, 1, dim)
        x = self.transformer(torch.cat([cls, x], dim=1) + self.pos_embed)
        return self.head(self.head_norm(x[:, 0]))


@register_model("t2t_t_tiny", aliases=("t2t_t",),
                paper=paper_row("T2T-T", 1.07e6, 78.23e6, "Table 5", 64, 200))
def t2t_t_tiny(**overrides: Any) -> T2TViT:
    """T2T-T (paper Table 5: 1.07M params, 78.23M MACs at 64x64, 200 classes): the authors'
    ``t2t-t`` (create_model.py:164): one 11x11 / stride 8 soft split, dim 128, depth 10, 4 heads
    of 32, MLP 128."""
    return build(T2TViT, T2TConfig(soft_splits=((11, 8),), dim=128, depth=10, num_heads=4,
                                   dim_head=32, mlp_dim=128), overrides)


@register_model("t2t_s_tiny", aliases=("t2t_s",),
                paper=paper_row("T2T-S", 2.56e6, 52.96e6, "Table 5", 64, 200))
def t2t_s_tiny(**overrides: Any) -> T2TViT:
    """T2T-S (paper Table 5: 2.56M params, 52.96M MACs at 64x64, 200 classes): the authors'
    ``t2t-s`` (create_model.py:160): soft splits 11/8 then 7/4 (a 2x2 grid at 64x64), dim 96,
    depth 3, 4 heads of 24, MLP 96."""
    return build(T2TViT, T2TConfig(soft_splits=((11, 8), (7, 4)), dim=96, depth=3, num_heads=4,
                                   dim_head=24, mlp_dim=96), overrides)


@register_model("t2t_b_tiny", aliases=("t2t_b",),
                paper=paper_row("T2T-B", 13.45e6, 853.02e6, "Table 5", 64, 200))
def t2t_b_tiny(**overrides: Any) -> T2TViT:
    """T2T-B (paper Table 5: 13.45M params, 853.02M MACs at 64x64, 200 classes): the authors'
    ``t2t-b`` (create_model.py:156): soft splits 7/4, 3/2, 2/1 (a 7x7 grid at 64x64), dim 256,
    depth 8, 4 heads of 64, MLP 256."""
    return build(T2TViT, T2TConfig(soft_splits=((7, 4), (3, 2), (2, 1)), dim=256, depth=8,
                                   num_heads=4, dim_head=64, mlp_dim=256), overrides)
