"""The authors' DeepViT checkpoints -> ours (:class:`~lkca.models.baselines.deepvit.DeepViT`).

The authors' code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet,
``models/deepvit.py`` (vit-pytorch)) saves ``model.state_dict()`` of its own class; :data:`LAYOUTS`
maps our registered-name prefix ``deepvit_`` to :func:`deepvit_from_authors`: every key renamed by
the substitutions of :mod:`lkca.authors.substitute` and checked against our model built from the
shape the checkpoint implies.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lkca.authors.substitute import (
    PATCH_EMBED_RULES,
    VIT_PYTORCH_RULES,
    Rules,
    StateDict,
    build,
    convert,
    get,
    vit_pytorch_shape,
)
from lkca.models.baselines.deepvit import DeepViT, DeepViTConfig


def deepvit_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``DeepViT`` (models/deepvit.py, vit-pytorch) -> our :class:`DeepViT`."""
    f = "DeepViT"
    s = vit_pytorch_shape(sd, f, "transformer")
    heads = get(sd, "transformer.layers.0.0.reattn_weights", f).shape[0]
    inner = get(sd, "transformer.layers.0.0.to_qkv.weight", f).shape[0] // 3
    cfg = DeepViTConfig(img_size=math.isqrt(s["tokens"] - 1) * s["patch_size"],
                        patch_size=s["patch_size"], num_classes=s["num_classes"], dim=s["dim"],
                        depth=s["depth"], num_heads=heads, dim_head=inner // heads,
                        mlp_dim=s["mlp_dim"])
    rules: Rules = [(r"^transformer\.", ""), *VIT_PYTORCH_RULES,
             (r"attn\.reattn_weights$", "attn.theta"), (r"attn\.reattn_norm\.1\.", "attn.map_norm."),
             *PATCH_EMBED_RULES]
    return convert(sd, f, build(DeepViT, cfg, f), rules)


LAYOUTS: dict[str, Callable[[StateDict], StateDict]] = {"deepvit_": deepvit_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "deepvit_from_authors"]
