"""``lkca.from_authors_checkpoint``: our model with the weights of a checkpoint of the authors' code.

The LKCA authors' training script (SPT's ``main.py`` in CatworldLee/LKCA-MiniViTsTrainer-Pytorch-
CIFAR-TinyImageNet, lines 247-251 and 278) saves ``{'model_state_dict': ..., 'epoch': ...,
'optimizer_state_dict': ..., 'scheduler': ...}`` or the bare state dict. Either is read with
``torch.load(weights_only=True)`` (a crafted pickle cannot run code), converted by the converter
of the model's family (:data:`LAYOUTS`, one module of :mod:`lkca.authors` per family) and loaded
strictly; a state dict of another model or shape is refused with one line naming what differs.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lkca.authors import (
    cait,
    crossvit,
    cvt,
    deepvit,
    mobilevit,
    regionvit,
    rvt,
    swin,
    t2t,
    twins,
    vit,
    xcit,
)
from lkca.authors.vit import converter_for
from lkca.builder import MAX_PARAMS
from lkca.checkpoint.files import check_fit, check_own_data
from lkca.errors import CheckpointError
from lkca.models.registry import create_model, resolve_name

# every family with an authors' layout, one module each: ViT / ViT-LKCA, then the comparison models
# of Tables 4-5; a new family is a module with its LAYOUTS, named here
FAMILIES = (vit, swin, cait, t2t, mobilevit, cvt, deepvit, rvt, xcit, crossvit, regionvit, twins)
LAYOUTS = {prefix: convert for family in FAMILIES for prefix, convert in family.LAYOUTS.items()}


def read_authors_state(source: str | Path | dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model's tensors from a file written by the authors' main.py (or a dict already
    loaded): ``checkpoint["model_state_dict"]`` if there is one, else the bare state dict."""
    if isinstance(source, dict):
        obj: Any = source
    else:
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"authors' checkpoint {path} does not exist; check the path")
        try:  # a zip (torch >= 1.6) is mapped, not read; an older file is at most its size
            obj = torch.load(path, map_location="cpu", weights_only=True,
                             mmap=zipfile.is_zipfile(path))
        except Exception as err:  # noqa: BLE001 - any unpickling failure means an unusable file
            unsafe = "weights_only" in str(err) or "Unsupported global" in str(err)
            reason = ("holds objects other than tensors and plain data (refused: loading it "
                      "could run code)" if unsafe else "is corrupt or not a PyTorch checkpoint")
            raise CheckpointError(f"authors' checkpoint {path} {reason}; pass the .pth that "
                                  "their main.py saved") from None
    state = obj.get("model_state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{source if not isinstance(source, dict) else 'the dict'} holds "
                              "no state dict (tensors by name, or one under 'model_state_dict')")
    check_own_data(state, source if not isinstance(source, dict) else "the dict")
    return state


def _shape_from(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """num_classes and img_size the authors' model was built for, read from its tensors."""
    found: dict[str, Any] = {}
    head = state.get("head.weight")
    if head is not None:
        found["num_classes"] = head.shape[0]
    patch, pos = state.get("patch_embed.proj.weight"), state.get("pos_embed.pos")
    if patch is not None and pos is not None:
        n = pos.shape[1] - int("cls_token" in state)
        side = math.isqrt(n)
        if side * side == n:
            found["img_size"] = side * patch.shape[-1]
    return found


def from_authors_checkpoint(source: str | Path | dict[str, Any], model_name: str,
                            **create_kwargs: Any) -> nn.Module:
    """Build the registered ``model_name`` and load a checkpoint of the authors' code into it.

    ``source``: a ``.pth`` written by the authors' ``main.py`` (the dict with
    ``model_state_dict``, or the bare state dict), or such a dict. ``create_kwargs`` go to
    :func:`lkca.create_model`; ``num_classes`` and ``img_size`` default to what the checkpoint was
    built for (its head and its position table and patch). Returns the model in eval mode.
    Raises :class:`~lkca.errors.CheckpointError` (one line) for an unreadable or unsafe file, a
    model family without an authors' layout, a key of another layout or a tensor of another shape.
    """
    name = resolve_name(model_name)
    convert = converter_for(name, LAYOUTS)
    if convert is None:
        raise CheckpointError(f"{model_name} has no authors' checkpoint layout; families with one: "
                              f"{', '.join(p + '*' for p in sorted(LAYOUTS))}")
    ours = convert(read_authors_state(source))
    kwargs = {**_shape_from(ours), **create_kwargs}
    with torch.device("meta"):  # shapes and size first: nothing allocated for a crafted file
        expected = create_model(name, **kwargs).state_dict()
    params = sum(t.numel() for t in expected.values())
    if params > MAX_PARAMS:
        raise CheckpointError(f"the checkpoint describes a {model_name} of {params:,} parameters "
                              f"({', '.join(f'{k} {v}' for k, v in kwargs.items())}), over the "
                              f"{MAX_PARAMS:,} lkca builds; pass the checkpoint the training saved")
    missing = [k for k in expected if k not in ours]
    extra = [k for k in ours if k not in expected]
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r} too"
        raise CheckpointError(f"the checkpoint does not fit {model_name}: it {what} "
                              f"({len(missing)} missing, {len(extra)} extra keys); check the "
                              "model name and its depth")
    for key, tensor in expected.items():
        if tuple(ours[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"the checkpoint does not fit {model_name}: {key} is "
                                  f"{tuple(ours[key].shape)} in the file, {tuple(tensor.shape)} "
                                  "in the model; check the model name, num_classes and img_size")
    model = create_model(name, **kwargs)
    check_fit(model, ours, Path(str(source)) if not isinstance(source, dict) else Path("the dict"))
    model.load_state_dict(ours, strict=True)
    return model.eval()


def load_authors_model(path: str | Path, model_name: str | None) -> tuple[nn.Module, dict[str, Any]]:
    """``lkca eval`` / ``lkca export`` ``--authors-checkpoint FILE --model NAME``: the model and
    its record (as :func:`lkca.pretrained.load_trained` returns them; no data set recorded)."""
    if not model_name:
        raise CheckpointError("--authors-checkpoint needs --model NAME, the registered model the "
                              "file holds (e.g. --model lkca_b for the authors' vit-lkca)")
    model = from_authors_checkpoint(path, model_name)
    return model, dict(getattr(model, "pretrained_cfg", {}), dataset=None)


__all__ = ["from_authors_checkpoint", "load_authors_model", "read_authors_state"]
