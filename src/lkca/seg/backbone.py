"""Segmentation backbones (paper section 4.2) and their registry.

ViT-S / LKCA-S: a :class:`VisionTransformer` without classifier (``num_classes=0``) read out at
evenly spaced blocks through its ``forward_intermediates``, as MMSegmentation's
``VisionTransformer`` with ``out_indices=(2, 5, 8, 11)`` does. The transformer is the
classification model of :mod:`lkca.models.vit` (same blocks, same position-embedding
interpolation, LKCA on the run-time grid). Table 7's comparison backbones (ResNet-50, Swin-S,
Twins-PCPVT-S) give their own pyramid.

Every backbone is registered with :func:`register_backbone` (the decorator style of
:func:`lkca.models.registry.register_model`), declaring the keywords it takes.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lkca.errors import ConfigError
from lkca.models.vit import VisionTransformer, ViTConfig
from lkca.seg.resnet import resnet50_seg
from lkca.seg.swin import swin_s_seg
from lkca.seg.twins_pcpvt import twins_pcpvt_s_seg

Factory = Callable[..., nn.Module]
BACKBONES: dict[str, Factory] = {}  # name -> factory, every registered backbone
HIERARCHICAL: dict[str, Factory] = {}  # those giving strides 4, 8, 16, 32 themselves (no neck)
_KEYS: dict[str, frozenset[str]] = {}


def register_backbone(name: str, *, keys: Sequence[str] | frozenset[str],
                      hierarchical: bool = False) -> Callable[[Factory], Factory]:
    """Register ``fn(**keywords) -> backbone`` under ``name``.

    ``keys``: the keywords the factory takes (what a seg config's ``model_args`` may set).
    ``hierarchical``: the backbone returns four maps at strides 4, 8, 16, 32 itself (no neck).
    Every backbone has ``out_channels`` (4 entries) and ``forward(images) -> list`` of 4 maps.
    """

    def wrap(fn: Factory) -> Factory:
        if name in BACKBONES:
            raise ValueError(f"backbone name {name!r} is registered twice")
        BACKBONES[name] = fn
        _KEYS[name] = frozenset(keys)
        if hierarchical:
            HIERARCHICAL[name] = fn
        return fn

    return wrap


def backbone_keys(name: str) -> set[str]:
    """Keywords the backbone ``name`` takes, as declared at its registration."""
    if name not in _KEYS:
        raise ConfigError(f"unknown segmentation backbone {name!r}; choose one of "
                          f"{', '.join(BACKBONES)}")
    return set(_KEYS[name])


# ViT-S as MMSegmentation's DeiT-S / ViT-S configs: embed 384, depth 12, 6 heads, MLP ratio 4,
# patch 16, qkv bias, drop-path 0.1 rising linearly over the blocks and timm's truncated-normal
# initialisation (mmseg/models/backbones/vit.py: VisionTransformer.__init__'s
# torch.linspace(0, drop_path_rate, num_layers), init_weights' trunc_normal_init(std=.02)),
# built for 512x512 crops (a 32x32 grid).
VIT_S = dict(
    img_size=512, patch_size=16, dim=384, depth=12, num_heads=6, mlp_ratio=4.0, qkv_bias=True,
    drop_path_rate=0.1, drop_path_schedule="linear", init="trunc_normal", pool="mean",
)
VIT_KEYS = frozenset(f.name for f in dataclasses.fields(ViTConfig)) - {"num_classes"} | {
    "out_indices"}


def even_out_indices(depth: int, levels: int = 4) -> tuple[int, ...]:
    """Evenly spaced block indices ending at the last block: depth 12 -> (2, 5, 8, 11)."""
    if depth < levels:
        raise ConfigError(f"a segmentation backbone needs depth >= {levels} (one block per level), "
                          f"got depth={depth}; use depth={levels} or more")
    return tuple((i + 1) * depth // levels - 1 for i in range(levels))


class ViTBackbone(nn.Module):
    """A :class:`VisionTransformer` without classifier, read out at ``out_indices``.

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
        self.vit = VisionTransformer(dataclasses.replace(cfg, num_classes=0))
        self.out_indices = idx
        self.out_channels = [cfg.dim] * len(idx)
        self.patch_size = cfg.patch_size

    @property
    def cfg(self) -> ViTConfig:
        return self.vit.cfg

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.vit.forward_intermediates(images, self.out_indices, final_norm=True)


@register_backbone("vit_s_seg", keys=VIT_KEYS)
def vit_s_seg(out_indices: Sequence[int] | None = None, **overrides: Any) -> ViTBackbone:
    """ViT-S backbone (attention in every block); ``overrides`` change :class:`ViTConfig` fields."""
    return ViTBackbone(ViTConfig(**{**VIT_S, "mixers": "attn", **overrides}), out_indices)


@register_backbone("lkca_s_seg", keys=VIT_KEYS)
def lkca_s_seg(out_indices: Sequence[int] | None = None, **overrides: Any) -> ViTBackbone:
    """LKCA-S backbone: ViT-S with LKCA in place of attention in every block, one kernel per
    block (``kernel_heads=1``) and no value/output projections: the reading Table 7's parameter
    counts support (ViT-S minus 12 x 4 x 384^2 attention weights plus one 63x63 kernel per
    block; docs/block-readings.md).

    The kernel is the global kernel of the 512x512 construction grid (32x32 tokens -> 63x63); on
    another grid it is applied as a convolution (centre-cropped where the grid is smaller, zero
    beyond where it is larger).
    """
    return ViTBackbone(ViTConfig(**{**VIT_S, "mixers": "lkca", "kernel_heads": 1, **overrides}),
                       out_indices)


def legacy_backbone(name: str, overrides: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The backbone name and overrides that rebuild, now, what lkca 0.1.0 built from ``name``
    and ``overrides`` (as its segmentation checkpoints store them): 0.1.0's ``lkca_s_seg`` had
    one kernel per head (``kernel_heads=None``); every other backbone is unchanged."""
    if name == "lkca_s_seg":
        return name, {"kernel_heads": None, **overrides}
    return name, dict(overrides)


# Table 7's comparison backbones: 4 maps at strides 4, 8, 16, 32 of their own, so no neck. Their
# keywords are their constructors' (+ ``img_size``, which the seg engine passes and they ignore).
register_backbone("resnet50_seg", hierarchical=True, keys=(
    "depths", "widths", "in_chans", "deep_stem", "stem_channels", "img_size"))(resnet50_seg)
register_backbone("swin_s_seg", hierarchical=True, keys=(
    "embed_dim", "depths", "num_heads", "window_size", "mlp_ratio", "qkv_bias", "drop_path_rate",
    "in_chans", "img_size"))(swin_s_seg)
register_backbone("twins_pcpvt_s_seg", hierarchical=True, keys=(
    "dims", "depths", "num_heads", "sr_ratios", "mlp_ratios", "drop_path_rate", "in_chans",
    "img_size"))(twins_pcpvt_s_seg)


def create_backbone(name: str, **overrides: Any) -> nn.Module:
    """Build a registered backbone by name; ConfigError with close matches if unknown.

    Every backbone has ``out_channels`` (4 entries) and ``forward(images) -> list`` of 4 maps;
    :data:`HIERARCHICAL` ones return strides 4, 8, 16, 32, the ViT ones stride 16 (see the neck).
    """
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, list(BACKBONES), n=2, cutoff=0.4)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConfigError(f"unknown segmentation backbone {name!r}; {hint}choose one of "
                          f"{', '.join(BACKBONES)}")
    return BACKBONES[name](**overrides)
