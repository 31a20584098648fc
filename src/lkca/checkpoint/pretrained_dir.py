"""Writing a pretrained folder: ``config.json`` (the metadata record) + ``model.safetensors``.

Saving needs no model classes, so ``VisionTransformer.save_pretrained`` and
``Segmentor.save_pretrained`` call :func:`save_pretrained` here; loading builds models and lives
above them, in :mod:`lkca.pretrained` (docs/pretrained-and-export.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from lkca.atomic_files import write_atomic
from lkca.checkpoint.files import save_weights
from lkca.checkpoint.metadata import check_record, pretrained_cfg, unwrap

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_pretrained(model: nn.Module, directory: str | Path,
                    config: dict[str, Any] | None = None) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors``; returns ``directory``.

    ``config`` (a record of :mod:`lkca.checkpoint.metadata`) defaults to the model's own
    (:func:`~lkca.checkpoint.metadata.pretrained_cfg`). The weights file's metadata repeats the
    record, so it rebuilds the model on its own. Both files are written atomically.
    """
    directory = Path(directory)
    model = unwrap(model)
    record = pretrained_cfg(model) if config is None else dict(config)
    check_record(record, directory / CONFIG_NAME)
    save_weights(directory / WEIGHTS_NAME, model, record)
    write_atomic(directory / CONFIG_NAME, (json.dumps(record, indent=2) + "\n").encode())
    return directory
