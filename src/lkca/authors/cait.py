"""The authors' CaiT (``models/cait.py``, vit-pytorch's) -> our CaiT: LayerScale (1, 1, dim) tensors
reshaped, heads read from the talking-heads mixing. The converter is :data:`LAYOUTS`."""

from __future__ import annotations

import math
from collections.abc import Callable

from lkca.authors import substitute as keys
from lkca.models.baselines.cait import CaiT, CaiTConfig


def cait_from_authors(sd: keys.StateDict) -> keys.StateDict:
    """The authors' ``CaiT`` (models/cait.py, vit-pytorch) -> our :class:`CaiT`."""
    f = "CaiT"
    s = keys.vit_pytorch_shape(sd, f, "patch_transformer")
    heads = keys.get(sd, "patch_transformer.layers.0.0.fn.mix_heads_pre_attn", f).shape[0]
    inner = keys.get(sd, "patch_transformer.layers.0.0.fn.to_q.weight", f).shape[0]
    cfg = CaiTConfig(img_size=math.isqrt(s["tokens"]) * s["patch_size"],
                     patch_size=s["patch_size"], num_classes=s["num_classes"], dim=s["dim"],
                     depth=s["depth"], cls_depth=keys.count(sd, r"cls_transformer\.layers\.(\d+)\."),
                     num_heads=heads, dim_head=inner // heads, mlp_dim=s["mlp_dim"])
    rules: keys.Rules = [(r"^patch_transformer\.", "blocks."), (r"^cls_transformer\.", "cls_blocks."),
             (r"\.layers\.(\d+)\.0\.scale$", r".\1.gamma1"),
             (r"\.layers\.(\d+)\.1\.scale$", r".\1.gamma2"),
             (r"\.layers\.(\d+)\.0\.fn\.", r".\1.attn."), (r"\.layers\.(\d+)\.1\.fn\.", r".\1.ff."),
             (r"attn\.to_q\.", "attn.q."), (r"attn\.to_kv\.", "attn.kv."),
             (r"attn\.mix_heads_pre_attn$", "attn.mix_pre"),
             (r"attn\.mix_heads_post_attn$", "attn.mix_post"), *keys.VIT_PYTORCH_RULES,
             *keys.PATCH_EMBED_RULES]
    return keys.convert(sd, f, keys.build(CaiT, cfg, f), rules, reshape=r"\.scale$")


LAYOUTS: dict[str, Callable[[keys.StateDict], keys.StateDict]] = {"cait_": cait_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "cait_from_authors"]
