"""The authors' RegionViT (``models/regionvit.py``) -> our RegionViT, its stage widths and depths
read from the tensors. The converter is :data:`LAYOUTS`."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor

from lkca.authors import rename as keys
from lkca.models.baselines.regionvit import RegionViT, RegionViTConfig

_REGIONVIT: keys.Rules = [
    (r"local_encoder\.(weight|bias)", r"local_embed.\1"),
    (r"region_encoder\.1\.(weight|bias)", r"region_embed.\1"),
    (r"layers\.([1-9]\d*)\.0\.conv\.(weight|bias)",
     lambda m: f"downsamples.{int(m.group(1)) - 1}.{m.group(2)}"),
    (r"layers\.(\d+)\.2\.local_rel_pos_bias\.weight", r"stages.\1.rel_pos_bias"),
    (r"layers\.(\d+)\.2\.layers\.(\d+)\.0\.(.+)",
     lambda m: f"stages.{m.group(1)}.attns.{m.group(2)}."
               + m.group(3).replace("to_qkv.", "qkv.").replace("to_out.0.", "proj.")),
    (r"layers\.(\d+)\.2\.layers\.(\d+)\.1\.([014])\.(weight|bias)",
     lambda m: f"stages.{m.group(1)}.ffs.{m.group(2)}."
               + {"0": "norm", "1": "fc1", "4": "fc2"}[m.group(3)] + f".{m.group(4)}"),
    (r"to_logits\.1\.(weight|bias)", r"norm.\1"),
    (r"to_logits\.2\.(weight|bias)", r"head.\1"),
]


def regionvit_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' RegionViT state dict (no PEG, one-conv local tokenizer) -> ours."""
    family = "RegionViT"
    ours = keys.rename(sd, _REGIONVIT, family)
    n = keys.count(ours, r"stages\.(\d+)\..*")
    table = keys.get(ours, "stages.0.rel_pos_bias", family)
    window = (math.isqrt(table.shape[0]) + 1) // 2
    heads = table.shape[1]
    region = keys.patch_side(keys.get(ours, "region_embed.weight", family).shape[1], family)
    dims = tuple(keys.get(ours, f"stages.{i}.attns.0.norm.weight", family).shape[0] for i in range(n))
    cfg = RegionViTConfig(
        img_size=8 * window, num_classes=keys.get(ours, "head.weight", family).shape[0], dims=dims,
        depths=tuple(keys.count(ours, rf"stages\.{i}\.attns\.(\d+)\..*") for i in range(n)),
        window_size=window, local_patch_size=region // window, heads=heads,
        dim_head=ours["stages.0.attns.0.qkv.weight"].shape[0] // 3 // heads,
        mlp_ratio=keys.get(ours, "stages.0.ffs.0.fc1.weight", family).shape[0] // dims[0])
    return keys.check_against(keys.built(RegionViT, cfg), ours, family)


LAYOUTS: dict[str, Callable[[dict[str, Tensor]], dict[str, Tensor]]] = {"regionvit_": regionvit_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "regionvit_from_authors"]
