"""Key substitutions for the authors' Swin, CaiT, DeepViT, T2T, MobileViT and CvT checkpoints.

Each of those families' converters (:mod:`lkca.authors.swin` ...) renames every key of the
authors' state dict by regex substitutions applied in order (:func:`convert`), reshapes
LayerScale and channel-LayerNorm tensors, drops the buffers our models rebuild, and checks every
key and shape against our model built from the shape the checkpoint implies. Anything else
raises :class:`~lkca.errors.AuthorsLayoutError` naming the first difference.

What a checkpoint cannot tell (no tensor depends on it) is taken from the authors' rows
(``models/create_model.py``): T2T's soft-split strides (kernel 11 -> stride 8, 7 -> 4, 3 -> 2,
2 -> 1), CvT's embedding strides (4, 2, 2), key/value stride 2 and heads of 64 channels; the
image size of MobileViT and CvT (they have no position table) stays our default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lkca.errors import AuthorsLayoutError

StateDict = dict[str, Tensor]
Rules = Sequence[tuple[str, str | Callable[[re.Match[str]], str]]]


# vit-pytorch's transformer layers: [attention, feed-forward] pairs, Sequential indices inside
VIT_PYTORCH_RULES: Rules = [
    (r"(^|\.)layers\.(\d+)\.0\.", r"\1blocks.\2.attn."),
    (r"(^|\.)layers\.(\d+)\.1\.", r"\1blocks.\2.ff."),
    (r"attn\.to_qkv\.", "attn.qkv."), (r"attn\.to_out\.0\.", "attn.proj."),
    (r"ff\.net\.0\.", "ff.norm."), (r"ff\.net\.1\.", "ff.fc1."), (r"ff\.net\.4\.", "ff.fc2."),
]
PATCH_EMBED_RULES: Rules = [
    (r"^to_patch_embedding\.1\.", "patch_embed.norm_in."),
    (r"^to_patch_embedding\.2\.", "patch_embed.proj."),
    (r"^to_patch_embedding\.3\.", "patch_embed.norm_out."),
    (r"^pos_embedding$", "pos_embed"),
    (r"^mlp_head\.0\.", "head_norm."), (r"^mlp_head\.1\.", "head."),
]


def fail(family: str, what: str) -> AuthorsLayoutError:
    return AuthorsLayoutError(f"not the authors' {family} layout: {what}")


def get(sd: StateDict, key: str, family: str) -> Tensor:
    if key not in sd:
        raise fail(family, f"no '{key}'")
    return sd[key]


def count(sd: StateDict, pattern: str) -> int:
    """How many distinct indices ``(\\d+)`` in ``pattern`` the keys of ``sd`` hold."""
    found = {m.group(1) for k in sd if (m := re.match(pattern, k))}
    return len(found)


def convert(sd: StateDict, family: str, model: nn.Module, rules: Rules,
            drop: str | None = None, reshape: str | None = None) -> StateDict:
    """Rename every key of ``sd`` by ``rules`` (regex substitutions in order), drop the keys
    matching ``drop``, reshape those matching ``reshape`` (LayerScale, channel LayerNorm) to our
    shape, and check that the result has exactly ``model``'s keys and shapes."""
    expected = model.state_dict()
    out: StateDict = {}
    for key, value in sd.items():
        if drop and re.search(drop, key):
            continue
        ours = key
        for pattern, repl in rules:
            ours = re.sub(pattern, repl, ours)
        if ours not in expected:
            raise fail(family, f"unexpected key '{key}'")
        want = expected[ours].shape
        if reshape and re.search(reshape, key) and value.numel() == want.numel():
            value = value.reshape(want)
        if value.shape != want:
            raise fail(family, f"'{key}' has shape {tuple(value.shape)}, the shape it implies "
                                f"needs {tuple(want)}")
        out[ours] = value
    missing = sorted(set(expected) - set(out))
    if missing:
        raise fail(family, f"missing '{missing[0]}' (ours) and {len(missing) - 1} more")
    return out


def build(cls: Callable[..., nn.Module], cfg: Any, family: str) -> nn.Module:
    try:
        with torch.device("meta"):  # shapes only
            return cls(cfg)
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        raise fail(family, f"its tensors imply no buildable model ({err})") from None


def vit_pytorch_shape(sd: StateDict, family: str, blocks: str) -> dict[str, Any]:
    """dim, patch, image size, classes, depth and MLP width of a vit-pytorch ViT-like model."""
    proj = get(sd, "to_patch_embedding.2.weight", family)  # (dim, 3 * p * p)
    patch = math.isqrt(proj.shape[1] // 3)
    tokens = get(sd, "pos_embedding", family).shape[1]
    return dict(dim=proj.shape[0], patch_size=patch, tokens=tokens,
                num_classes=get(sd, "mlp_head.1.weight", family).shape[0],
                depth=count(sd, rf"{blocks}\.layers\.(\d+)\."),
                mlp_dim=get(sd, f"{blocks}.layers.0.1.{'fn.' if family == 'CaiT' else ''}"
                                 "net.1.weight", family).shape[0])
