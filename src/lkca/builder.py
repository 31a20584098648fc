"""A model from its metadata record (:mod:`lkca.checkpoint.metadata`): :func:`build_model`, and
:func:`check_model_size`, which counts the parameters of the model a record describes on the
meta device before anything is allocated.

Below the engines that build the model they train (``lkca.train.engine``, ``lkca.seg.engine``)
and the loader of trained models (``lkca.pretrained``), above the models it builds.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lkca.checkpoint.metadata import set_pretrained_cfg
from lkca.errors import CheckpointError, ConfigError, UserError
from lkca.models.registry import create_model
from lkca.models.vit import VisionTransformer, ViTConfig
from lkca.seg.segmentor import create_segmentor

__all__ = ["MAX_BLOCKS", "MAX_PARAMS", "build_model", "check_model_size", "estimate_params"]


# The largest model lkca builds: a billion parameters (4 GB of fp32 weights, plus as much again
# for each of the optimiser's two moments). The paper's largest classifier has 12M, its largest
# segmentor about 80M; a record or config past this is a typo (depth 100000) or a damaged file.
MAX_PARAMS = 1_000_000_000
MAX_BLOCKS = 1000  # blocks of one model (the paper's deepest has 12; ViT-H 32): each is a module
# Python builds one by one, so a depth of 10^5 takes minutes even when narrow enough to fit


def estimate_params(record: dict[str, Any]) -> int:
    """The parameters of the model ``record`` describes, counted on the meta device (nothing is
    allocated); a ViT-family model deeper than 2 blocks is built at depth 1 and 2 and the count
    extrapolated, so a deep model is estimated in milliseconds. ConfigError (a UserError) when
    the record's values do not build a model, or its depth is over :data:`MAX_BLOCKS`."""
    args = record.get("model_args") or {}
    depth = args.get("depth") if isinstance(args, dict) else None
    if isinstance(depth, int) and not isinstance(depth, bool) and depth > MAX_BLOCKS:
        raise ConfigError(f"model_args.depth {depth} is over the {MAX_BLOCKS} blocks lkca builds; "
                          "check model_args (the paper's models have 12 blocks or fewer)")
    if (isinstance(depth, int) and not isinstance(depth, bool) and depth > 2
            and record.get("task") != "seg"):  # a segmentation backbone needs its 4 levels
        # a depth-1 model that does not build: the record's other values are wrong (raised)
        one, two = (_meta_params({**record, "model_args": {**args, "depth": d}}) for d in (1, 2))
        return one + (depth - 1) * (two - one)
    return _meta_params(record)


def _meta_params(record: dict[str, Any]) -> int:
    try:
        with torch.device("meta"):
            model = build_model(record)
    except UserError:
        raise
    except NotImplementedError:  # an initialisation that copies data (CrossViT) cannot run on
        return 0  # the meta device: not estimated (such models take no depth or width options)
    except (TypeError, ValueError, RuntimeError, KeyError, ZeroDivisionError) as err:
        raise ConfigError(f"the model's options do not build it ({type(err).__name__}: "
                          f"{_first_line(err)}); check model_args against docs/models.md"
                          ) from None
    return sum(p.numel() for p in model.parameters())


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:197] + "..."


def check_model_size(record: dict[str, Any], source: str | Path = "the config") -> int:
    """The model's parameter count (:func:`estimate_params`); ConfigError past
    :data:`MAX_PARAMS`, before anything is allocated."""
    params = estimate_params(record)
    if params > MAX_PARAMS:
        raise ConfigError(f"{source} describes a model of {params:,} parameters, over the "
                          f"{MAX_PARAMS:,} lkca builds; check model_args (depth, dim)")
    return params


def build_model(record: dict[str, Any], **train_args: Any) -> nn.Module:
    """An untrained model as ``record`` describes it, carrying it as ``model.pretrained_cfg``.

    ``train_args`` are keywords for training only (``drop_path_rate``), not part of the record.
    """
    model_args = dict(record.get("model_args") or {})
    if record.get("task") == "seg":
        model: nn.Module = create_segmentor(record["backbone"], record["head"],
                                            record["num_classes"], **model_args, **train_args)
        return set_pretrained_cfg(model, record)
    img = record["img_size"]
    img = tuple(img) if isinstance(img, list) else img
    if record.get("model") is None:  # a VisionTransformer saved with its whole ViTConfig
        unknown = sorted(set(model_args) - {f.name for f in fields(ViTConfig)})
        if unknown:
            raise CheckpointError(f"unknown ViTConfig field(s) {unknown} in the record; the file "
                                  "was written by another lkca version")
        model = VisionTransformer(ViTConfig(num_classes=record["num_classes"], img_size=img,
                                            **{**model_args, **train_args}))
    else:
        model = create_model(record["model"], num_classes=record["num_classes"], img_size=img,
                             **model_args, **train_args)
    return set_pretrained_cfg(model, record)
