"""Every ViT / ViT-LKCA size of the paper's Tables 1-5 as a registered factory.

How the sizes were chosen: the paper gives only parameter counts and MACs. The ViT baseline of
the recipe it follows (SPT's ViT: dim 192, depth 9, 12 heads of 16, MLP ratio 2, class token)
gives exactly the paper's 2.69M, so every ViT size keeps MLP ratio 2 and heads of about 16
channels and picks (dim, depth) to land on the paper's count. An LKCA block without projections
has only LayerNorms, its small kernels and the MLP (~4 dim^2 weights, half a ViT block), so each
ViT-LKCA keeps a similar width and about twice the depth; dim 192 x 18 blocks gives 2.75M and
~170M MACs, the paper's ViT-LKCA (DESIGN.md section 1.2). The (dim, depth) pairs were found by a
search over widths in steps of 8-16 for the count closest to the paper's (tests hold each within
+-3%). Default patch: image size / 8, an 8x8 grid (patch 4 at 32x32, 8 at 64x64, as SPT).
"""

from __future__ import annotations

from typing import Any

from lkca.models.registry import register_model
from lkca.models.vit import VisionTransformer, ViTConfig


def _build(base: dict[str, Any], overrides: dict[str, Any]) -> VisionTransformer:
    cfg = dict(base)
    unknown = set(overrides) - set(ViTConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown model option(s) {sorted(unknown)}; valid: "
            f"{', '.join(sorted(ViTConfig.__dataclass_fields__))}"
        )
    cfg.update(overrides)
    if "patch_size" not in overrides and "img_size" in overrides:
        size = cfg["img_size"]
        side = size if isinstance(size, int) else min(size)
        cfg["patch_size"] = max(1, side // 8)
    return VisionTransformer(ViTConfig(**cfg))


# name: (dim, depth, heads, paper row, paper params, paper MACs, aliases)
_VIT = {
    "vit_500k": (80, 9, 5, "VIT/0.5M", 0.48e6, 30.58e6, ()),
    "vit_1m": (128, 8, 8, "VIT/1M (ViT-Lite)", 1.06e6, 68.36e6, ("vit_lite",)),
    "vit_2m": (184, 7, 8, "VIT/2M", 1.96e6, 126.09e6, ()),
    "vit_2p7m": (192, 9, 12, "ViT (ViT-Small)", 2.69e6, 174.25e6, ("vit_small",)),
    "vit_4m": (220, 10, 11, "VIT/4M", 3.95e6, 255.47e6, ()),
    "vit_8m": (352, 8, 22, "VIT/8M", 7.85e6, 508.72e6, ()),
}
_LKCA = {
    "vit_lkca_500k": (80, 18, 5, "ViT/0.5M-LKCA", 0.50e6, 31.34e6, ()),
    "vit_lkca_1m": (128, 15, 8, "ViT/1M-LKCA (LKCA-T)", 1.03e6, 64.82e6, ("lkca_t",)),
    "vit_lkca_2m": (160, 19, 10, "ViT/2M-LKCA", 2.03e6, 128.66e6, ()),
    "vit_lkca_2p7m": (192, 18, 12, "ViT-LKCA (LKCA-B)", 2.69e6, 170.81e6, ("lkca_b",)),
    "vit_lkca_4m": (256, 15, 16, "ViT/4M-LKCA", 4.05e6, 257.43e6, ()),
    "vit_lkca_8m": (320, 19, 20, "ViT/8M-LKCA", 7.98e6, 506.00e6, ()),
}


def _register(name: str, spec: tuple, mixers: str, pool: str, img: int, classes: int) -> None:
    dim, depth, heads, row, params, macs, aliases = spec
    base = dict(
        dim=dim, depth=depth, num_heads=heads, mlp_ratio=2.0, mixers=mixers, pool=pool,
        img_size=img, patch_size=img // 8, num_classes=classes,
    )
    paper = dict(row=row, params=params, macs=macs, img_size=img, num_classes=classes)

    @register_model(name, aliases=aliases, paper=paper)
    def factory(**overrides: Any) -> VisionTransformer:
        return _build(base, overrides)

    factory.__doc__ = f"{row}: dim {dim}, depth {depth}, {heads} heads, {mixers} mixers."


for _name, _spec in _VIT.items():
    _register(_name, _spec, "attn", "cls", 32, 10)
for _name, _spec in _LKCA.items():
    _register(_name, _spec, "lkca", "mean", 32, 10)
_register(
    "vit_lkca_12m", (384, 21, 12, "LKCA-L", 12.53e6, 799.61e6, ("lkca_l",)), "lkca", "mean", 64, 200
)
