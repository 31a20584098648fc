"""The authors' Swin checkpoints -> ours (:class:`~lkca.models.baselines.swin.SwinTransformer`).

The authors' code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet, ``models/swin.py``
(SPT's)) saves ``model.state_dict()`` of its own class; :data:`LAYOUTS` maps our registered-name
prefix ``swin_`` to :func:`swin_from_authors`: every key renamed by the substitutions of
:mod:`lkca.authors.substitute` and checked against our model built from the shape the checkpoint
implies.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lkca.authors.substitute import (
    StateDict,
    build,
    convert,
    count,
    get,
)
from lkca.models.baselines.swin import SwinConfig, SwinTransformer


def swin_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``SwinTransformer`` (models/swin.py) -> our :class:`SwinTransformer`."""
    f = "Swin"
    proj = get(sd, "patch_embed.proj.weight", f)  # (C, in_chans, p, p)
    depths = tuple(count(sd, rf"layers\.{i}\.blocks\.(\d+)\.")
                   for i in range(count(sd, r"layers\.(\d+)\.")))
    heads = tuple(get(sd, f"layers.{i}.blocks.0.attn.relative_position_bias_table", f).shape[1]
                  for i in range(len(depths)))
    table = get(sd, "layers.0.blocks.0.attn.relative_position_bias_table", f).shape[0]  # (2w-1)^2
    fc1 = get(sd, "layers.0.blocks.0.mlp.fc1.weight", f)
    side = math.isqrt(get(sd, "absolute_pos_embed", f).shape[1])
    cfg = SwinConfig(img_size=side * proj.shape[2], patch_size=proj.shape[2],
                     in_chans=proj.shape[1], num_classes=get(sd, "head.weight", f).shape[0],
                     embed_dim=proj.shape[0], depths=depths, num_heads=heads,
                     window_size=(math.isqrt(table) + 1) // 2,
                     mlp_ratio=fc1.shape[0] / fc1.shape[1],
                     qkv_bias="layers.0.blocks.0.attn.qkv.bias" in sd)
    return convert(sd, f, build(SwinTransformer, cfg, f), [(r"^patch_embed\.norm\.", "embed_norm.")],
                   drop=r"(relative_position_index|attn_mask)$")


LAYOUTS: dict[str, Callable[[StateDict], StateDict]] = {"swin_": swin_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "swin_from_authors"]
