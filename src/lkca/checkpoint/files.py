"""Checkpoint files: atomic writes, weights as safetensors, training state for a weights_only load.

The one place that writes and reads the bytes of checkpoints and pretrained folders. A
``.safetensors`` file carries the weights and, under the metadata key ``lkca``, the record of
:mod:`lkca.checkpoint.metadata` that rebuilds the model, so it stands on its own. A ``.pt`` file
holds only tensors, numbers and strings (optimiser, scheduler, RNG states, position in the run)
and is read with ``torch.load(weights_only=True)``: a crafted pickle cannot run code
(docs/design.md).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from lkca.errors import CheckpointError


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, rename: never a half-written file."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        kept = " (the previous file is kept)" if path.exists() else ""
        raise CheckpointError(f"could not write {path}: {err.strerror or err}{kept}; free disk "
                              "space or choose another --out") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_weights(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write ``model``'s state dict (on the CPU) with ``meta`` as its ``lkca`` metadata, atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, st_save(tensors, metadata={"lkca": json.dumps(meta)}))


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and the ``lkca`` metadata of a safetensors file, or a clear CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    data = path.read_bytes()
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get("lkca", "{}"))
    except (SafetensorError, ValueError, UnicodeDecodeError):
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated (not a safetensors file); use another "
            "checkpoint (e.g. best instead of last) or retrain"
        ) from None
    return tensors, meta


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load weights strictly, listing missing, unexpected and mismatched keys in one line."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    shapes = [
        f"{k} {tuple(tensors[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items() if k in tensors and tensors[k].shape != v.shape
    ]
    if missing or extra or shapes:
        parts = [f"missing {_few(missing)}" if missing else "",
                 f"unexpected {_few(extra)}" if extra else "",
                 f"shape mismatch {_few(shapes)}" if shapes else ""]
        raise CheckpointError(
            f"checkpoint {source} does not fit this model ({'; '.join(p for p in parts if p)}); "
            "build the model the checkpoint was trained with"
        )
    model.load_state_dict(tensors)


def _few(items: list[str], n: int = 4) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a training state (tensors, numbers, strings, lists and dicts of them), atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def load_state(path: Path) -> dict[str, Any]:
    """Training state via ``torch.load(weights_only=True)``; corrupt or unsafe -> CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"training state {path} does not exist; check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means an unusable file
        reason = "refused: it holds objects other than tensors and plain data" if (
            "weights_only" in str(err) or "Unsupported global" in str(err)
        ) else "corrupt or truncated"
        raise CheckpointError(
            f"training state {path} is {reason}; resume from another checkpoint or retrain"
        ) from None
