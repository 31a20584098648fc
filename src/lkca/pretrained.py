"""Loading trained models: pretrained folders, checkpoints and run directories.

A pretrained folder (written by :func:`save_pretrained`, :mod:`lkca.checkpoint.pretrained_dir`)::

    dir/config.json        the metadata record (lkca.checkpoint.metadata), e.g.
                           {"schema_version": 2, "task": "classification", "model": "vit_lkca_1m",
                            "model_args": {"dim": 96}, "num_classes": 10, "img_size": 32,
                            "in_chans": 3, "mean": [...], "std": [...], "dataset": "cifar10", ...}
    dir/model.safetensors  the weights; their metadata repeats the record, so the file alone
                           rebuilds the model too (``lkca eval --checkpoint dir/model.safetensors``)

:func:`from_pretrained` (and the ``lkca eval`` / ``lkca seg eval`` / ``predict`` / ``erf`` /
``kernels`` / ``export`` commands, through :func:`load_trained`) reads any of: such a folder, its
``config.json``, a ``.safetensors`` or ``.pt`` checkpoint of ``lkca train`` / ``lkca seg train``,
or a run directory. It rebuilds the model with :func:`lkca.create_model` or
:func:`lkca.create_segmentor` and loads the weights strictly: a record that does not fit the
weights is refused with a :class:`~lkca.errors.CheckpointError` listing the missing, unexpected
and mismatched keys. Records of older lkca versions are upgraded by :func:`upgrade_record`.
Everything is local: no network, no model hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from lkca.bounded_files import FileLimit, read_json
from lkca.builder import build_model, check_model_size
from lkca.checkpoint.files import (
    check_fit,
    load_state,
    load_weights,
    read_weights,
    read_weights_header,
)
from lkca.checkpoint.metadata import (
    SCHEMA_VERSION,
    check_record,
    classifier_record,
    segmentor_record,
)
from lkca.checkpoint.pretrained_dir import CONFIG_NAME, WEIGHTS_NAME, save_pretrained
from lkca.data.registry import DATASETS
from lkca.errors import CheckpointError, ConfigError
from lkca.models.registry import legacy_model
from lkca.seg.backbone import HIERARCHICAL, legacy_backbone
from lkca.seg.normalisation import unit_mean_std

__all__ = ["export_checkpoint", "from_pretrained", "load_trained", "read_trained",
           "resolve_run", "save_pretrained", "upgrade_record"]

# In a run directory, the first of these that exists is the model it stands for: the best
# checkpoint (classification), the pretrained export of it, then the last checkpoint.
RUN_CANDIDATES = ("checkpoints/best.safetensors", "best.safetensors", "pretrained",
                  "checkpoints/last.safetensors", "last.safetensors")


def upgrade_record(record: dict[str, Any], source: Path | str = "record") -> dict[str, Any]:
    """A metadata record of any lkca version in the current schema (the one place old files are
    read; :data:`~lkca.checkpoint.metadata.SCHEMA_VERSION` 2).

    lkca 0.1.0 wrote records without ``schema_version``: ``config.json`` named the constructor
    overrides ``overrides`` (with ``format`` and ``lkca_version``), checkpoints named them
    ``model_args`` and had no ``task`` for classifiers. The upgrade renames, adds ``task`` and
    the input description (channels, and mean/std and class names from the data set when it is
    known), and maps classifier names whose architecture changed since 0.1.0 to the name and
    overrides that rebuild the 0.1.0 one (``lkca.models.registry.legacy_model``,
    ``lkca.seg.backbone.legacy_backbone``).

    Segmentor records of a ViT backbone name their neck (``neck_resample``) since bilinear became
    the default; one without it (any schema) was written when "deconv" was, and gets "deconv".
    """
    version = record.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{source} has metadata schema_version {str(version)[:40]}, not a "
                              f"version lkca writes (1 to {SCHEMA_VERSION}); rewrite it with "
                              "lkca.save_pretrained")
    if version > SCHEMA_VERSION:
        raise CheckpointError(f"{source} has metadata schema {version!r}, newer than this lkca's "
                              f"{SCHEMA_VERSION}; upgrade lkca to read it")
    if version == SCHEMA_VERSION:
        return _named_neck(dict(record))
    old = dict(record)
    args = old.get("overrides", old.get("model_args"))
    model_args = {} if args is None else dict(args) if isinstance(args, dict) else args
    in_chans = model_args.get("in_chans", 3) if isinstance(model_args, dict) else 3
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise CheckpointError(f"{source} has an invalid in_chans ({str(in_chans)[:40]}) in its "
                              "record's overrides; rewrite it with lkca.save_pretrained")
    dataset = cast("str | None", old.get("dataset"))
    info = DATASETS.get(str(dataset))
    num_classes = cast(int, old.get("num_classes"))
    new: dict[str, Any]
    if old.get("task") == "seg":
        mean, std = unit_mean_std()  # every segmentor's input normalisation
        if dataset is None and old.get("crop_size") is not None:
            dataset = "ade20k"  # trained by lkca 0.1.0's `lkca seg train`: ADE20K only
        if isinstance(model_args, dict) and isinstance(old.get("backbone"), str):
            _, model_args = legacy_backbone(old["backbone"], model_args)
        new = segmentor_record(cast(str, old.get("backbone")), cast(str, old.get("head")),
                               num_classes, {}, crop_size=old.get("crop_size"),
                               img_scale=old.get("img_scale"), slide_stride=old.get("slide_stride"),
                               in_chans=in_chans, mean=mean, std=std, dataset=dataset)
    else:
        name = old.get("model")
        if isinstance(model_args, dict):
            name, model_args = legacy_model(name, model_args, old.get("lkca_version"))
        new = classifier_record(name, {}, num_classes, old.get("img_size"), in_chans=in_chans,
                                mean=info.mean if info else None, std=info.std if info else None,
                                dataset=dataset, class_names=info.class_names if info else None)
    new["model_args"] = model_args
    for key in ("backbone", "head", "model", "num_classes", "img_size"):
        if key not in old and key in new:  # missing stays missing: check_record names it
            del new[key]
    if "lkca_version" in old:
        new["lkca_version"] = old["lkca_version"]
    return _named_neck(new)


def _named_neck(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with ``model_args.neck_resample: "deconv"`` added where a ViT-backbone
    segmentor's record leaves it out (written while deconv was the default)."""
    args = record.get("model_args")
    if (record.get("task") == "seg" and isinstance(args, dict) and "neck_resample" not in args
            and record.get("backbone") not in HIERARCHICAL):
        record["model_args"] = {**args, "neck_resample": "deconv"}
    return record


