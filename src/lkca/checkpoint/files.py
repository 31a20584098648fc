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
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save
from torch import nn

from lkca.atomic_files import write_atomic
from lkca.bounded_files import MAX_JSON_BYTES, FileLimit, parse_json
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


# safetensors dtypes (their header's names) and the bytes of one element
_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
              "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def _corrupt(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} is corrupt or truncated ({why}; not a safetensors "
                           "file lkca wrote); use another checkpoint (e.g. best instead of last) "
                           "or retrain")


def read_weights_header(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a safetensors file as meta-device stand-ins (their dtypes and shapes, no
    data) and its ``lkca`` metadata, from its header alone: at most :data:`MAX_JSON_BYTES` are
    read, and every tensor's byte range is checked against its dtype and shape and against the
    file's real size, so a damaged or crafted file is refused before anything is allocated
    (:func:`check_fit` compares the stand-ins with the model's own)."""
    header, _ = _read_header(path)
    stored = header.pop("__metadata__", None) or {}
    if not isinstance(stored, dict) or not all(isinstance(v, str) for v in stored.values()):
        raise _corrupt(path, "its __metadata__ is not a mapping of strings")
    try:
        meta = parse_json(stored.get("lkca", "{}"), path)
    except FileLimit as err:
        raise CheckpointError(f"checkpoint {path} has a damaged metadata record ({err.problem}); "
                              "use another checkpoint or retrain") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} has a damaged metadata record (not a JSON "
                              "object); use another checkpoint or retrain")
    stand_ins = {name: torch.empty(shape, dtype=dtype, device="meta")
                 for name, (dtype, shape) in header.items()}
    return stand_ins, meta


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The header of the safetensors file ``path`` (tensor name -> (dtype, shape), and
    ``__metadata__``) and the file's size, each entry checked against the file's real size."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            length = int.from_bytes(f.read(8), "little")
            if size < 8 or length < 2 or length > min(MAX_JSON_BYTES, size - 8):
                raise _corrupt(path, f"a header of {length} bytes in a file of {size}")
            raw = f.read(length)
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path} ({err.strerror or err}); check the "
                              "path and its permissions") from None
    try:
        header = parse_json(raw, path)
    except FileLimit as err:
        raise _corrupt(path, f"its header {err.problem}") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")
    data_bytes = size - 8 - length
    for name, entry in list(header.items()):
        if name == "__metadata__":
            continue
        fields: dict[str, Any] = entry if isinstance(entry, dict) else {}
        dtype: Any = fields.get("dtype")
        shape: Any = fields.get("shape")
        offsets: Any = fields.get("data_offsets")
        if (dtype not in _ST_DTYPES or not _ints(shape) or not _ints(offsets)
                or len(offsets) != 2 or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise _corrupt(path, f"tensor {name[:80]!r} has an entry outside the file's "
                                 f"{data_bytes} bytes of data")
        numel = math.prod(shape)
        if numel * _ST_DTYPES[dtype].itemsize != offsets[1] - offsets[0]:
            raise _corrupt(path, f"tensor {name[:80]!r} of shape {tuple(shape)} does not fill "
                                 f"its {offsets[1] - offsets[0]} bytes")
        header[name] = (_ST_DTYPES[dtype], tuple(shape))
    return header, size


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and the ``lkca`` metadata of a safetensors file, or a clear CheckpointError.

    The header is checked first (:func:`read_weights_header`) and the tensors are then read
    from the file mapped into memory, never all of its bytes at once, so memory holds the
    tensors alone; call it after :func:`check_fit` has compared the header with the model."""
    stand_ins, meta = read_weights_header(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            stored = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in stand_ins}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise _corrupt(path, type(err).__name__) from None
    if CHECKSUM_KEY in stored and stored[CHECKSUM_KEY] != tensors_digest(tensors):
        raise CheckpointError(
            f"checkpoint {path} is damaged (its tensors do not match their checksum); use another "
            "checkpoint (e.g. best.safetensors instead of last.safetensors) or retrain")
    return tensors, meta


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load weights strictly, listing missing, unexpected and mismatched keys in one line."""
    check_fit(model, tensors, source)
    model.load_state_dict(tensors)


def check_fit(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """CheckpointError (one line listing missing, unexpected and mismatched keys) unless
    ``tensors`` are exactly ``model``'s weights; ``model`` may live on the meta device, so a
    record is checked against its weights before anything is allocated. A weight of another
    kind than the model's (an integer, bool or complex tensor where it holds floats) is
    refused, and so is a non-finite one (NaN or inf; checked on tensors that hold data)."""
    if not isinstance(tensors, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()):
        raise CheckpointError(f"checkpoint {source} holds no weights (a mapping of names to "
                              "tensors); pass a checkpoint of lkca train or lkca seg train")
    own = model.state_dict()
    kinds = [f"{k} {tensors[k].dtype} where the model has {v.dtype}" for k, v in own.items()
             if k in tensors and not _same_kind(tensors[k].dtype, v.dtype)]
    if kinds:
        raise CheckpointError(f"checkpoint {source} holds weights of another kind ({_few(kinds)}); "
                              "use a checkpoint of lkca train or lkca seg train, or retrain")
    nonfinite = [k for k, t in tensors.items() if t.is_floating_point() and not t.is_meta
                 and t.numel() and not bool(torch.isfinite(t).all())]
    if nonfinite:
        raise CheckpointError(f"checkpoint {source} holds non-finite weights (NaN or inf in "
                              f"{_few(sorted(nonfinite))}); use another checkpoint (e.g. best "
                              "instead of last) or retrain")
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


def check_own_data(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """CheckpointError (one line) unless every tensor of ``tensors`` has no zero-sized
    dimension and holds its own bytes (its storage is at least its elements): a weight never
    has an empty dimension, and an expanded or overlapping view (stride 0) could claim a shape
    far larger than its file, which a later copy would allocate."""
    for name, t in tensors.items():
        if 0 in t.shape:
            raise CheckpointError(f"{source}: weight {name[:80]} has a zero-sized dimension "
                                  f"{tuple(t.shape)}; pass the checkpoint the training saved")
        if t.untyped_storage().nbytes() < t.numel() * t.element_size():
            raise CheckpointError(f"{source}: weight {name[:80]} of shape {tuple(t.shape)} "
                                  "holds fewer bytes than its shape (an expanded view); pass "
                                  "the checkpoint the training saved")


def _same_kind(theirs: torch.dtype, ours: torch.dtype) -> bool:
    """Whether a weight of dtype ``theirs`` may load into one of dtype ``ours``: floats into
    floats (any precision), integers into the same integer type; never complex or bool for
    either."""
    if theirs.is_complex or ours.is_complex:
        return False
    if ours.is_floating_point:
        return theirs.is_floating_point
    return theirs == ours


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
            packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
            if packed:  # torch.save stores; a compressed member could expand past the file
                return f"member {packed[0][:80]} is compressed, which torch.save never writes"
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        return f"unreadable archive: {type(err).__name__}"
    return f"checksum of {bad} does not match" if bad else ""


def load_state(path: Path) -> Any:
    """Training state via ``torch.load(weights_only=True, mmap=True)``; corrupt or unsafe ->
    CheckpointError. The caller checks the structure of what it returns."""
    if not path.is_file():
        raise CheckpointError(f"training state {path} does not exist; check the path")
    damaged = _damaged_member(path)
    if damaged:
        raise CheckpointError(
            f"training state {path} is damaged ({damaged}); it cannot be resumed: evaluate or "
            f"fine-tune {path.with_name('best.safetensors').name} beside it, or retrain")
    try:
        # mapped, not read: a tensor's bytes are the file's own (a storage claiming more than
        # its member holds is refused by torch), so memory never holds more than the file
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means an unusable file
        reason = "refused: it holds objects other than tensors and plain data" if (
            "weights_only" in str(err) or "Unsupported global" in str(err)
        ) else "corrupt or truncated"
        raise CheckpointError(
            f"training state {path} is {reason}; resume from another checkpoint or retrain"
        ) from None
