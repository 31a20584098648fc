"""ViT-S / LKCA-S segmentation backbones (paper section 4.2): a :class:`VisionTransformer` whose
intermediate blocks are read out as feature maps, as MMSegmentation's ``VisionTransformer`` with
``out_indices=(2, 5, 8, 11)`` does.

The transformer itself is the classification model of :mod:`lkca.models.vit` (same blocks, same
position-embedding interpolation, LKCA on the run-time grid); only its classifier is dropped.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lkca.errors import ConfigError
from lkca.models.vit import VisionTransformer, ViTConfig
from lkca.seg.resnet import resnet50_seg
from lkca.seg.swin import swin_s_seg
from lkca.seg.twins_pcpvt import twins_pcpvt_s_seg

# ViT-S as MMSegmentation's DeiT-S / ViT-S configs: embed 384, depth 12, 6 heads, MLP ratio 4,
# patch 16, qkv bias, drop-path 0.1, built for 512x512 crops (a 32x32 grid).
VIT_S = dict(
    img_size=512, patch_size=16, dim=384, depth=12, num_heads=6, mlp_ratio=4.0, qkv_bias=True,
    drop_path_rate=0.1, pool="mean",
)


def even_out_indices(depth: int, levels: int = 4) -> tuple[int, ...]:
    """Evenly spaced block indices ending at the last block: depth 12 -> (2, 5, 8, 11)."""
    if depth < levels:
        raise ConfigError(f"a segmentation backbone needs depth >= {levels} (one block per level), "
                          f"got depth={depth}; use depth={levels} or more")
    return tuple((i + 1) * depth // levels - 1 for i in range(levels))


class ViTBackbone(nn.Module):
    """A :class:`VisionTransformer` read out at ``out_indices``.

    ``forward(images)`` takes (B, in_chans, H, W) with H, W multiples of the patch and returns a
    list of ``len(out_indices)`` maps, each (B, dim, H / patch, W / patch). The last map is taken
    after the transformer's final LayerNorm (MMSegmentation's ``final_norm=True``), so every
    parameter takes part in the loss (DDP needs no ``find_unused_parameters``). There is no class
    token (``pool="mean"``): LKCA mixes tokens on the patch grid only, and ViT-S uses the same
    layout so that the two backbones differ in the token mixer alone.
    """

    def __init__(self, cfg: ViTConfig, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        if cfg.pool != "mean":
            raise ConfigError("segmentation backbones use pool='mean' (no class token)")
        depth = cfg.depth
        idx = tuple(even_out_indices(depth) if out_indices is None else out_indices)
        if (any(i < 0 or i >= depth for i in idx) or list(idx) != sorted(set(idx))
                or idx[-1] != depth - 1):
            raise ConfigError(
                f"out_indices {idx} must increase, lie in [0, {depth}) and end at the last block "
                f"{depth - 1}; e.g. {even_out_indices(depth)}"
            )
        self.vit = VisionTransformer(cfg)
        self.vit.head = nn.Identity()  # the classifier is not used
        self.out_indices = idx
        self.out_channels = [cfg.dim] * len(idx)
        self.patch_size = cfg.patch_size

    @property
    def cfg(self) -> ViTConfig:
        return self.vit.cfg

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        vit = self.vit
        x, grid = vit.patch_embed(images)  # (B, N, dim), grid (H / p, W / p)
        x = vit.pos_drop(vit.pos_embed(x, grid))  # bicubic position table for this grid
        outs = []
        for i, block in enumerate(vit.blocks[: self.out_indices[-1] + 1]):
            x = block(x, grid)  # LKCA blocks run their kernel on this grid
            if i in self.out_indices:
                y = vit.norm(x) if i == len(vit.blocks) - 1 else x
                B, N, C = y.shape
                outs.append(y.transpose(1, 2).reshape(B, C, *grid))  # (B, dim, H / p, W / p)
        return outs


def vit_s_seg(out_indices: Sequence[int] | None = None, **overrides: Any) -> ViTBackbone:
    """ViT-S backbone (attention in every block); ``overrides`` change :class:`ViTConfig` fields."""
    return ViTBackbone(ViTConfig(**{**VIT_S, "mixers": "attn", **overrides}), out_indices)


def lkca_s_seg(out_indices: Sequence[int] | None = None, **overrides: Any) -> ViTBackbone:
    """LKCA-S backbone: ViT-S with LKCA in every block and no value/output projections.

    The kernel is the global kernel of the 512x512 construction grid (32x32 tokens -> 63x63 per
    head); on another grid it is applied as a convolution (centre-cropped where the grid is
    smaller, zero beyond where it is larger).
    """
    return ViTBackbone(ViTConfig(**{**VIT_S, "mixers": "lkca", **overrides}), out_indices)


# Table 7's comparison backbones: 4 maps at strides 4, 8, 16, 32 of their own, so no neck.
HIERARCHICAL: dict[str, Callable[..., nn.Module]] = {
    "resnet50_seg": resnet50_seg, "swin_s_seg": swin_s_seg, "twins_pcpvt_s_seg": twins_pcpvt_s_seg}

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "vit_s_seg": vit_s_seg, "lkca_s_seg": lkca_s_seg, **HIERARCHICAL}


def backbone_keys(name: str) -> set[str]:
    """Keywords the backbone ``name`` takes: ViTConfig fields + ``out_indices`` for the ViT ones,
    the constructor's parameters (+ ``img_size``, ignored) for the :data:`HIERARCHICAL` ones."""
    if name in HIERARCHICAL:
        cls = typing.get_type_hints(HIERARCHICAL[name])["return"]
        return set(inspect.signature(cls).parameters) | {"img_size"}
    return {f.name for f in dataclasses.fields(ViTConfig)} | {"out_indices"}


def create_backbone(name: str, **overrides: Any) -> nn.Module:
    """Build a backbone of :data:`BACKBONES` by name; ConfigError with close matches if unknown.

    Every backbone has ``out_channels`` (4 entries) and ``forward(images) -> list`` of 4 maps;
    :data:`HIERARCHICAL` ones return strides 4, 8, 16, 32, the ViT ones stride 16 (see the neck).
    """
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, list(BACKBONES), n=2, cutoff=0.4)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConfigError(f"unknown segmentation backbone {name!r}; {hint}choose one of "
                          f"{', '.join(BACKBONES)}")
    return BACKBONES[name](**overrides)
