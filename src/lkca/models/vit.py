"""ViT and ViT-LKCA (paper section 3.2.3, equations 1-4): one model class, every size a factory.

A block is pre-LN: ``x = x + DropPath(Mixer(LN(x)))``, ``x = x + DropPath(MLP(LN(x)))``. The mixer
of each block is chosen by the layout string: ``A`` attention, ``L`` LKCA, ``K`` VAN's LKA.
ViT-LKCA drops the class token and classifies the mean of the last tokens (the paper's choice);
the ViT baseline keeps the class token of the recipe it follows (SPT's ViT).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lkca.layers import LKA, LKCA, Attention, DropPath, Mlp, PatchEmbed, PosEmbed
from lkca.layers.patch_embed import check_divisible

MIXER_CODES = {"A": "attn", "L": "lkca", "K": "lka"}
NAMED_LAYOUTS = ("attn", "lkca", "lka", "alternate")


def mixer_layout(mixers: str, depth: int) -> str:
    """Expand a layout name to one letter per block.

    ``"attn"`` -> ``"AAA..."``, ``"lkca"`` -> ``"LLL..."``, ``"lka"`` -> ``"KKK..."``,
    ``"alternate"`` -> ``"LALA..."``; an explicit string such as ``"LLAA"`` must have ``depth``
    letters from A, L, K.
    """
    if mixers == "attn":
        return "A" * depth
    if mixers == "lkca":
        return "L" * depth
    if mixers == "lka":
        return "K" * depth
    if mixers == "alternate":
        return ("LA" * depth)[:depth]
    layout = mixers.upper()
    if len(layout) != depth or set(layout) - set(MIXER_CODES):
        raise ValueError(
            f"mixers={mixers!r}: give one of {', '.join(NAMED_LAYOUTS)} or {depth} letters from "
            "A (attention), L (LKCA), K (LKA), e.g. " + repr(("LA" * depth)[:depth])
        )
    return layout


@dataclass
class ViTConfig:
    """Hyper-parameters of :class:`VisionTransformer` (every registered size sets these)."""

    img_size: int | tuple[int, int] = 32
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 10
    dim: int = 192
    depth: int = 9
    num_heads: int = 12
    head_dim: int | None = None  # attention only; default dim // num_heads
    mlp_ratio: float = 2.0
    mixers: str = "attn"
    pool: str = "mean"  # "mean" or "cls"
    kernel_size: int | None = None  # LKCA kernel; None = global kernel of the grid
    lkca_impl: str = "auto"
    lkca_projections: bool = False
    qkv_bias: bool = False
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0


class Block(nn.Module):
    """Pre-LN transformer block with a chosen token mixer."""

    def __init__(self, cfg: ViTConfig, code: str, grid: tuple[int, int], drop_path: float) -> None:
        super().__init__()
        dim = cfg.dim
        self.norm1 = nn.LayerNorm(dim)
        if code == "A":
            self.mixer: nn.Module = Attention(
                dim, cfg.num_heads, cfg.head_dim, cfg.qkv_bias, proj_drop=cfg.drop_rate
            )
        elif code == "L":
            self.mixer = LKCA(
                dim, cfg.num_heads, grid, cfg.kernel_size, cfg.lkca_impl, cfg.lkca_projections,
                proj_drop=cfg.drop_rate,
            )
        else:
            self.mixer = LKA(dim, grid)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), cfg.drop_rate)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.mixer(self.norm1(x), grid))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """ViT / ViT-LKCA classifier: (B, in_chans, H, W) images -> (B, num_classes) logits.

    ``forward_features`` returns the final normalised tokens (B, N, dim) and their grid; images of
    any size divisible by the patch run (position embeddings are interpolated, LKCA runs on the
    new grid).
    """

    def __init__(self, cfg: ViTConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = ViTConfig(**overrides) if cfg is None else cfg
        img = (cfg.img_size, cfg.img_size) if isinstance(cfg.img_size, int) else cfg.img_size
        check_divisible((img[0], img[1]), cfg.patch_size)
        if cfg.pool not in ("mean", "cls"):
            raise ValueError(f"pool must be 'mean' or 'cls', got {cfg.pool!r}")
        self.cfg = cfg
        self.layout = mixer_layout(cfg.mixers, cfg.depth)
        if cfg.pool == "cls" and set(self.layout) != {"A"}:
            raise ValueError(
                "pool='cls' needs attention in every block (LKCA/LKA mix tokens on the patch "
                "grid only); use pool='mean'"
            )
        self.patch_embed = PatchEmbed(img, cfg.patch_size, cfg.in_chans, cfg.dim)
        grid = self.patch_embed.grid_size
        self.pos_embed = PosEmbed(grid, cfg.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim)) if cfg.pool == "cls" else None
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(cfg, code, grid, rate) for code, rate in zip(self.layout, rates)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head: nn.Module = nn.Linear(cfg.dim, cfg.num_classes)
        self.apply(init_weights)

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.patch_embed.grid_size

    def _run_blocks(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x, grid = self.patch_embed(x)  # (B, N, dim)
        x = self.pos_embed(x, grid)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x)
        for block in self.blocks:
            x = block(x, grid)
        return x, grid  # (B, [1 +] N, dim)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x, grid = self._run_blocks(x)
        return self.norm(x), grid

    def forward_token_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's patch tokens as a map (B, dim, H/p, W/p): before the final norm, the
        pooling and the head, class token dropped (where the effective receptive field is read)."""
        x, (h, w) = self._run_blocks(x)
        if self.cls_token is not None:
            x = x[:, 1:]
        return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.forward_features(x)
        pooled = tokens[:, 0] if self.cls_token is not None else tokens.mean(dim=1)
        return self.head(pooled)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``directory`` for
        :func:`lkca.from_pretrained` (see :mod:`lkca.pretrained`)."""
        from lkca.checkpoint.pretrained_dir import save_pretrained

        return save_pretrained(self, directory)


def init_weights(m: nn.Module) -> None:
    """ViT initialisation (timm): Linear weights truncated normal std 0.02, zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
