"""Fixtures in the real ADE20K layout (ADEChallengeData2016/{images,annotations}/{training,validation})."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _write_pair(root: Path, split: str, stem: str, size=(24, 32), label=None, seed=0,
                image=None) -> None:
    """images/<split>/<stem>.jpg (H, W = size) and annotations/<split>/<stem>.png (mode L);
    random pixels and labels (0..150) unless ``image`` (H, W, 3) / ``label`` (H, W) are given."""
    rng = np.random.default_rng(seed)
    h, w = size
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
    if image is None:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(image).save(root / "images" / split / f"{stem}.jpg", quality=95)
    if label is None:
        label = rng.integers(0, 151, (h, w), dtype=np.uint8)
    Image.fromarray(label, mode="L").save(root / "annotations" / split / f"{stem}.png")


@pytest.fixture(scope="session")
def write_pair():
    """The pair writer: ``write_pair(root, split, stem, size=(H, W), label=None, seed=0, image=None)``."""
    return _write_pair


@pytest.fixture
def ade(tmp_path: Path) -> Path:
    root = tmp_path / "ADEChallengeData2016"
    label = np.zeros((24, 32), np.uint8)
    label[:, 8:] = 1
    label[:, 16:] = 150
    _write_pair(root, "training", "ADE_train_00000002", seed=2)
    _write_pair(root, "training", "ADE_train_00000001", label=label, seed=1)
    _write_pair(root, "validation", "ADE_val_00000001", size=(40, 16), seed=3)
    return tmp_path


@pytest.fixture
def tiny_train_data(tmp_path: Path) -> Path:
    """``tmp_path / "data"``: 4 training pairs of 32x40 with labels 1..3 and one validation pair,
    the data of the short real trainings (tests/tiny_train.py TINY_SEG_YAML)."""
    root = tmp_path / "data" / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    for i in range(4):
        _write_pair(root, "training", f"ADE_train_{i:08d}", (32, 40), seed=i,
                    label=rng.integers(1, 4, (32, 40), dtype=np.uint8))
    _write_pair(root, "validation", "ADE_val_00000001", (32, 32), seed=9)
    return tmp_path / "data"
