"""The authors' DeepViT (``models/deepvit.py``, vit-pytorch's) -> our DeepViT: heads read from the
re-attention weights. The converter is :data:`LAYOUTS`."""

from __future__ import annotations

import math
from collections.abc import Callable

from lkca.authors import substitute as keys
from lkca.models.baselines.deepvit import DeepViT, DeepViTConfig


def deepvit_from_authors(sd: keys.StateDict) -> keys.StateDict:
    """The authors' ``DeepViT`` (models/deepvit.py, vit-pytorch) -> our :class:`DeepViT`."""
    f = "DeepViT"
    s = keys.vit_pytorch_shape(sd, f, "transformer")
    heads = keys.get(sd, "transformer.layers.0.0.reattn_weights", f).shape[0]
    inner = keys.get(sd, "transformer.layers.0.0.to_qkv.weight", f).shape[0] // 3
    cfg = DeepViTConfig(img_size=math.isqrt(s["tokens"] - 1) * s["patch_size"],
                        patch_size=s["patch_size"], num_classes=s["num_classes"], dim=s["dim"],
                        depth=s["depth"], num_heads=heads, dim_head=inner // heads,
                        mlp_dim=s["mlp_dim"])
    rules: keys.Rules = [(r"^transformer\.", ""), *keys.VIT_PYTORCH_RULES,
             (r"attn\.reattn_weights$", "attn.theta"), (r"attn\.reattn_norm\.1\.", "attn.map_norm."),
             *keys.PATCH_EMBED_RULES]
    return keys.convert(sd, f, keys.build(DeepViT, cfg, f), rules)


LAYOUTS: dict[str, Callable[[keys.StateDict], keys.StateDict]] = {"deepvit_": deepvit_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "deepvit_from_authors"]
