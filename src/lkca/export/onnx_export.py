"""ONNX export of a classifier with a dynamic batch axis, through ``torch.onnx.export(dynamo=True)``.

Which LKCA implementation exports (checked by tests/test_export.py, torch 2.13, onnxscript 0.7):

- ``toeplitz`` and ``conv`` export and match PyTorch in onnxruntime (max abs diff < 1e-4);
  ``toeplitz`` is the default: one MatMul per head, which every ONNX runtime runs well.
- ``fft`` does not: the exporter has no ONNX conversion for the complex FFT ops.
- ``auto`` is not offered: while exporting it picks without timing (docs/benchmarks.md, "How
  auto chooses") and may pick ``fft``; name the implementation instead.
The legacy TorchScript exporter (``dynamo=False``) with a dynamic batch fails for ``conv`` (the
kernel is computed, so its shape is unknown to it) and ``toeplitz`` (``unfold`` without static
sizes), hence dynamo, which needs ``onnxscript`` (the ``onnx`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from lkca.atomic_files import check_target, write_atomic
from lkca.errors import UserError
from lkca.layers.lkca import LKCA

EXPORT_IMPLS = ("toeplitz", "conv")


@contextmanager
def lkca_impl(model: nn.Module, impl: str) -> Iterator[nn.Module]:
    """Set ``impl`` on every :class:`LKCA` module of ``model``; restore each one's own on exit."""
    mixers = [m for m in model.modules() if isinstance(m, LKCA)]
    before = [m.impl for m in mixers]
    try:
        for m in mixers:
            m.impl = impl
        yield model
    finally:
        for m, old in zip(mixers, before):
            m.impl = old


def require_onnx() -> None:
    """UserError naming the extra when the exporter's dependencies are missing."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"ONNX export needs {' and '.join(missing)}; install them with "
                        "pip install 'lkca[onnx]'")


def export_onnx(model: nn.Module, path: str | Path, img_size: int | tuple[int, int] | None = None,
                impl: str = "toeplitz", opset: int = 18) -> Path:
    """Write ``model`` (images (B, C, H, W) -> logits (B, K)) to an ONNX file; returns its path.
    The file is written atomically (:func:`lkca.atomic_files.write_atomic`): a full disk keeps
    the previous file whole and says so, and blames the disk, not the model.

    The batch axis ``batch`` is dynamic; height and width are fixed to ``img_size`` (default: the
    model's own). Input name ``images``, output ``logits``. LKCA modules run ``impl`` (one of
    :data:`EXPORT_IMPLS`) during the export and get their own implementation back afterwards.
    """
    require_onnx()
    if impl not in EXPORT_IMPLS:
        raise UserError(f"impl {impl!r} does not export to ONNX; choose one of {', '.join(EXPORT_IMPLS)}")
    cfg = getattr(model, "cfg", None)
    size = img_size if img_size is not None else getattr(cfg, "img_size", None)
    if size is None:
        raise UserError("the model does not say its input size; pass img_size (--img-size)")
    h, w = (size, size) if isinstance(size, int) else size
    chans = int(getattr(cfg, "in_chans", 3))
    path = check_target(path)  # a folder, device or read-only folder: refused before exporting
    was_training = model.training
    model.eval()
    # batch 2: torch.export specialises dimensions of size 1, so a batch-1 example would fix it
    example = torch.randn(2, chans, h, w, device=next(model.parameters()).device)
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        with lkca_impl(model, impl), torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(
                model, (example,), input_names=["images"], output_names=["logits"],
                dynamic_shapes=({0: batch},), dynamo=True, opset_version=opset, verbose=False,
            )
        assert program is not None
    except Exception as err:  # noqa: BLE001 - the exporter's errors are many pages long
        raise UserError(f"{type(model).__name__} does not export to ONNX: {_root_cause(err)}; "
                        "export another model, or report this with the model name") from err
    finally:
        model.train(was_training)
    # the graph is complete: a failure from here on is the disk's, named as such, the old file kept
    write_atomic(path, lambda f: program.save(f.name))
    return path


def _root_cause(err: BaseException) -> str:
    """The first line of the innermost cause (the exporter wraps it in several layers)."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes that torchvision ops are not registered, and its deprecations."""
    import logging
    import warnings

    log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        log.setLevel(level)


def onnx_input_shape(path: str | Path, name: str = "images") -> tuple[int | str, ...]:
    """The shape of the ONNX graph's input ``name`` as written in the file: an int per fixed axis,
    the axis' name (e.g. ``"batch"``) per dynamic one."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    (value,) = [v for v in graph.input if v.name == name]
    return tuple(d.dim_param if d.dim_param else int(d.dim_value)
                 for d in value.type.tensor_type.shape.dim)


def onnx_max_abs_diff(model: nn.Module, path: str | Path, batch_sizes: tuple[int, ...] = (1, 3),
                      img_size: int | tuple[int, int] | None = None) -> float:
    """Largest |onnxruntime - PyTorch| over random batches of the given sizes (CPU, fp32)."""
    import numpy as np
    import onnxruntime as ort

    cfg = getattr(model, "cfg", None)
    size = img_size if img_size is not None else getattr(cfg, "img_size", None)
    if size is None:
        raise UserError("the model does not say its input size; pass img_size")
    h, w = (size, size) if isinstance(size, int) else size
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = model.eval().cpu()
    worst = 0.0
    gen = torch.Generator().manual_seed(0)
    for b in batch_sizes:
        x = torch.randn(b, int(getattr(cfg, "in_chans", 3)), h, w, generator=gen)
        with torch.no_grad():
            ref = model(x).numpy()
        (out,) = session.run(["logits"], {"images": x.numpy()})
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst
