"""The authors' CrossViT (``models/crossvit.py``) -> our CrossViT: both branches, their encoders and
cross-attention; 8 heads (the weights do not say). The converter is :data:`LAYOUTS`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from torch import Tensor

from lkca.authors import rename as keys
from lkca.models.baselines.crossvit import CrossViT, CrossViTConfig

_ATTN = r"norm\.(?:weight|bias)|q\.weight|kv\.weight|proj\.(?:weight|bias)"


def _crossvit_key(m: re.Match[str]) -> str | None:
    block, part, rest = m.group(1), int(m.group(2)), m.group(3)
    if part < 2:  # an encoder: .norm or .layers.{j}.{0 attention, 1 feed-forward}.<...>
        enc = f"blocks.{block}.{('sm', 'lg')[part]}_encoder"
        if rest.startswith("norm."):
            return f"{enc}.{rest}"
        j = re.fullmatch(r"layers\.(\d+)\.([01])\.(.+)", rest)
        if j and j.group(2) == "0":
            return f"{enc}.attns.{j.group(1)}.{keys.vit_pytorch_attn(j.group(3))}"
        if j:
            return f"{enc}.ffs.{j.group(1)}.{keys.vit_pytorch_ff(j.group(3))}"
    else:  # cross-attention: .layers.{k}.{0 small, 1 large}.(fn.<attn> | project_in | project_out)
        j = re.fullmatch(r"layers\.(\d+)\.([01])\.(fn\.|project_in\.|project_out\.)(.+)", rest)
        if j:
            cross = f"blocks.{block}.{('sm', 'lg')[int(j.group(2))]}_cross.{j.group(1)}"
            if j.group(3) == "fn.":
                return f"{cross}.attn.{keys.vit_pytorch_attn(j.group(4))}"
            return f"{cross}.{j.group(3).replace('project_', 'proj_')}{j.group(4)}"
    return None


_CROSSVIT: keys.Rules = [
    (r"(sm|lg)_image_embedder\.to_patch_embedding\.1\.(weight|bias)", r"\1_branch.patch_norm.\2"),
    (r"(sm|lg)_image_embedder\.to_patch_embedding\.2\.(weight|bias)", r"\1_branch.patch_embed.\2"),
    (r"(sm|lg)_image_embedder\.to_patch_embedding\.3\.(weight|bias)", r"\1_branch.embed_norm.\2"),
    (r"(sm|lg)_image_embedder\.pos_embedding", r"\1_branch.pos_embed"),
    (r"(sm|lg)_image_embedder\.cls_token", r"\1_branch.cls_token"),
    (r"multi_scale_encoder\.layers\.(\d+)\.([012])\.(.+)", _crossvit_key),
    (r"(sm|lg)_mlp_head\.0\.(weight|bias)", r"\1_head_norm.\2"),
    (r"(sm|lg)_mlp_head\.1\.(weight|bias)", r"\1_head.\2"),
]


def crossvit_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' CrossViT state dict -> ours (8 heads assumed: the weights do not say)."""
    family = "CrossViT"
    ours = keys.rename(sd, _CROSSVIT, family)
    pos = [keys.get(ours, f"{b}_branch.pos_embed", family) for b in ("sm", "lg")]
    patches = [keys.patch_side(keys.get(ours, f"{b}_branch.patch_norm.weight", family).shape[0], family)
               for b in ("sm", "lg")]
    inner = keys.get(ours, "blocks.0.sm_encoder.attns.0.q.weight", family).shape[0]
    cfg = CrossViTConfig(
        img_size=math.isqrt(pos[0].shape[1] - 1) * patches[0], patch_sizes=(patches[0], patches[1]),
        num_classes=keys.get(ours, "sm_head.weight", family).shape[0],
        dims=(pos[0].shape[-1], pos[1].shape[-1]),
        enc_depths=(keys.count(ours, r"blocks\.0\.sm_encoder\.attns\.(\d+)\..*"),
                    keys.count(ours, r"blocks\.0\.lg_encoder\.attns\.(\d+)\..*")),
        mlp_dims=(keys.get(ours, "blocks.0.sm_encoder.ffs.0.fc1.weight", family).shape[0],
                  keys.get(ours, "blocks.0.lg_encoder.ffs.0.fc1.weight", family).shape[0]),
        heads=keys.ROW_HEADS, dim_head=inner // keys.ROW_HEADS,
        cross_depth=keys.count(ours, r"blocks\.0\.sm_cross\.(\d+)\..*"),
        depth=keys.count(ours, r"blocks\.(\d+)\..*"))
    return keys.check_against(keys.built(CrossViT, cfg), ours, family)


LAYOUTS: dict[str, Callable[[dict[str, Tensor]], dict[str, Tensor]]] = {"crossvit_": crossvit_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "crossvit_from_authors"]
