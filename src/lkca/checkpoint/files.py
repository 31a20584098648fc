"""Checkpoint files: weights as safetensors, training state for a weights_only load.

The one place that writes and reads the bytes of checkpoints and pretrained folders. A
``.safetensors`` file carries the weights and, under the metadata key ``lkca``, the record of
:mod:`lkca.checkpoint.metadata` that rebuilds the model, so it stands on its own. A ``.pt`` file
holds only tensors, numbers and strings (optimiser, scheduler, RNG states, position in the run)
and is read with ``torch.load(weights_only=True)``: a crafted pickle cannot run code
(docs/design.md).

Both are verified on load, so a damaged file is refused rather than silently used: a ``.pt``
is a zip archive whose members carry CRC-32s (checked with :meth:`zipfile.ZipFile.testzip`
before unpickling), and a ``.safetensors`` file carries a SHA-256 of its tensors under the
metadata key ``lkca_sha256`` (files written before it existed load unchecked).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from lkca.atomic_files import write_atomic
from lkca.bounded_files import FileLimit, parse_json
from lkca.errors import CheckpointError

CHECKSUM_KEY = "lkca_sha256"  # safetensors metadata: SHA-256 of the tensors (tensors_digest)


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_weights(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write ``model``'s state dict (on the CPU) with ``meta`` as its ``lkca`` metadata and the
    tensors' checksum, atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(path, st_save(tensors, metadata={"lkca": json.dumps(meta),
                                                  CHECKSUM_KEY: tensors_digest(tensors)}))


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and the ``lkca`` metadata of a safetensors file, or a clear CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    data = path.read_bytes()
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        stored = header.get("__metadata__", {})
        meta = parse_json(stored.get("lkca", "{}"), path)
    except FileLimit as err:
        raise CheckpointError(f"checkpoint {path} has a damaged metadata record ({err.problem}); "
                              "use another checkpoint or retrain") from None
    except (SafetensorError, ValueError, UnicodeDecodeError, AttributeError):
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated (not a safetensors file); use another "
            "checkpoint (e.g. best instead of last) or retrain"
        ) from None
    if CHECKSUM_KEY in stored and stored[CHECKSUM_KEY] != tensors_digest(tensors):
        raise CheckpointError(
            f"checkpoint {path} is damaged (its tensors do not match their checksum); use another "
            "checkpoint (e.g. best.safetensors instead of last.safetensors) or retrain")
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} has a damaged metadata record (not a JSON "
                              "object); use another checkpoint or retrain")
    return tensors, meta


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load weights strictly, listing missing, unexpected and mismatched keys in one line."""
    check_fit(model, tensors, source)
    model.load_state_dict(tensors)


def check_fit(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """CheckpointError (one line listing missing, unexpected and mismatched keys) unless
    ``tensors`` are exactly ``model``'s weights; ``model`` may live on the meta device, so a
    record is checked against its weights before anything is allocated."""
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


def _few(items: list[str], n: int = 4) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a training state (tensors, numbers, strings, lists and dicts of them), atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def _damaged_member(path: Path) -> str:
    """Why the zip archive at ``path`` fails its CRC-32 checks ("" when whole or not a zip:
    torch's legacy format, which ``torch.load`` judges itself)."""
    try:
        if not zipfile.is_zipfile(path):
            return ""
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        return f"unreadable archive: {type(err).__name__}"
    return f"checksum of {bad} does not match" if bad else ""


def load_state(path: Path) -> dict[str, Any]:
    """Training state via ``torch.load(weights_only=True)``; corrupt or unsafe -> CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"training state {path} does not exist; check the path")
    damaged = _damaged_member(path)
    if damaged:
        raise CheckpointError(
            f"training state {path} is damaged ({damaged}); it cannot be resumed: evaluate or "
            f"fine-tune {path.with_name('best.safetensors').name} beside it, or retrain")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means an unusable file
        reason = "refused: it holds objects other than tensors and plain data" if (
            "weights_only" in str(err) or "Unsupported global" in str(err)
        ) else "corrupt or truncated"
        raise CheckpointError(
            f"training state {path} is {reason}; resume from another checkpoint or retrain"
        ) from None
