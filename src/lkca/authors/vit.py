"""The authors' ViT and ViT-LKCA state-dict layouts -> ours.

The LKCA authors' code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet) names a
ViT-LKCA's tensors as ``models/largevit_cnn.py`` and ``models/largevit_vit.py`` build them (the
same keys in both: the convolution and the attention view of one block) and a ViT's as SPT's
``models/vit.py``. :data:`LAYOUTS` maps the prefix of our registered name to the converter
of its family; ``lkca.from_authors_checkpoint`` dispatches (:func:`converter_for`) on the longest
prefix that matches, over these and the comparison models' converters (``"swin_"``, ``"cait_"``
...: one module of :mod:`lkca.authors` per family, listed in ``lkca.authors.loader.FAMILIES``). A
converter takes the authors' state dict (tensors by key) and returns ours, or raises a one-line
:class:`~lkca.errors.CheckpointError` naming the first key it does not know.

The keys (i = block; docs/pretrained-and-export.md):

=============================================  ====================================================
authors' key                                   ours
=============================================  ====================================================
``to_patch_embedding.1.weight`` (dim, p p 3)   ``patch_embed.proj.weight`` (dim, 3, p, p): the
                                               Linear over each patch flattened in (p1 p2 c)
                                               order is our patch convolution's weight, permuted
``to_patch_embedding.1.bias``                  ``patch_embed.proj.bias``
``pos_embedding``                              ``pos_embed.pos``
``cls_token``                                  ``cls_token`` (ViT); dropped for ViT-LKCA, whose
                                               forward never reads it (largevit_cnn.py line 136)
``transformer.layers.i.0.norm``                ``blocks.i.norm1``
``transformer.layers.i.0.fn.to_v``             ``blocks.i.mixer.v_proj``
``transformer.layers.i.0.fn.dynamicqk``        ``blocks.i.mixer.weight`` ((1, 1, k, k) -> (1, k, k))
``transformer.layers.i.0.fn.to_qkv``           ``blocks.i.mixer.qkv``
``transformer.layers.i.0.fn.to_out.0``         ``blocks.i.mixer.proj``
``transformer.layers.i.1.norm``                ``blocks.i.norm2``
``transformer.layers.i.1.fn.net.0`` / ``.3``   ``blocks.i.mlp.fc1`` / ``fc2``
``mlp_head.0`` / ``mlp_head.1``                ``norm`` / ``head``
=============================================  ====================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch

from lkca.errors import CheckpointError

Converter = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]

_BLOCK = re.compile(r"transformer\.layers\.(\d+)\.([01])\.(.+)")
_MIXER = {"norm": "norm1", "fn.to_v": "mixer.v_proj", "fn.to_qkv": "mixer.qkv",
          "fn.to_out.0": "mixer.proj"}
_MLP = {"norm": "norm2", "fn.net.0": "mlp.fc1", "fn.net.3": "mlp.fc2"}
_TOP = {"to_patch_embedding.1.bias": "patch_embed.proj.bias", "pos_embedding": "pos_embed.pos",
        "mlp_head.0.weight": "norm.weight", "mlp_head.0.bias": "norm.bias",
        "mlp_head.1.weight": "head.weight", "mlp_head.1.bias": "head.bias"}


def patch_linear_to_conv(weight: torch.Tensor) -> torch.Tensor:
    """The authors' patch Linear weight (dim, p * p * 3), inputs in (p1 p2 c) order, as our patch
    convolution's (dim, 3, p, p). The authors build every model with 3 channels
    (largevit_cnn.py line 118, ``channels = 3``)."""
    dim, fan_in = weight.shape
    p = math.isqrt(fan_in // 3)
    if 3 * p * p != fan_in:
        raise CheckpointError(f"to_patch_embedding.1.weight has {fan_in} inputs, not 3 x p x p "
                              "for RGB patches of side p; pass a checkpoint of the authors' code")
    return weight.reshape(dim, p, p, 3).permute(0, 3, 1, 2).contiguous()


def _convert(state: dict[str, torch.Tensor], lkca: bool) -> dict[str, torch.Tensor]:
    family = "ViT-LKCA (largevit_cnn.py / largevit_vit.py)" if lkca else "ViT (SPT's vit.py)"
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")  # nn.DataParallel's wrapper
        if key == "to_patch_embedding.1.weight":
            out["patch_embed.proj.weight"] = patch_linear_to_conv(value)
        elif key in _TOP:
            out[_TOP[key]] = value
        elif key == "cls_token":
            if not lkca:
                out["cls_token"] = value
        elif match := _BLOCK.fullmatch(key):
            i, sub, rest = match.groups()
            name, _, param = rest.rpartition(".")
            if sub == "0" and name == "fn" and param == "dynamicqk" and lkca:
                out[f"blocks.{i}.mixer.weight"] = value.reshape(1, *value.shape[-2:])
                continue
            ours = (_MIXER if sub == "0" else _MLP).get(name)
            wrong_mixer = name == ("fn.to_qkv" if lkca else "fn.to_v")
            if ours is None or wrong_mixer:
                raise _foreign(key, family, lkca)
            out[f"blocks.{i}.{ours}.{param}"] = value
        else:
            raise _foreign(key, family, lkca)
    return out


def _foreign(key: str, family: str, lkca: bool) -> CheckpointError:
    other = "vit_<size>" if lkca else "vit_lkca_<size>"
    hint = (f"; it looks like the other family: load it as {other}"
            if ("to_qkv" in key and lkca) or (("to_v" in key or "dynamicqk" in key) and not lkca)
            else "; pass a checkpoint written by the authors' main.py for this model")
    return CheckpointError(f"key {key!r} is not in the authors' {family} layout{hint}")


def convert_authors_lkca(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An authors' ViT-LKCA state dict (largevit_cnn.py / largevit_vit.py) as our vit_lkca_*'s."""
    return _convert(state, lkca=True)


def convert_spt_vit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An authors' / SPT's ViT state dict (models/vit.py) as our vit_*'s."""
    return _convert(state, lkca=False)


# our registered-name prefix -> the converter of that family's authors' layout
LAYOUTS: dict[str, Converter] = {"vit_lkca_": convert_authors_lkca, "vit_": convert_spt_vit}


def converter_for(name: str, layouts: dict[str, Converter] = LAYOUTS) -> Converter | None:
    """The converter of the longest ``layouts`` prefix of ``name``, else None."""
    prefixes = sorted((p for p in layouts if name.startswith(p)), key=len, reverse=True)
    return layouts[prefixes[0]] if prefixes else None
