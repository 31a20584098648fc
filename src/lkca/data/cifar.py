"""CIFAR-10 and CIFAR-100 from the official python pickles (the layout torchvision uses).

``DIR/cifar-10-batches-py/{data_batch_1..5,test_batch}`` and ``DIR/cifar-100-python/{train,test}``:
each a pickled dict with ``b"data"`` (N, 3072) uint8, channel-major, and ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` (CIFAR-100). The pickles are read with a restricted unpickler, so a tampered
file cannot run code.
"""

from __future__ import annotations

import importlib
import io
import math
import pickle
import pickletools
from pathlib import Path

import numpy as np

from lkca.data.base import (
    ArrayDataset,
    DatasetInfo,
    cached,
    check_images,
    check_labels,
    data_error,
    require_dir,
    require_file,
)
from lkca.data.registry import register_dataset

URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
LAYOUTS = {
    "cifar10": "DIR/cifar-10-batches-py/{data_batch_1..5,test_batch} as extracted from "
    f"cifar-10-python.tar.gz ({URL})",
    "cifar100": "DIR/cifar-100-python/{train,test} as extracted from "
    f"cifar-100-python.tar.gz ({URL})",
}

# (module, name) -> where it lives now; numpy 2 moved numpy.core to numpy._core. The array
# builders (_reconstruct, _frombuffer) are replaced by checked ones (_checked_globals).
_ALLOWED = {
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy", "ndarray"): ("numpy",),
    ("numpy", "dtype"): ("numpy",),
    ("_codecs", "encode"): ("_codecs",),  # how protocol-2 pickles written by Python 3 store bytes
}
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_FROMBUFFER = {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}
_KINDS = "biuf"  # dtype kinds of a batch's arrays: bool, integers, floats (never objects)
_PER_IMAGE_BYTES = 3072 + 512  # one image's pixels, and room for its labels and file name
_PER_IMAGE_OPS = 16  # pickle opcodes per image (its label, coarse label, file name ...)


