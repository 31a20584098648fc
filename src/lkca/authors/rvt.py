"""The authors' RvT (``models/rvt.py``) -> our RvT: the rotary buffer (``pos_emb.scales``) is
checked and dropped (ours computes it). The converter is :data:`LAYOUTS`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lkca.authors import rename as keys
from lkca.errors import AuthorsLayoutError
from lkca.models.baselines.rvt import RvT, RvTConfig

_RVT: keys.Rules = [
    (r"to_patch_embedding\.1\.(weight|bias)", r"patch_embed.\1"),
    (r"cls_token", "cls_token"),
    (r"transformer\.layers\.(\d+)\.0\.norm\.(weight|bias)", r"blocks.\1.attn.norm.\2"),
    (r"transformer\.layers\.(\d+)\.0\.to_q\.conv\.net\.0\.weight", r"blocks.\1.attn.q.depthwise.weight"),
    (r"transformer\.layers\.(\d+)\.0\.to_q\.conv\.net\.1\.weight", r"blocks.\1.attn.q.pointwise.weight"),
    (r"transformer\.layers\.(\d+)\.0\.to_q\.cls_proj\.(weight|bias)", r"blocks.\1.attn.q.cls_proj.\2"),
    (r"transformer\.layers\.(\d+)\.0\.to_kv\.weight", r"blocks.\1.attn.kv.weight"),
    (r"transformer\.layers\.(\d+)\.0\.to_out\.0\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"transformer\.layers\.(\d+)\.1\.net\.0\.(weight|bias)", r"blocks.\1.ff.norm.\2"),
    (r"transformer\.layers\.(\d+)\.1\.net\.1\.(weight|bias)", r"blocks.\1.ff.fc1.\2"),
    (r"transformer\.layers\.(\d+)\.1\.net\.4\.(weight|bias)", r"blocks.\1.ff.fc2.\2"),
    (r"mlp_head\.0\.(weight|bias)", r"norm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"head.\1"),
]


def rvt_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' RvT state dict -> ours (the rotary ``scales`` buffer checked and dropped)."""
    family = "RvT"
    sd = dict(sd)
    scales = sd.pop("transformer.pos_emb.scales", None)
    if scales is None or scales.dim() != 1 or len(scales) < 1:
        raise AuthorsLayoutError("RvT: the checkpoint lacks the rotary buffer "
                                 "'transformer.pos_emb.scales' of the authors' layout")
    img_size = round(2 * float(scales[-1]))
    expected = torch.linspace(1.0, img_size / 2, len(scales))
    if not torch.allclose(scales.float().cpu(), expected):
        raise AuthorsLayoutError("RvT: 'transformer.pos_emb.scales' is not linspace(1, img_size / "
                                 "2, dim_head / 4) as the authors' rvt.py builds it")
    ours = keys.rename(sd, _RVT, family)
    kv = keys.get(ours, "blocks.0.attn.kv.weight", family)
    dim_head = 4 * len(scales)
    cfg = RvTConfig(img_size=img_size, patch_size=keys.patch_side(
        keys.get(ours, "patch_embed.weight", family).shape[1], family),
        num_classes=keys.get(ours, "head.weight", family).shape[0],
        dim=ours["cls_token"].shape[-1] if "cls_token" in ours else kv.shape[1],
        depth=keys.count(ours, r"blocks\.(\d+)\..*"), heads=kv.shape[0] // 2 // dim_head,
        dim_head=dim_head, mlp_dim=keys.get(ours, "blocks.0.ff.fc2.weight", family).shape[1],
        query_kernel=keys.get(ours, "blocks.0.attn.q.depthwise.weight", family).shape[-1])
    return keys.check_against(keys.built(RvT, cfg), ours, family)


LAYOUTS: dict[str, Callable[[dict[str, Tensor]], dict[str, Tensor]]] = {"rvt_": rvt_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "rvt_from_authors"]