def resolve_run(path: Path) -> Path:
    """A run directory -> the model it stands for (:data:`RUN_CANDIDATES`); anything else as is."""
    if path.is_dir() and not (path / CONFIG_NAME).is_file():
        return next((path / c for c in RUN_CANDIDATES if (path / c).exists()), path)
    return path


def read_trained(path: str | Path, shapes_only: bool = False
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any], Path]:
    """(weights, record in the current schema, the file they came from) for any path
    :func:`from_pretrained` takes. Raises :class:`CheckpointError` (one line) for a missing,
    corrupt or unlabelled file. ``shapes_only``: a safetensors file's weights as meta-device
    stand-ins read from its header (:func:`~lkca.checkpoint.files.read_weights_header`), to
    check against the model before a byte of them is read; a ``.pt`` is mapped, not read."""
    path = resolve_run(Path(path))
    if path.is_dir():
        config_path: Path | None = path / CONFIG_NAME
        weights_path = path / WEIGHTS_NAME
    elif path.name == CONFIG_NAME:
        config_path, weights_path = path, path.with_name(WEIGHTS_NAME)
    else:  # a lone checkpoint, unless it is a pretrained folder's weights file
        weights_path = path
        config_path = path.with_name(CONFIG_NAME) if (
            path.name == WEIGHTS_NAME and path.with_name(CONFIG_NAME).is_file()) else None
    if config_path is not None and not config_path.is_file():
        raise CheckpointError(f"{config_path} does not exist; pass a folder written by "
                              "save_pretrained (config.json + model.safetensors)")
    if weights_path.suffix == ".pt":  # the training state (weights_only load, mapped)
        state = load_state(weights_path)
        if not isinstance(state, dict):
            raise CheckpointError(f"checkpoint {weights_path} holds a {type(state).__name__}, not "
                                  "the training state of lkca train or lkca seg train; pass one")
        tensors, meta = state.get("model") or {}, state.get("meta") or {}
    elif shapes_only:
        tensors, meta = read_weights_header(weights_path)
    else:
        tensors, meta = read_weights(weights_path)
    source = config_path or weights_path
    if config_path is not None:
        meta = _read_json(config_path)
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {source} has a damaged metadata record (a "
                              f"{type(meta).__name__}, not a mapping); use another checkpoint or "
                              "write it with lkca.save_pretrained")
    if not meta or not tensors:
        raise CheckpointError(f"checkpoint {source} has no lkca model metadata; pass a folder "
                              "written by save_pretrained or a checkpoint of `lkca train`")
    record = upgrade_record(meta, source)
    check_record(record, source)
    return tensors, record, source


