"""The authors' CaiT checkpoints -> ours (:class:`~lkca.models.baselines.cait.CaiT`).

The authors' code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet, ``models/cait.py``
(vit-pytorch)) saves ``model.state_dict()`` of its own class; :data:`LAYOUTS` maps our
registered-name prefix ``cait_`` to :func:`cait_from_authors`: every key renamed by the
substitutions of :mod:`lkca.authors.substitute` and checked against our model built from the shape
the checkpoint implies.
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
    count,
    get,
    vit_pytorch_shape,
)
from lkca.models.baselines.cait import CaiT, CaiTConfig


def cait_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``CaiT`` (models/cait.py, vit-pytorch) -> our :class:`CaiT`."""
    f = "CaiT"
    s = vit_pytorch_shape(sd, f, "patch_transformer")
    heads = get(sd, "patch_transformer.layers.0.0.fn.mix_heads_pre_attn", f).shape[0]
    inner = get(sd, "patch_transformer.layers.0.0.fn.to_q.weight", f).shape[0]
    cfg = CaiTConfig(img_size=math.isqrt(s["tokens"]) * s["patch_size"],
                     patch_size=s["patch_size"], num_classes=s["num_classes"], dim=s["dim"],
                     depth=s["depth"], cls_depth=count(sd, r"cls_transformer\.layers\.(\d+)\."),
                     num_heads=heads, dim_head=inner // heads, mlp_dim=s["mlp_dim"])
    rules: Rules = [(r"^patch_transformer\.", "blocks."), (r"^cls_transformer\.", "cls_blocks."),
             (r"\.layers\.(\d+)\.0\.scale$", r".\1.gamma1"),
             (r"\.layers\.(\d+)\.1\.scale$", r".\1.gamma2"),
             (r"\.layers\.(\d+)\.0\.fn\.", r".\1.attn."), (r"\.layers\.(\d+)\.1\.fn\.", r".\1.ff."),
             (r"attn\.to_q\.", "attn.q."), (r"attn\.to_kv\.", "attn.kv."),
             (r"attn\.mix_heads_pre_attn$", "attn.mix_pre"),
             (r"attn\.mix_heads_post_attn$", "attn.mix_post"), *VIT_PYTORCH_RULES,
             *PATCH_EMBED_RULES]
    return convert(sd, f, build(CaiT, cfg, f), rules, reshape=r"\.scale$")


LAYOUTS: dict[str, Callable[[StateDict], StateDict]] = {"cait_": cait_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "cait_from_authors"]
