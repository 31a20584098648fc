"""The authors' T2T-ViT (``models/t2t.py``, vit-pytorch's) -> our T2T-ViT: the soft-split strides no
tensor shows are the authors' rows' (kernel 11 -> stride 8, 7 -> 4, 3 -> 2, 2 -> 1). The
converter is :data:`LAYOUTS`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from lkca.authors import substitute as keys
from lkca.models.baselines.t2t import T2TConfig, T2TViT, soft_split_side

SOFT_SPLIT_STRIDES = {11: 8, 7: 4, 3: 2, 2: 1}  # the authors' rows' (kernel, stride) pairs


def t2t_from_authors(sd: keys.StateDict) -> keys.StateDict:
    """The authors' ``T2TViT`` (models/t2t.py, vit-pytorch) -> our :class:`T2TViT`."""
    f = "T2T"
    n_splits = len([k for k in sd if re.fullmatch(r"to_patch_embedding\.\d+\.weight", k)
                    and sd[k].dim() == 2])
    if n_splits != 1:
        raise keys.fail(f, "expected one linear projection 'to_patch_embedding.<4n>.weight'")
    project = next(k for k in sd if re.fullmatch(r"to_patch_embedding\.\d+\.weight", k))
    n = int(project.split(".")[1]) // 4  # soft splits; transformers at 3, 7, ...
    widths = [keys.get(sd, f"to_patch_embedding.{4 * i + 3}.norm.weight", f).shape[0]
              for i in range(n - 1)] + [sd[project].shape[1]]
    kernels, prev = [], 3
    for w in widths:
        k = math.isqrt(w // prev)
        if k * k * prev != w or k not in SOFT_SPLIT_STRIDES:
            raise keys.fail(f, f"token width {w} is no soft split of the authors' rows")
        kernels.append(k)
        prev = w
    # (dim, heads * dim_head); the head keys.count is in no tensor's shape: the authors' rows use 4
    inner = keys.get(sd, "transformer.layers.0.0.to_out.0.weight", f).shape[1]
    splits = tuple((k, SOFT_SPLIT_STRIDES[k]) for k in kernels)
    tokens = keys.get(sd, "pos_embedding", f).shape[1] - 1
    cfg = T2TConfig(img_size=_t2t_image_size(splits, tokens, f),
                    num_classes=keys.get(sd, "mlp_head.1.weight", f).shape[0], soft_splits=splits,
                    dim=sd[project].shape[0], depth=keys.count(sd, r"transformer\.layers\.(\d+)\."),
                    mlp_dim=keys.get(sd, "transformer.layers.0.1.net.1.weight", f).shape[0],
                    num_heads=4, dim_head=inner // 4)
    rules: keys.Rules = [(rf"^to_patch_embedding\.{4 * n}\.", "project."),
             (r"^to_patch_embedding\.(\d+)\.",
              lambda m: f"restructure.{(int(m.group(1)) - 3) // 4}."),
             *keys.VIT_PYTORCH_RULES, *keys.PATCH_EMBED_RULES]
    return keys.convert(sd, f, keys.build(T2TViT, cfg, f), rules)


def _t2t_image_size(splits: tuple[tuple[int, int], ...], tokens: int, family: str) -> int:
    """The smallest image size (32 and 64 first) whose soft splits leave ``tokens`` tokens."""
    for size in (32, 64, *range(8, 513, 8)):  # the data sets' sizes first
        side = size
        for k, s in splits:
            side = soft_split_side(side, k, s)
        if side * side == tokens:
            return size
    raise keys.fail(family, f"no image size gives {tokens} tokens")


LAYOUTS: dict[str, Callable[[keys.StateDict], keys.StateDict]] = {"t2t_": t2t_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "t2t_from_authors"]
