"""The authors' Swin (``models/swin.py``, SPT's) -> our Swin: its relative-position index and shift
masks are dropped (ours rebuilds them). The converter is :data:`LAYOUTS`."""

from __future__ import annotations

import math
from collections.abc import Callable

from lkca.authors import substitute as keys
from lkca.models.baselines.swin import SwinConfig, SwinTransformer


def swin_from_authors(sd: keys.StateDict) -> keys.StateDict:
    """The authors' ``SwinTransformer`` (models/swin.py) -> our :class:`SwinTransformer`."""
    f = "Swin"
    proj = keys.get(sd, "patch_embed.proj.weight", f)  # (C, in_chans, p, p)
    depths = tuple(keys.count(sd, rf"layers\.{i}\.blocks\.(\d+)\.")
                   for i in range(keys.count(sd, r"layers\.(\d+)\.")))
    heads = tuple(keys.get(sd, f"layers.{i}.blocks.0.attn.relative_position_bias_table", f).shape[1]
                  for i in range(len(depths)))
    table = keys.get(sd, "layers.0.blocks.0.attn.relative_position_bias_table", f).shape[0]  # (2w-1)^2
    fc1 = keys.get(sd, "layers.0.blocks.0.mlp.fc1.weight", f)
    side = math.isqrt(keys.get(sd, "absolute_pos_embed", f).shape[1])
    cfg = SwinConfig(img_size=side * proj.shape[2], patch_size=proj.shape[2],
                     in_chans=proj.shape[1], num_classes=keys.get(sd, "head.weight", f).shape[0],
                     embed_dim=proj.shape[0], depths=depths, num_heads=heads,
                     window_size=(math.isqrt(table) + 1) // 2,
                     mlp_ratio=fc1.shape[0] / fc1.shape[1],
                     qkv_bias="layers.0.blocks.0.attn.qkv.bias" in sd)
    return keys.convert(sd, f, keys.build(SwinTransformer, cfg, f),
                        [(r"^patch_embed\.norm\.", "embed_norm.")],
                        drop=r"(relative_position_index|attn_mask)$")


LAYOUTS: dict[str, Callable[[keys.StateDict], keys.StateDict]] = {"swin_": swin_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "swin_from_authors"]
