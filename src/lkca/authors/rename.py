"""Key renaming for the authors' RvT, XCiT, CrossViT, RegionViT and Twins-SVT checkpoints.

The authors' code names its parameters after its module tree
(``transformer.layers.0.0.to_q.conv.net.0.weight``). Each of those families' converters
(:mod:`lkca.authors.rvt` ...) renames every key by the first rule that matches it whole
(:func:`rename`; a key no rule knows is refused) and checks the result key by key and shape by
shape against our model of the shape the checkpoint implies (:func:`check_against`; its widths,
depths and classes read from the tensors). Attention head counts that leave no trace in the
weights (CrossViT, Twins-SVT: ``heads * dim_head`` only) are taken as the registered rows' 8
(:data:`ROW_HEADS`). A mismatch raises :class:`~lkca.errors.AuthorsLayoutError`, one line naming
the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from lkca.errors import AuthorsLayoutError

Rules = list[tuple[str, str | Callable[[re.Match[str]], str | None]]]


def foreign(family: str, key: str) -> AuthorsLayoutError:
    return AuthorsLayoutError(f"{family}: key {key!r} is not in the authors' {family} layout; "
                              "pass a state dict saved from their model")


def rename(sd: dict[str, Tensor], rules: Rules, family: str) -> dict[str, Tensor]:
    """Each key through the first rule whose pattern matches it whole (a callable target returns
    None for a key it does not know); unknown keys raise."""
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        for pattern, target in rules:
            m = re.fullmatch(pattern, key)
            if m:
                new = target(m) if callable(target) else m.expand(target)
                if new is None:
                    raise foreign(family, key)
                out[new] = value
                break
        else:
            raise foreign(family, key)
    return out


def count(sd: dict[str, Tensor], pattern: str) -> int:
    """How many distinct values the one group of ``pattern`` takes over the keys."""
    return len({m.group(1) for k in sd if (m := re.fullmatch(pattern, k))})


def get(sd: dict[str, Tensor], key: str, family: str) -> Tensor:
    if key not in sd:
        raise AuthorsLayoutError(f"{family}: the checkpoint lacks the authors' tensor for {key!r};"
                                 " pass a complete state dict")
    return sd[key]


def check_against(model: nn.Module, sd: dict[str, Tensor], family: str) -> dict[str, Tensor]:
    """``sd`` if its keys and shapes are exactly ``model``'s, else AuthorsLayoutError."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    if missing:
        raise AuthorsLayoutError(f"{family}: the checkpoint lacks {missing[0]!r} (and "
                                 f"{len(missing) - 1} more) of the shape its other tensors imply")
    extra = sorted(set(sd) - set(expected))
    if extra:
        raise AuthorsLayoutError(f"{family}: {extra[0]!r} does not belong to the shape the "
                                 "checkpoint's other tensors imply")
    for key, ref in expected.items():
        if tuple(sd[key].shape) != tuple(ref.shape):
            raise AuthorsLayoutError(f"{family}: {key!r} has shape {tuple(sd[key].shape)}, the "
                                     f"model the checkpoint implies needs {tuple(ref.shape)}")
    return sd


def built(cls: type[nn.Module], cfg: Any) -> nn.Module:
    with torch.device("meta"):  # shapes only
        return cls(cfg)


def patch_side(pixels: int, family: str) -> int:
    p = math.isqrt(pixels // 3)
    if 3 * p * p != pixels:
        raise AuthorsLayoutError(f"{family}: a patch of {pixels} values is not 3 x p x p pixels")
    return p


def vit_pytorch_attn(rest: str) -> str:
    """vit-pytorch's Attention keys (norm, to_q, to_kv, to_out.0) -> ours."""
    return (rest.replace("to_q.", "q.").replace("to_kv.", "kv.").replace("to_out.0.", "proj."))


def vit_pytorch_ff(rest: str) -> str:
    """vit-pytorch's FeedForward keys (net.0 LayerNorm, net.1, net.4 Linear) -> ours."""
    return rest.replace("net.0.", "norm.").replace("net.1.", "fc1.").replace("net.4.", "fc2.")


ROW_HEADS = 8  # every attention of the authors' CrossViT and Twins-SVT rows (create_model.py)
