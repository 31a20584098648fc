"""The metadata record: what rebuilds a model and what running it on new images needs.

One JSON object, the same in a pretrained folder's ``config.json`` and in the ``lkca`` metadata
of every ``.safetensors`` / ``.pt`` checkpoint (docs/design.md, "Metadata schema"):

- every task: ``schema_version`` (:data:`SCHEMA_VERSION`), ``task`` (``"classification"`` or
  ``"seg"``), ``lkca_version``, ``model_args`` (keyword overrides of the model's constructor),
  ``num_classes``, ``in_chans``, ``mean`` / ``std`` (per channel, for images scaled to [0, 1];
  null when lkca did not train the model), ``dataset`` and ``class_names`` (null when unknown);
- classification: ``model`` (registered name, or null for a :class:`VisionTransformer` built from
  its whole ``ViTConfig``, then in ``model_args``) and ``img_size`` (int or [H, W]);
- segmentation: ``backbone``, ``head``, and the test pipeline of its training run:
  ``crop_size``, ``img_scale`` ([long side, short side]) and ``slide_stride`` (null when the
  segmentor was not trained by lkca).

Records of older lkca versions are brought to this schema in one place,
:func:`lkca.pretrained.upgrade_record`. A model carries its record as ``model.pretrained_cfg``
(:func:`set_pretrained_cfg`), as timm's models do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from torch import nn

from lkca.errors import CheckpointError, UserError
from lkca.version import __version__

SCHEMA_VERSION = 2
TASKS = ("classification", "seg")
_REQUIRED = {"classification": ("model", "num_classes", "img_size"),
             "seg": ("backbone", "head", "num_classes")}
# The one class saved without a registered name, by its whole config dataclass (``cfg``); named
# rather than imported because models sit above this module (docs/design.md, layers).
CONFIG_BUILT_CLASS = "lkca.models.vit.VisionTransformer"


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """JSON types only (tuples as lists), so a record equals itself after a round trip."""
    return json.loads(json.dumps(record))


def _common(task: str, model_args: dict[str, Any], num_classes: int | None, in_chans: int,
            mean: Sequence[float] | None, std: Sequence[float] | None, dataset: str | None,
            class_names: Sequence[str] | None) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "task": task, "lkca_version": __version__,
            "model_args": dict(model_args), "num_classes": num_classes, "in_chans": in_chans,
            "mean": list(mean) if mean is not None else None,
            "std": list(std) if std is not None else None, "dataset": dataset,
            "class_names": list(class_names) if class_names is not None else None}


def classifier_record(model: str | None, model_args: dict[str, Any], num_classes: int | None,
                      img_size: int | Sequence[int] | None, *, in_chans: int = 3,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      dataset: str | None = None,
                      class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The record of a classifier: ``lkca.create_model(model, num_classes=..., img_size=...,
    **model_args)`` rebuilds it (``model=None``: ``VisionTransformer(ViTConfig(...))``)."""
    record = _common("classification", model_args, num_classes, in_chans, mean, std, dataset,
                     class_names)
    return _plain({**record, "model": model, "img_size": img_size})


