"""The authors' Twins-SVT (``models/twins_svt.py``) -> our Twins-SVT: channel LayerNorms (1, C, 1,
1) become (C,); 8 heads (the weights do not say). The converter is :data:`LAYOUTS`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from torch import Tensor

from lkca.authors import rename as keys
from lkca.errors import AuthorsLayoutError
from lkca.models.baselines.twins import TwinsConfig, TwinsSVT


def _twins_branch(rest: str) -> str:
    """Keys under one residual branch (``fn.``) of a Twins block -> ours."""
    rest = rest.removeprefix("fn.")
    rest = re.sub(r"^norm\.g$", "norm.weight", rest)
    rest = re.sub(r"^norm\.b$", "norm.bias", rest)
    rest = rest.replace("net.0.g", "norm.weight").replace("net.0.b", "norm.bias")
    return keys.vit_pytorch_ff(keys.vit_pytorch_attn(rest))


_TWINS_BRANCH = ("local_attn", "local_ff", "global_attn", "global_ff")


def _twins_key(m: re.Match[str]) -> str | None:
    stage, part, rest = m.group(1), m.group(2), m.group(3)
    if part == "0":  # patch merging: proj.{0 LN, 1 conv, 2 LN}
        j = re.fullmatch(r"proj\.([012])\.(g|b|weight|bias)", rest)
        if j:
            name = ("norm_in", "proj", "norm_out")[int(j.group(1))]
            leaf = {"g": "weight", "b": "bias"}.get(j.group(2), j.group(2))
            return f"stages.{stage}.merge.{name}.{leaf}"
    elif part == "2":  # PEG: Residual(conv)
        j = re.fullmatch(r"proj\.fn\.(weight|bias)", rest)
        if j:
            return f"stages.{stage}.peg.{j.group(1)}"
    else:  # Transformer(depth=1) then Transformer(depth): layers.{j}.{0..3}.fn...
        j = re.fullmatch(r"layers\.(\d+)\.([0-3])\.(.+)", rest)
        if j:
            where = "first" if part == "1" else f"blocks.{j.group(1)}"
            if part == "1" and j.group(1) != "0":
                return None
            return (f"stages.{stage}.{where}.{_TWINS_BRANCH[int(j.group(2))]}."
                    f"{_twins_branch(j.group(3))}")
    return None


def twins_svt_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' TwinsSVT state dict -> ours (channel norms (1, C, 1, 1) -> (C,); 8 heads and
    local window 8 assumed: the weights do not say)."""
    family = "Twins-SVT"
    stage_keys = [int(m.group(1)) for k in sd if (m := re.fullmatch(r"layers\.(\d+)\..*", k))]
    head = max(stage_keys, default=0)  # the classifier: after 4 stages, pool and rearrange
    rules: keys.Rules = [
        (rf"layers\.{head}\.(weight|bias)", r"head.\1"),
        (r"layers\.(\d+)\.([0-3])\.(.+)", _twins_key),
    ]
    ours = {}
    for key, value in keys.rename(sd, rules, family).items():
        if key.endswith(("norm.weight", "norm.bias", "norm_in.weight", "norm_in.bias",
                         "norm_out.weight", "norm_out.bias")):
            if value.dim() != 4 or value.shape[0] != 1 or value.shape[2:] != (1, 1):
                raise AuthorsLayoutError(f"Twins-SVT: the channel norm {key!r} has shape "
                                         f"{tuple(value.shape)}; the authors' is (1, C, 1, 1)")
            value = value.reshape(-1)
        ours[key] = value
    n = keys.count(ours, r"stages\.(\d+)\..*")
    dims = tuple(keys.get(ours, f"stages.{i}.merge.proj.weight", family).shape[0] for i in range(n))
    in_dim = keys.get(ours, "stages.0.merge.proj.weight", family).shape[1]
    patch = math.isqrt(in_dim // 3)
    q = keys.get(ours, "stages.0.first.global_attn.q.weight", family)
    cfg = TwinsConfig(
        num_classes=keys.get(ours, "head.weight", family).shape[0], dims=dims,
        depths=tuple(keys.count(ours, rf"stages\.{i}\.blocks\.(\d+)\..*") for i in range(n)),
        patch_size=patch, heads=keys.ROW_HEADS, dim_head=q.shape[0] // keys.ROW_HEADS,
        global_k=keys.get(ours, "stages.0.first.global_attn.kv.weight", family).shape[-1],
        mlp_ratio=keys.get(ours, "stages.0.first.global_ff.fc1.weight", family).shape[0] // dims[0],
        peg_kernel=keys.get(ours, "stages.0.peg.weight", family).shape[-1])
    return keys.check_against(keys.built(TwinsSVT, cfg), ours, family)


LAYOUTS: dict[str, Callable[[dict[str, Tensor]], dict[str, Tensor]]] = {"twins_svt_": twins_svt_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "twins_svt_from_authors"]
