"""CIFAR-10 and CIFAR-100 from the official python pickles (the layout torchvision uses).

``DIR/cifar-10-batches-py/{data_batch_1..5,test_batch}`` and ``DIR/cifar-100-python/{train,test}``:
each a pickled dict with ``b"data"`` (N, 3072) uint8, channel-major, and ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` (CIFAR-100). The pickles are read with a restricted unpickler, so a tampered
file cannot run code.
"""

from __future__ import annotations

import importlib
import pickle
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

# (module, name) -> where it lives now; numpy 2 moved numpy.core to numpy._core.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "numpy.core.numeric"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "numpy.core.numeric"),
    ("numpy", "ndarray"): ("numpy",),
    ("numpy", "dtype"): ("numpy",),
    ("_codecs", "encode"): ("_codecs",),  # how protocol-2 pickles written by Python 3 store bytes
}


class _Refused(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing was run."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the few numpy globals a CIFAR batch needs."""

    def find_class(self, module: str, name: str) -> object:
        homes = _ALLOWED.get((module, name))
        if homes is None:
            raise _Refused(f"{module}.{name}")
        for home in homes:
            try:
                return getattr(importlib.import_module(home), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"global {module}.{name} is not available")


def load_pickle(path: Path, name: str, layout: str) -> dict:
    """Read one CIFAR pickle as a dict (keys as bytes), refusing anything but plain data."""
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f, encoding="bytes").load()
    except _Refused as err:
        raise data_error(
            name, path, f"was refused: it asks to load global {err}, but a CIFAR pickle holds "
            "only dicts, bytes, lists and numpy arrays (re-download it)", layout,
        ) from None
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


def read_batch(path: Path, name: str, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode one batch file to images (N, 32, 32, 3) uint8 and labels (N,) int64."""
    layout = LAYOUTS[name]
    batch = load_pickle(require_file(name, path, layout), name, layout)
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
          data_dir: Path, split: str) -> ArrayDataset:
    layout = LAYOUTS[name]
    root = require_dir(name, require_dir(name, data_dir, layout) / folder, layout)
    paths = [require_file(name, root / f, layout) for f in files]

    def decode() -> ArrayDataset:
        parts = [read_batch(p, name, label_key, num_classes) for p in paths]
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
    return _load("cifar10", "cifar-10-batches-py", files, "labels", 10, data_dir, split)


@register_dataset(DatasetInfo(
    "cifar100", num_classes=100, img_size=32, in_chans=3,
    mean=(0.5070, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
    autoaugment_policy="cifar10", hflip=True, crop_padding=4,
))
def load_cifar100(data_dir: Path, split: str) -> ArrayDataset:
    """CIFAR-100 with the 100 fine labels: train 50,000 / test 10,000 images (N, 32, 32, 3)."""
    return _load("cifar100", "cifar-100-python", [split], "fine_labels", 100, data_dir, split)