def segmentor_record(backbone: str, head: str, num_classes: int, model_args: dict[str, Any], *,
                     crop_size: int | None = None, img_scale: Sequence[int] | None = None,
                     slide_stride: int | None = None, in_chans: int = 3,
                     mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                     dataset: str | None = None,
                     class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The record of a segmentor: ``lkca.create_segmentor(backbone, head, num_classes,
    **model_args)`` rebuilds it; ``crop_size``, ``img_scale`` and ``slide_stride`` are the test
    pipeline of the run that trained it (``lkca seg eval`` and ``predict`` use them)."""
    record = _common("seg", model_args, num_classes, in_chans, mean, std, dataset, class_names)
    return _plain({**record, "backbone": backbone, "head": head, "crop_size": crop_size,
                   "img_scale": list(img_scale) if img_scale is not None else None,
                   "slide_stride": slide_stride})


def check_record(record: dict[str, Any], source: Path | str) -> None:
    """CheckpointError (one line) unless ``record`` has its task's keys and a ``model_args``
    mapping (records of the current schema; upgrade older ones first)."""
    task = record.get("task")
    if task not in TASKS:
        raise CheckpointError(f"{source} has task {task!r}, not one of {', '.join(TASKS)}; write "
                              "it with lkca.save_pretrained")
    missing = [k for k in _REQUIRED[task] if k not in record]
    if missing or not isinstance(record.get("model_args"), dict):
        raise CheckpointError(f"{source} lacks {', '.join(missing) or 'a valid model_args dict'}; "
                              "write it with lkca.save_pretrained")
    bad = _bad_value(record)
    if bad:
        raise CheckpointError(f"{source} has an invalid {bad}; write it with lkca.save_pretrained")


MAX_RECORD_INT = 1 << 20  # bound on any size in a record: a damaged file must not allocate TBs
# The largest image side lkca builds a model for or runs one on (--img-size, crop_size, a
# record's img_size): 8x ADE20K's 512 crop, 64x CIFAR's 32; an image of this side is 200 MB of
# fp32 pixels, one of 10^6 (a typo) would be 12 TB.
MAX_IMAGE_SIDE = 4096


def check_image_side(value: Any, what: str = "--img-size") -> None:
    """UserError (one line) unless ``value`` is None or an int in 1..:data:`MAX_IMAGE_SIDE`."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IMAGE_SIDE:
        raise UserError(f"{what} must be an image side from 1 to {MAX_IMAGE_SIDE} pixels, got "
                        f"{str(value)[:40]}")


def _bad_value(record: dict[str, Any]) -> str:
    """The first key of ``record`` whose value cannot describe a model ("" when all can): names
    must be strings, sizes positive ints up to MAX_RECORD_INT, numbers finite."""
    for key in ("model", "backbone", "head"):
        if key in record and not (record[key] is None and key == "model"
                                  or isinstance(record[key], str) and 0 < len(record[key]) <= 200):
            return f"{key} (a {type(record[key]).__name__}, expected a name)"
    for key in ("num_classes", "img_size", "crop_size", "in_chans", "slide_stride"):
        value = record.get(key)
        values = value if isinstance(value, list) else [value]
        if value is not None and not all(_is_size(v) for v in values):
            return f"{key} ({type(value).__name__}, expected a positive size)"
        if isinstance(value, list) and len(value) != 2:
            return f"{key} (a list of {len(value)}, expected a size or [height, width])"
        if key in ("img_size", "crop_size") and value is not None and max(values) > MAX_IMAGE_SIDE:
            return f"{key} (over {MAX_IMAGE_SIDE} pixels)"
    for key, value in record["model_args"].items():
        if not _sane(value):
            return f"model_args.{str(key)[:40]} (out of range or not a number)"
    return ""


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_RECORD_INT


def _sane(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) <= MAX_RECORD_INT
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) <= MAX_RECORD_INT
    if isinstance(value, (list, tuple)):
        return len(value) <= 64 and all(_sane(v) for v in value)
    if isinstance(value, dict):
        return len(value) <= 64 and all(_sane(v) for v in value.values())
    return False


def set_pretrained_cfg(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Attach ``record`` to ``model`` as ``model.pretrained_cfg`` (plain data, not a parameter,
    buffer or submodule; copied along by ``copy.deepcopy``); returns ``model``."""
    setattr(model, "pretrained_cfg", _plain(record))  # noqa: B010 - nn.Module's typed __setattr__
    return model


def pretrained_cfg(model: nn.Module) -> dict[str, Any]:
    """The record that rebuilds ``model`` (unwrapped from DDP / ``torch.compile``).

    Read from ``model.pretrained_cfg`` (set by :func:`lkca.create_model`,
    :func:`lkca.create_segmentor` and :func:`lkca.from_pretrained`); for a
    :class:`VisionTransformer` built directly, from its whole ``ViTConfig``. Anything else
    raises :class:`CheckpointError`.
    """
    model = unwrap(model)
    record = getattr(model, "pretrained_cfg", None)
    if isinstance(record, dict):
        return dict(record)
    cfg = getattr(model, "cfg", None)
    cls = type(model)
    if f"{cls.__module__}.{cls.__qualname__}" == CONFIG_BUILT_CLASS and is_dataclass(cfg):
        full = asdict(cfg)  # type: ignore[arg-type]
        return classifier_record(None, full, full.pop("num_classes"), full.pop("img_size"),
                                 in_chans=int(full.get("in_chans", 3)))
    raise CheckpointError(f"cannot describe a {cls.__name__} for save_pretrained; build it with "
                          "lkca.create_model / lkca.create_segmentor or pass config=...")


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel (``.module``) and ``torch.compile``
    (``._orig_mod``) wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)
