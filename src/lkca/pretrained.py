"""Pretrained models as a folder: ``config.json`` (what builds the model) + ``model.safetensors``.

``save_pretrained(model, "dir")`` writes::

    dir/config.json        {"format": "lkca-pretrained", "task": "classification",
                            "model": "vit_lkca_1m", "num_classes": 10, "img_size": 32,
                            "overrides": {"dim": 96}, "lkca_version": "0.1.0"}
    dir/model.safetensors  the weights; its metadata repeats the config, so the file alone rebuilds
                           the model too (``lkca eval --checkpoint dir/model.safetensors``)

and ``from_pretrained("dir")`` (or the ``.safetensors`` file, or a run directory of ``lkca train``)
rebuilds the model with :func:`lkca.create_model` and loads the weights strictly: a config that
does not fit the weights is refused with a :class:`~lkca.errors.CheckpointError` listing the
missing, unexpected and mismatched keys. Segmentors (``task: "seg"``) are stored the same way with
``backbone``, ``head`` and ``num_classes``. Everything is local: no network, no model hub.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lkca.errors import CheckpointError
from lkca.train import checkpoint as ckpt

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "lkca-pretrained"


def pretrained_config(model: nn.Module) -> dict[str, Any]:
    """The ``config.json`` content that rebuilds ``model``.

    Models made by :func:`lkca.create_model` / :func:`lkca.create_segmentor` remember their
    arguments (``model.create_args``); a :class:`VisionTransformer` built directly is described by
    its full :class:`ViTConfig` (``"model": null``).
    """
    from lkca import __version__
    from lkca.models.vit import VisionTransformer

    args = dict(getattr(model, "create_args", None) or {})
    if args.get("task") == "seg":
        args.pop("task")
        config = {"task": "seg", "backbone": args.pop("backbone"), "head": args.pop("head"),
                  "num_classes": args.pop("num_classes"), "overrides": args}
    elif args:
        vit_cfg = getattr(model, "cfg", None)
        name = args.pop("model")
        num_classes = args.pop("num_classes", getattr(vit_cfg, "num_classes", None))
        img_size = args.pop("img_size", getattr(vit_cfg, "img_size", None))
        config = {"task": "classification", "model": name, "num_classes": num_classes,
                  "img_size": img_size, "overrides": args}
    elif isinstance(model, VisionTransformer):
        full = asdict(model.cfg)
        config = {"task": "classification", "model": None, "num_classes": full.pop("num_classes"),
                  "img_size": full.pop("img_size"), "overrides": full}
    else:
        raise CheckpointError(
            f"cannot describe a {type(model).__name__} for save_pretrained; build it with "
            "lkca.create_model / lkca.create_segmentor or pass config=..."
        )
    return json.loads(json.dumps({"format": FORMAT, **config, "lkca_version": __version__}))


def save_pretrained(model: nn.Module, directory: str | Path,
                    config: dict[str, Any] | None = None) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors``; returns ``directory``.

    ``config`` defaults to :func:`pretrained_config` of the model. Both files are written
    atomically (a crash never leaves half a file).
    """
    directory = Path(directory)
    model = getattr(model, "module", model)  # unwrap DDP / torch.compile wrappers
    model = getattr(model, "_orig_mod", model)
    config = pretrained_config(model) if config is None else {"format": FORMAT, **config}
    _check_config(config, directory / CONFIG_NAME)
    ckpt.save_weights(directory / WEIGHTS_NAME, model, _weights_meta(config))
    ckpt.atomic_write(directory / CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode())
    return directory