def load_trained(path: str | Path, device: str | torch.device = "cpu",
                 task: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode on ``device``, its record) from any path :func:`from_pretrained`
    takes; ``task`` (``"classification"`` or ``"seg"``) refuses the other kind with a one-line
    error naming the command for it."""
    tensors, record, source = read_trained(path, shapes_only=True)
    if task == "classification" and record["task"] == "seg":
        raise CheckpointError(f"checkpoint {source} is a segmentation checkpoint; use `lkca seg "
                              "eval --checkpoint ...` (or pass one written by `lkca train`)")
    if task == "seg" and record["task"] != "seg":
        raise CheckpointError(f"checkpoint {source} is not a segmentation checkpoint; pass one "
                              "written by `lkca seg train` (RUN/checkpoints/last.safetensors)")
    try:
        check_model_size(record, source)  # on the meta device: nothing allocated yet
    except ConfigError as err:
        raise CheckpointError(f"{err}; the record does not describe a model lkca builds: write it "
                              "with lkca.save_pretrained") from None
    try:
        try:
            with torch.device("meta"):  # the record against its weights' shapes, nothing allocated
                check_fit(build_model(record), tensors, source)
        except NotImplementedError:  # an initialisation that copies data (CrossViT): checked
            pass  # by load_weights below
        model = build_model(record)
    except (TypeError, KeyError, RuntimeError, MemoryError) as err:  # UserErrors pass through
        raise CheckpointError(f"{source} does not describe a model this lkca can build "
                              f"({type(err).__name__}); write it with lkca.save_pretrained") from None
    if any(t.is_meta for t in tensors.values()):  # the header fits the model: read the weights
        tensors = read_trained(path)[0]
    load_weights(model, tensors, source)
    return model.to(device).eval(), record


def from_pretrained(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_pretrained` (or trained by ``lkca train`` /
    ``lkca seg train``) in eval mode on ``device``.

    ``path``: a folder holding ``config.json`` + ``model.safetensors``, its ``config.json``, a
    checkpoint (``.safetensors``, or the ``.pt`` training state: their metadata is the record
    when no ``config.json`` lies beside), or a run directory (its best checkpoint, the
    ``pretrained/`` export of it, else its last). The record is the model's
    ``model.pretrained_cfg`` (:mod:`lkca.checkpoint.metadata`: input size, channels, mean/std,
    classes). Raises :class:`~lkca.errors.CheckpointError` (one line) for a missing or corrupt
    file, or a record whose model does not fit the weights (listing the mismatched keys).
    """
    return load_trained(path, device)[0]


def export_checkpoint(checkpoint: str | Path, directory: str | Path) -> Path:
    """Turn a training checkpoint (e.g. ``lkca train``'s ``checkpoints/best.safetensors``) into a
    pretrained folder; returns ``directory``."""
    model, record = load_trained(checkpoint)
    return save_pretrained(model, directory, config=record)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        config = read_json(path)
    except FileLimit as err:
        raise CheckpointError(f"{err}; rewrite it with save_pretrained") from None
    except OSError as err:
        raise CheckpointError(f"cannot read {path} ({err.strerror or err}); check the path and "
                              "its permissions") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is not a JSON object; rewrite it with save_pretrained")
    return config
