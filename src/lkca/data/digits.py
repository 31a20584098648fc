"""scikit-learn's bundled 8x8 handwritten digits: the no-download data set ``lkca train`` defaults to.

1,797 grey images with values 0..16, scaled to uint8 0..255 and repeated to 3 channels, so every
model and augmentation sees the same (N, H, W, 3) uint8 format as the real data sets. The split is
fixed: stratified by class, 20 % test, ``random_state=0`` -> 1,437 train / 360 test images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lkca.data.base import ArrayDataset, DatasetInfo
from lkca.data.registry import register_dataset

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as images (N, 8, 8, 3) uint8 and labels (N,) int64, in sklearn's order."""
    from sklearn.datasets import load_digits  # deferred: sklearn is slow to import

    bunch = load_digits()
    grey = np.rint(bunch.images * 255 / 16).astype(np.uint8)  # 0..16 -> 0..255
    images = np.repeat(grey[..., None], 3, axis=-1)
    return images, bunch.target.astype(np.int64)


@register_dataset(DatasetInfo(
    "digits", num_classes=10, img_size=8, in_chans=3,
    # images / 255 of the fixed train split (1,437 images), over all pixels and channels
    # (the 3 channels are copies): x.mean(), x.std() with numpy's default ddof=0.
    mean=(0.3054, 0.3054, 0.3054), std=(0.3760, 0.3760, 0.3760),
    autoaugment_policy=None, hflip=False, crop_padding=1,  # digits are not mirror-symmetric
    class_names=tuple(str(d) for d in range(10)),
))
def load_digits_split(data_dir: Path | None, split: str) -> ArrayDataset:
    """The fixed train (1,437) or test (360) split; ``data_dir`` is ignored (data is bundled)."""
    from sklearn.model_selection import train_test_split

    images, labels = digits_arrays()
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    if split == "train":
        return ArrayDataset(x_train, y_train, 10, "digits", split)
    return ArrayDataset(x_test, y_test, 10, "digits", split)
