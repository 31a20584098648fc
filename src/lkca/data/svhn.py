"""SVHN (cropped digits, format 2) from ``DIR/train_32x32.mat`` and ``DIR/test_32x32.mat``.

Each file is a MATLAB v5 file with ``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) in 1..10, where 10
stands for the digit 0. The extra split (``extra_32x32.mat``) is not used by the paper's recipe.
"""

from __future__ import annotations

import zlib
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

LAYOUT = (
    "DIR/train_32x32.mat and DIR/test_32x32.mat as downloaded from "
    "http://ufldl.stanford.edu/housenumbers/ (format 2: X (32, 32, 3, N) uint8, y (N, 1) in 1..10)"
)


def read_mat(path: Path, split: str) -> ArrayDataset:
    """Decode one SVHN .mat file to images (N, 32, 32, 3) uint8 and labels 0..9."""
    import scipy.io  # deferred: scipy.io takes a while to import and only SVHN needs it
    from scipy.io.matlab import MatReadError

    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    except NotImplementedError:  # scipy's answer to MATLAB v7.3 (HDF5) files
        raise data_error(
            "svhn", path, "is a MATLAB v7.3 file; re-download the original v5 file", LAYOUT
        ) from None
    except (MatReadError, ValueError, TypeError, OSError, EOFError, KeyError, zlib.error) as err:
        raise data_error(
            "svhn", path, f"is corrupt or not a MATLAB file ({type(err).__name__}: {err})", LAYOUT
        ) from None
    for key in ("X", "y"):
        if key not in mat:
            raise data_error("svhn", path, f"has no variable {key!r}", LAYOUT)
    x, y = mat["X"], mat["y"]
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise data_error("svhn", path, f"has X of shape {x.shape}, not (32, 32, 3, N)", LAYOUT)
    images = check_images(
        np.ascontiguousarray(x.transpose(3, 0, 1, 2)), name="svhn", path=path, size=(32, 32),
        layout=LAYOUT,
    )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    # labels 1..10 with 10 = digit 0; 0 itself is accepted for files already remapped
    labels = check_labels(
        y, name="svhn", path=path, num_classes=11, count=len(images), layout=LAYOUT, valid="1..10"
    )
    return ArrayDataset(images, labels % 10, 10, "svhn", split)


# Mean/std and AutoAugment policy: the SPT recipe (aanna0701/SPT_LSA_ViT utils/dataloader.py),
# flip + crop (padding 4) as SPT does, even for digits; class i is the digit i.
@register_dataset(DatasetInfo(
    "svhn", num_classes=10, img_size=32, in_chans=3,
    mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
    autoaugment_policy="svhn", hflip=True, crop_padding=4,
    class_names=tuple(str(d) for d in range(10)),
))
def load_svhn(data_dir: Path, split: str) -> ArrayDataset:
    """SVHN: train 73,257 / test 26,032 images, (N, 32, 32, 3) uint8, labels 0..9 (digit value)."""
    path = require_file("svhn", require_dir("svhn", data_dir, LAYOUT) / f"{split}_32x32.mat", LAYOUT)

    return cached("svhn", split, [path], lambda: read_mat(path, split), data_dir=data_dir)
