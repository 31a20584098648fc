"""Every ViT / ViT-LKCA size of the paper's Tables 1-5 as a registered factory, exactly as the
authors' released code builds it (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet,
``models/create_model.py`` lines 25-101; docs/models.md lists every size with its line).

Two families, each name one architecture:

- ``vit_<size>``: SPT's ViT (the authors' ``models/vit.py``): class token with its own position
  row, self-attention + MLP blocks, head LayerNorm + Linear on the class token.
- ``vit_lkca_<size>``: the authors' ViT-LKCA (``models/largevit_cnn.py``): in every block
  ``x + DropPath(LKCA(LN x))`` then ``x + DropPath(MLP(LN x))``, no self-attention; LKCA = value
  Linear (no bias), ONE (2H - 1) x (2W - 1) kernel shared by all channels (zero at the start),
  output Linear with bias; no class token; head = mean of the tokens, LayerNorm, Linear.

``dim_head = dim // heads`` and MLP ratio 2 (LKCA-L: 3); patch 4 at 32 px and 8 at 64 px
(create_model.py lines 18-21), so every grid is 8 x 8. Other readings of the paper (the text's
self-attention + LKCA + MLP, a kernel per head, no projections, the convolution-filter kernel
init, the LayerNorm before pooling) are ``ViTConfig`` options, not names (docs/block-readings.md).
All take SPT's training-time model settings: one constant stochastic-depth rate in every block
and SPT's initialisation (``drop_path_schedule="constant"``, ``init="spt"``).
"""

from __future__ import annotations

from typing import Any

from lkca.errors import ConfigError
from lkca.models.registry import register_model
from lkca.models.vit import VisionTransformer, ViTConfig


