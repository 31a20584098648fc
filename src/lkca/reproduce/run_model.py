"""The model a planned run trains, built from its resolved config, and what one image of it costs.

:func:`build_run_model` is the one place the launcher builds a run's model (the memory rule of
:mod:`lkca.reproduce.packing`, the MACs of the cost projection, :mod:`lkca.reproduce.cost`);
:func:`forward_macs` counts one training image's forward pass with :func:`lkca.profile` on the
meta device (shapes only: nothing is allocated, no weights are initialised).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass
class RunModel:
    """A run's model, the shape of one input image (C, H, W) and, for a segmentor, the training
    forward ``forward(model, images)`` (None: ``model(images)``)."""

    model: Any  # torch.nn.Module
    shape: tuple[int, int, int]
    forward: Callable[[Any, Any], Any] | None = None


def build_run_model(task: str, cfg: dict[str, Any]) -> RunModel:
    """The model of a resolved config (``task`` "cls" or "seg"), weights left uninitialised
    (:func:`lkca.analysis.paper_report.without_init`), on the current default device."""
    import torch

    from lkca.analysis.paper_report import without_init

    model_args = dict(cfg.get("model_args") or {})
    if task == "cls":
        from lkca.data import dataset_info
        from lkca.models.registry import create_model

        info = dataset_info(cfg["dataset"])
        img = int(model_args.get("img_size", info.img_size))
        with without_init():
            model = create_model(cfg["model"], num_classes=info.num_classes, img_size=img,
                                 **model_args)
        return RunModel(model, (info.in_chans, info.img_size, info.img_size))
    from lkca.seg.segmentor import create_segmentor

    crop = int(cfg["crop_size"])
    with without_init():
        model = create_segmentor(cfg["backbone"], cfg["head"], int(cfg["num_classes"]),
                                 **{"img_size": crop, **model_args})

    def forward_train(m: Any, x: Any) -> Any:
        labels = torch.zeros(len(x), crop, crop, dtype=torch.long, device=x.device)
        return m.forward_train(x, labels)

    return RunModel(model, (3, crop, crop), forward_train)


# What decides a run's model (and so its MACs): other keys (lr, epochs, seed ...) do not.
_MODEL_KEYS = {"cls": ("model", "dataset", "model_args"),
               "seg": ("backbone", "head", "num_classes", "crop_size", "model_args")}


def forward_macs(task: str, cfg: dict[str, Any]) -> int:
    """Multiply-accumulates of one training image's forward pass through the run's model
    (``macs`` of :func:`lkca.profile`: torch's flop counter, LKCA counted as its attention
    view), built on the meta device."""
    key = json.dumps({k: cfg.get(k) for k in _MODEL_KEYS[task]}, sort_keys=True, default=str)
    return _macs(task, key)


@cache
def _macs(task: str, key: str) -> int:
    import torch

    from lkca.models.profile import profile

    with torch.device("meta"):
        built = build_run_model(task, json.loads(key))
    c, h, w = built.shape
    return int(profile(built.model, (h, w), in_chans=c)["macs"])
