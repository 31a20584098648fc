"""The authors' XCiT (``models/xcit.py``) -> our XCiT, its widths, depths and classes read from the
tensors. The converter is :data:`LAYOUTS`."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor

from lkca.authors import rename as keys
from lkca.models.baselines.xcit import XCiT, XCiTConfig

_XCIT: keys.Rules = [
    (r"to_patch_embedding\.1\.(weight|bias)", r"patch_norm.\1"),
    (r"to_patch_embedding\.2\.(weight|bias)", r"patch_embed.\1"),
    (r"to_patch_embedding\.3\.(weight|bias)", r"embed_norm.\1"),
    (r"pos_embedding", "pos_embed"),
    (r"cls_token", "cls_token"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.scale", r"blocks.\1.gamma1"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.fn\.norm\.(weight|bias)", r"blocks.\1.attn.norm.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.weight", r"blocks.\1.attn.qkv.weight"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.fn\.temperature", r"blocks.\1.attn.temperature"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.scale", r"blocks.\1.gamma2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.fn\.net\.0\.(weight|bias)", r"blocks.\1.lpi.norm.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.fn\.net\.2\.(weight|bias)", r"blocks.\1.lpi.conv1.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.fn\.net\.3\.(\w+)", r"blocks.\1.lpi.bn.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.fn\.net\.5\.(weight|bias)", r"blocks.\1.lpi.conv2.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.2\.scale", r"blocks.\1.gamma3"),
    (r"xcit_transformer\.layers\.(\d+)\.2\.fn\.net\.0\.(weight|bias)", r"blocks.\1.ff.norm.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.2\.fn\.net\.1\.(weight|bias)", r"blocks.\1.ff.fc1.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.2\.fn\.net\.4\.(weight|bias)", r"blocks.\1.ff.fc2.\2"),
    (r"final_norm\.(weight|bias)", r"norm.\1"),
    (r"cls_transformer\.layers\.(\d+)\.0\.scale", r"cls_blocks.\1.gamma1"),
    (r"cls_transformer\.layers\.(\d+)\.0\.fn\.norm\.(weight|bias)", r"cls_blocks.\1.attn.norm.\2"),
    (r"cls_transformer\.layers\.(\d+)\.0\.fn\.to_q\.weight", r"cls_blocks.\1.attn.q.weight"),
    (r"cls_transformer\.layers\.(\d+)\.0\.fn\.to_kv\.weight", r"cls_blocks.\1.attn.kv.weight"),
    (r"cls_transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.(weight|bias)", r"cls_blocks.\1.attn.proj.\2"),
    (r"cls_transformer\.layers\.(\d+)\.1\.scale", r"cls_blocks.\1.gamma2"),
    (r"cls_transformer\.layers\.(\d+)\.1\.fn\.net\.0\.(weight|bias)", r"cls_blocks.\1.ff.norm.\2"),
    (r"cls_transformer\.layers\.(\d+)\.1\.fn\.net\.1\.(weight|bias)", r"cls_blocks.\1.ff.fc1.\2"),
    (r"cls_transformer\.layers\.(\d+)\.1\.fn\.net\.4\.(weight|bias)", r"cls_blocks.\1.ff.fc2.\2"),
    (r"mlp_head\.0\.(weight|bias)", r"head_norm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"head.\1"),
]


def xcit_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' XCiT state dict -> ours."""
    family = "XCiT"
    ours = keys.rename(sd, _XCIT, family)
    heads = keys.get(ours, "blocks.0.attn.temperature", family).shape[0]
    patch = keys.patch_side(keys.get(ours, "patch_norm.weight", family).shape[0], family)
    cfg = XCiTConfig(
        img_size=math.isqrt(keys.get(ours, "pos_embed", family).shape[1]) * patch, patch_size=patch,
        num_classes=keys.get(ours, "head.weight", family).shape[0],
        dim=keys.get(ours, "norm.weight", family).shape[0], depth=keys.count(ours, r"blocks\.(\d+)\..*"),
        cls_depth=keys.count(ours, r"cls_blocks\.(\d+)\..*"), heads=heads,
        dim_head=ours["blocks.0.attn.qkv.weight"].shape[0] // 3 // heads,
        mlp_dim=keys.get(ours, "blocks.0.ff.fc1.weight", family).shape[0],
        lpi_kernel=keys.get(ours, "blocks.0.lpi.conv1.weight", family).shape[-1])
    return keys.check_against(keys.built(XCiT, cfg), ours, family)


LAYOUTS: dict[str, Callable[[dict[str, Tensor]], dict[str, Tensor]]] = {"xcit_": xcit_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "xcit_from_authors"]