def _build(base: dict[str, Any], overrides: dict[str, Any]) -> VisionTransformer:
    cfg = dict(base)
    unknown = set(overrides) - set(ViTConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(
            f"unknown model option(s) {sorted(unknown)}; valid: "
            f"{', '.join(sorted(ViTConfig.__dataclass_fields__))}"
        )
    cfg.update(overrides)
    if "patch_size" not in overrides and "img_size" in overrides:
        size = cfg["img_size"]
        side = size if isinstance(size, int) else min(size)
        cfg["patch_size"] = max(1, side // 8)
    return VisionTransformer(ViTConfig(**cfg))


# name: (dim, depth, heads, MLP ratio, paper row, paper params, paper MACs, aliases), the shapes of
# the authors' models/create_model.py (the line of each in the comment).
_VIT = {
    "vit_500k": (120, 4, 4, 2, "VIT/0.5M", 0.48e6, 30.58e6, ()),  # 'vit-05m', line 78
    "vit_1m": (136, 7, 8, 2, "VIT/1M (ViT-Lite)", 1.06e6, 68.36e6, ("vit_lite",)),  # line 83
    "vit_2m": (200, 6, 8, 2, "VIT/2M", 1.96e6, 126.09e6, ()),  # 'vit-2m', line 88
    "vit_2p7m": (192, 9, 12, 2, "ViT (ViT-Small)", 2.69e6, 174.25e6, ("vit_small",)),  # line 25
    "vit_4m": (264, 7, 8, 2, "VIT/4M", 3.95e6, 255.47e6, ()),  # 'vit-4m', line 93
    "vit_8m": (312, 10, 8, 2, "VIT/8M", 7.85e6, 508.72e6, ()),  # 'vit-8m', line 98
}
_LKCA = {
    "vit_lkca_500k": (100, 8, 4, 2, "ViT/0.5M-LKCA", 0.50e6, 31.34e6, ()),  # line 37
    "vit_lkca_1m": (136, 9, 8, 2, "ViT/1M-LKCA (LKCA-T)", 1.03e6, 64.82e6, ("lkca_t",)),  # l. 42
    "vit_lkca_2m": (192, 9, 12, 2, "ViT/2M-LKCA", 2.03e6, 128.66e6, ()),  # line 47
    "vit_lkca_2p7m": (210, 10, 10, 2, "ViT-LKCA (LKCA-B)", 2.69e6, 170.81e6, ("lkca_b",)),  # l. 32
    "vit_lkca_4m": (246, 11, 6, 2, "ViT/4M-LKCA", 4.05e6, 257.43e6, ()),  # line 52
    "vit_lkca_8m": (306, 14, 6, 2, "ViT/8M-LKCA", 7.98e6, 506.00e6, ()),  # line 57
}
_LKCA_L = (360, 12, 8, 3, "LKCA-L", 12.53e6, 799.61e6, ("lkca_l",))  # 'vit-12m-lkca', line 62

# The two families' block settings (the rest of ViTConfig keeps its SPT defaults).
ATTN = {"mixers": "attn", "pool": "cls"}
# largevit_cnn.py: value Linear without bias (line 65), one kernel (1, 1, k, k) for every channel
# (line 76), output Linear with bias (lines 68-71), mean pooling then mlp_head (lines 141-144, 166).
AUTHORS_LKCA = {"mixers": "lkca", "pool": "mean", "kernel_heads": 1, "lkca_projections": True,
                "head_norm": "pooled"}


def _register(name: str, spec: tuple, block: dict[str, Any], img: int, classes: int,
              description: str) -> None:
    dim, depth, heads, ratio, row, params, macs, aliases = spec
    base = dict(dim=dim, depth=depth, num_heads=heads, mlp_ratio=float(ratio), img_size=img,
                patch_size=img // 8, num_classes=classes, **block)
    # The paper counts every row at CIFAR-10's 32 px and 10 classes (its Tables 4 and 5 print the
    # same figures; LKCA-L's 12.53M is its 32 px count): counted_at says where.
    paper = dict(row=row, params=params, macs=macs, img_size=img, num_classes=classes,
                 counted_at=(32, 10),
                 # the class token largevit_cnn.py creates (line 136) and never reads
                 authors_unused_params=dim if block is AUTHORS_LKCA else 0)

    @register_model(name, aliases=aliases, paper=paper)
    def factory(**overrides: Any) -> VisionTransformer:
        return _build(base, overrides)

    factory.__doc__ = f"{row}: {description}; dim {dim}, depth {depth}, {heads} heads."


for _name, _spec in _VIT.items():
    _register(_name, _spec, ATTN, 32, 10, "ViT (SPT's models/vit.py), class token")
for _name, _spec in _LKCA.items():
    _register(_name, _spec, AUTHORS_LKCA, 32, 10, "the authors' ViT-LKCA (largevit_cnn.py)")
_register("vit_lkca_12m", _LKCA_L, AUTHORS_LKCA, 64, 200, "the authors' ViT-LKCA (largevit_cnn.py)")

# lkca 0.1.0's ViT-LKCA block: LKCA alone in every block, one kernel per head, no projections, the
# LayerNorm on every token before pooling (the digits demo and the ablation use it).
LKCA_PER_HEAD = {"mixers": "lkca", "pool": "mean", "kernel_heads": None,
                 "lkca_projections": False, "head_norm": "tokens"}


@register_model("lkca_digits")
def lkca_digits(**overrides: Any) -> VisionTransformer:
    """The embedded digits demo (``lkca train`` with no arguments): LKCA in place of attention,
    one kernel per head, no projections, dim 80, 5 heads, depth 6, MLP ratio 2, patch 1 on
    scikit-learn's 8x8 digits (an 8x8 grid as in the paper), timm's initialisation: 0.17M
    parameters, no paper row. Why this block and init for the demo: docs/models.md, "The digits
    demo" (measured on digits with the demo's 20-epoch recipe).
    """
    return _build(dict(dim=80, depth=6, num_heads=5, mlp_ratio=2.0, img_size=8, patch_size=1,
                       num_classes=10, init="trunc_normal", **LKCA_PER_HEAD), overrides)