def from_pretrained(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_pretrained` (or by ``lkca train``) in eval mode.

    ``path``: a folder holding ``config.json`` + ``model.safetensors``, a ``lkca train`` run
    folder (its ``pretrained/`` export, else ``checkpoints/best`` or ``last.safetensors``), the
    ``config.json`` itself, or a checkpoint file of ``lkca train`` (``.safetensors``, or the
    ``.pt`` training state; their metadata is the config when no ``config.json`` lies beside).
    Raises :class:`~lkca.errors.CheckpointError` (one line) for a missing or corrupt file, or a
    config whose model does not fit the weights (listing the mismatched keys).
    """
    path = Path(path)
    if path.is_dir() and not (path / CONFIG_NAME).is_file():  # a run folder of `lkca train`
        run = [path / "pretrained", path / "checkpoints" / "best.safetensors",
               path / "checkpoints" / "last.safetensors"]
        path = next((p for p in run if p.exists()), path)
    if path.is_dir():
        config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    elif path.name == CONFIG_NAME:
        config_path, weights_path = path, path.with_name(WEIGHTS_NAME)
    else:
        config_path, weights_path = path.with_name(CONFIG_NAME), path
        if path.name != WEIGHTS_NAME or not config_path.is_file():
            config_path = None  # a lone .safetensors / .pt checkpoint: its metadata is the config
    if config_path is not None and not config_path.is_file():
        raise CheckpointError(f"{config_path} does not exist; pass a folder written by "
                              "save_pretrained (config.json + model.safetensors)")
    if weights_path.suffix == ".pt":  # training state of `lkca train` (weights_only load)
        state = ckpt.load_state(weights_path)
        tensors, meta = state.get("model") or {}, state.get("meta") or {}
    else:
        tensors, meta = ckpt.read_weights(weights_path)
    config = _read_config(config_path) if config_path is not None else _config_from_meta(meta, path)
    model = build_from_config(config, config_path or weights_path)
    ckpt.load_weights(model, tensors, config_path or weights_path)
    return model.to(device).eval()


def build_from_config(config: dict[str, Any], source: Path | str = "config") -> nn.Module:
    """An untrained model as described by a ``config.json`` dict (see :func:`save_pretrained`)."""
    from lkca.models.registry import create_model
    from lkca.models.vit import VisionTransformer, ViTConfig
    from lkca.seg.segmentor import create_segmentor

    _check_config(config, source)
    overrides = dict(config.get("overrides") or {})
    if config.get("task") == "seg":
        return create_segmentor(config["backbone"], config["head"], config["num_classes"], **overrides)
    img = config["img_size"]
    img = tuple(img) if isinstance(img, list) else img
    if config.get("model") is None:
        known = {f.name for f in fields(ViTConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise CheckpointError(f"{source}: unknown ViTConfig field(s) {unknown}; the file was "
                                  "written by another lkca version")
        return VisionTransformer(ViTConfig(num_classes=config["num_classes"], img_size=img,
                                           **overrides))
    return create_model(config["model"], num_classes=config["num_classes"], img_size=img, **overrides)


def _check_config(config: dict[str, Any], source: Path | str) -> None:
    need = ("backbone", "head", "num_classes") if config.get("task") == "seg" else (
        "model", "num_classes", "img_size")
    missing = [k for k in need if k not in config]
    if missing or not isinstance(config.get("overrides", {}), dict):
        raise CheckpointError(f"{source} lacks {', '.join(missing) or 'a valid overrides dict'}; "
                              "write it with lkca.save_pretrained")


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path} is not valid JSON; rewrite it with save_pretrained") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is not a JSON object; rewrite it with save_pretrained")
    return config


def _weights_meta(config: dict[str, Any]) -> dict[str, Any]:
    """The config in the checkpoint metadata layout of ``lkca train`` / ``lkca seg train``."""
    return {**config, "model_args": config.get("overrides", {})}


def _config_from_meta(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """A pretrained config from the metadata of a training checkpoint (``model_args``)."""
    if not meta:
        raise CheckpointError(f"{path} has no lkca metadata and no config.json beside it; pass a "
                              "folder written by save_pretrained or a checkpoint of `lkca train`")
    config = {k: v for k, v in meta.items() if k != "model_args"}
    config["overrides"] = meta.get("overrides", meta.get("model_args", {}))
    return config


def export_checkpoint(checkpoint: str | Path, directory: str | Path) -> Path:
    """Turn a training checkpoint (``.safetensors`` with lkca metadata, e.g. ``lkca train``'s
    ``checkpoints/best.safetensors``) into a pretrained folder; returns ``directory``."""
    checkpoint = Path(checkpoint)
    tensors, meta = ckpt.read_weights(checkpoint)
    config = _config_from_meta(meta, checkpoint)
    model = build_from_config(config, checkpoint)
    ckpt.load_weights(model, tensors, checkpoint)
    return save_pretrained(model, directory, config=config)