class _Refused(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing was run."""


class _Bounds(pickle.UnpicklingError):
    """The pickle claims more than its file holds or its split needs; nothing was allocated."""


class _Array:
    """What ``numpy.core.multiarray._reconstruct`` stands for while a batch is read: the
    ndarray's state (shape, dtype, bytes) is checked in :meth:`__setstate__` before numpy sees
    it (numpy's own allocates the shape first), then kept as ``array``."""

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements
        self.array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise _Bounds("an array's state is not (version, shape, dtype, fortran, bytes)")
        _, shape, dtype, fortran, raw = state
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        self.array = _checked_array(raw, dtype, shape, "F" if fortran else "C", self.max_elements)


def _checked_array(raw: object, dtype: object, shape: object, order: object,
                   max_elements: int) -> np.ndarray:
    """The array of ``shape`` and ``dtype`` over the bytes ``raw`` (copied), refused unless the
    shape is a tuple of counts whose elements fill ``raw`` exactly and stay within
    ``max_elements``."""
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw.raw())
    if not isinstance(raw, (bytes, bytearray)) or not isinstance(dtype, np.dtype):
        raise _Bounds("an array without raw bytes or a dtype")
    if dtype.kind not in _KINDS or dtype.hasobject:
        raise _Bounds(f"an array of dtype {dtype}, not numbers")
    if not (isinstance(shape, tuple) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise _Bounds(f"an array shape {str(shape)[:60]} that is not a tuple of counts")
    elements = math.prod(shape)
    if elements > max_elements:
        raise _Bounds(f"an array of shape {shape}, more than the {max_elements} values the split "
                      "holds")
    if elements * dtype.itemsize != len(raw):
        raise _Bounds(f"an array of shape {shape} over {len(raw)} bytes that do not fill it")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if order == "F" else "C").copy()


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the few numpy globals a CIFAR batch needs, its arrays built
    by :func:`_checked_array` (no array larger than ``max_elements``)."""

    def __init__(self, file: io.BytesIO, max_elements: int) -> None:
        super().__init__(file, encoding="bytes")
        self.max_elements = max_elements

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _RECONSTRUCT:
            return self._reconstruct
        if (module, name) in _FROMBUFFER:
            return lambda buf, dtype, shape, order: _checked_array(buf, dtype, shape, order,
                                                                   self.max_elements)
        homes = _ALLOWED.get((module, name))
        if homes is None:
            raise _Refused(f"{module}.{name}")
        for home in homes:
            try:
                return getattr(importlib.import_module(home), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"global {module}.{name} is not available")

    def _reconstruct(self, cls: object, *_: object) -> _Array:
        if cls is not np.ndarray:
            raise _Refused(f"numpy _reconstruct of {str(cls)[:60]}")
        return _Array(self.max_elements)


def _check_opcodes(data: bytes, max_ops: int) -> None:
    """_Bounds unless every frame, string and bytes object of the pickle ``data`` lies within
    it and it has at most ``max_ops`` opcodes (what a CIFAR batch of its size has): walked
    before the unpickler runs, which allocates what a length claims before reading it."""
    try:
        for count, (op, arg, pos) in enumerate(pickletools.genops(io.BytesIO(data))):
            if count > max_ops:
                raise _Bounds(f"more than the {max_ops} pickle operations a batch has")
            if op.name == "FRAME" and isinstance(arg, int) and arg > len(data) - (pos or 0):
                raise _Bounds(f"a frame of {arg} bytes, past the file's {len(data)}")
    except (ValueError, EOFError) as err:  # a length past the end, an unknown opcode, a
        raise _Bounds(f"{err}") from None  # truncated file


def _unwrap(obj: object) -> object:
    """``obj`` with every :class:`_Array` replaced by its array (a dict's values, a list's
    items); _Bounds for one whose state never came."""
    if isinstance(obj, _Array):
        if obj.array is None:
            raise _Bounds("an array without its data")
        return obj.array
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unwrap(v) for v in obj]
    return obj


def load_pickle(path: Path, name: str, layout: str, max_images: int) -> dict:
    """Read one CIFAR pickle of at most ``max_images`` images as a dict (keys as bytes),
    refusing anything but plain data, and anything (a file, frame, string or array) larger
    than such a batch, before it is allocated."""
    limit = max_images * _PER_IMAGE_BYTES + (1 << 20)
    try:
        size = path.stat().st_size
        if size > limit:
            raise _Bounds(f"{size} bytes, over the {limit} a batch of {max_images} images takes")
        data = path.read_bytes()
        _check_opcodes(data, max_images * _PER_IMAGE_OPS + 1000)
        obj = _unwrap(_RestrictedUnpickler(io.BytesIO(data), max_images * 3072).load())
    except _Refused as err:
        raise data_error(
            name, path, f"was refused: it asks to load global {err}, but a CIFAR pickle holds "
            "only dicts, bytes, lists and numpy arrays (re-download it)", layout,
        ) from None
    except _Bounds as err:
        raise data_error(name, path, f"was refused: it claims {err} (a damaged or crafted "
                         "file; re-download it)", layout) from None
    except pickle.UnpicklingError as err:
        raise data_error(name, path, f"is not a valid CIFAR pickle ({err})", layout) from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        # what a truncated or non-pickle file raises, depending on where the bytes stop
        raise data_error(
            name, path, f"is truncated or not a pickle ({type(err).__name__}: {err})", layout
        ) from None
    except OSError as err:
        raise data_error(name, path, f"cannot be read ({err.strerror or err})", layout) from None
    if not isinstance(obj, dict):
        raise data_error(name, path, f"holds a {type(obj).__name__}, not a dict", layout)
    return obj


def _get(batch: dict, key: str, path: Path, name: str, layout: str) -> object:
    # encoding="bytes" gives bytes keys; a file re-pickled by Python 3 may have str keys
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    keys = sorted(k.decode("latin1") if isinstance(k, bytes) else str(k) for k in batch)
    raise data_error(name, path, f"has no {key!r} entry (it has {keys})", layout)


def read_batch(path: Path, name: str, label_key: str, num_classes: int, max_images: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Decode one batch file of at most ``max_images`` images to images (N, 32, 32, 3) uint8
    and labels (N,) int64."""
    layout = LAYOUTS[name]
    batch = load_pickle(require_file(name, path, layout), name, layout, max_images)
    data = _get(batch, "data", path, name, layout)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", type(data).__name__)
        raise data_error(name, path, f"has data of shape {shape}, not (N, 3072)", layout)
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    images = check_images(images, name=name, path=path, size=(32, 32), layout=layout)
    labels = check_labels(
        _get(batch, label_key, path, name, layout), name=name, path=path,
        num_classes=num_classes, count=len(images), layout=layout,
    )
    return images, labels


def _load(name: str, folder: str, files: list[str], label_key: str, num_classes: int,
          data_dir: Path, split: str, max_images: int) -> ArrayDataset:
    layout = LAYOUTS[name]
    root = require_dir(name, require_dir(name, data_dir, layout) / folder, layout)
    paths = [require_file(name, root / f, layout) for f in files]

    def decode() -> ArrayDataset:
        parts = [read_batch(p, name, label_key, num_classes, max_images) for p in paths]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        return ArrayDataset(images, labels, num_classes, name, split)

    return cached(name, split, paths, decode, data_dir=data_dir)


# Means/stds and AutoAugment policies: the SPT recipe (aanna0701/SPT_LSA_ViT utils/dataloader.py),
# flip + crop (padding 4) as SPT does; class names: CIFAR-10's batches.meta label_names.
@register_dataset(DatasetInfo(
    "cifar10", num_classes=10, img_size=32, in_chans=3,
    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
    autoaugment_policy="cifar10", hflip=True, crop_padding=4,
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"),
))
def load_cifar10(data_dir: Path, split: str) -> ArrayDataset:
    """CIFAR-10: train 50,000 / test 10,000 images, (N, 32, 32, 3) uint8, 10 classes."""
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return _load("cifar10", "cifar-10-batches-py", files, "labels", 10, data_dir, split, 10_000)


@register_dataset(DatasetInfo(
    "cifar100", num_classes=100, img_size=32, in_chans=3,
    mean=(0.5070, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
    autoaugment_policy="cifar10", hflip=True, crop_padding=4,
))
def load_cifar100(data_dir: Path, split: str) -> ArrayDataset:
    """CIFAR-100 with the 100 fine labels: train 50,000 / test 10,000 images (N, 32, 32, 3)."""
    return _load("cifar100", "cifar-100-python", [split], "fine_labels", 100, data_dir, split,
                 50_000 if split == "train" else 10_000)
