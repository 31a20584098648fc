"""Tiny data sets written in the real on-disk formats, and a sandbox for the array cache."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@dataclass
class Written:
    """A fixture data directory and the arrays a loader should return for it."""

    root: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@pytest.fixture(autouse=True)
def _cache_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every fallback cache folder inside tmp_path (never the real ~/.cache)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LKCA_CACHE_DIR", str(tmp_path / "env-cache"))


def random_images(rng: np.random.Generator, n: int, size: int = 32) -> np.ndarray:
    """(n, size, size, 3) uint8 noise."""
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def write_cifar_pickle(path: Path, images: np.ndarray, labels: np.ndarray, label_key: bytes,
                       protocol: int = 4, old_numpy: bool = False) -> None:
    """Write a CIFAR batch: dict with b"data" (N, 3072) channel-major and the label list.

    ``old_numpy`` names ``numpy.core.multiarray`` as numpy 1.x (and the real files) do.
    """
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    batch = {b"batch_label": b"fixture", label_key: [int(v) for v in labels], b"data": data,
             b"filenames": [f"{i}.png".encode() for i in range(len(images))]}
    raw = pickle.dumps(batch, protocol=protocol)
    if old_numpy:
        assert protocol <= 2  # GLOBAL opcodes are newline-terminated text only up to protocol 2
        raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)


@pytest.fixture
def cifar_writer():
    """:func:`write_cifar_pickle`, for tests that write their own (broken) batches."""
    return write_cifar_pickle


@pytest.fixture
def cifar10_dir(tmp_path: Path) -> Written:
    """DIR/cifar-10-batches-py with 5 train batches of 3 images and a test batch of 4."""
    rng = np.random.default_rng(10)
    root = tmp_path / "c10"
    train_x, train_y = random_images(rng, 15), rng.integers(0, 10, 15)
    test_x, test_y = random_images(rng, 4), np.array([0, 9, 3, 3])
    folder = root / "cifar-10-batches-py"
    for i in range(5):
        sl = slice(3 * i, 3 * i + 3)
        write_cifar_pickle(folder / f"data_batch_{i + 1}", train_x[sl], train_y[sl], b"labels",
                           protocol=2, old_numpy=True)
    write_cifar_pickle(folder / "test_batch", test_x, test_y, b"labels", protocol=2,
                       old_numpy=True)
    return Written(root, train_x, train_y, test_x, test_y)


@pytest.fixture
def cifar100_dir(tmp_path: Path) -> Written:
    """DIR/cifar-100-python/{train,test} with fine labels up to 99 (and coarse ones beside)."""
    rng = np.random.default_rng(100)
    root = tmp_path / "c100"
    train_x, train_y = random_images(rng, 6), np.array([0, 99, 50, 17, 42, 98])
    test_x, test_y = random_images(rng, 3), np.array([99, 0, 63])
    folder = root / "cifar-100-python"
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        write_cifar_pickle(folder / split, x, y, b"fine_labels")
        batch = pickle.loads((folder / split).read_bytes())
        batch[b"coarse_labels"] = [int(v) // 5 for v in y]
        (folder / split).write_bytes(pickle.dumps(batch))
    return Written(root, train_x, train_y, test_x, test_y)


def write_svhn_mat(path: Path, images: np.ndarray, digits: np.ndarray,
                   label_dtype: type = np.uint8) -> None:
    """Write an SVHN format-2 .mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 for digit 0."""
    import scipy.io

    y = np.where(digits == 0, 10, digits).astype(label_dtype)[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"X": images.transpose(1, 2, 3, 0), "y": y})


@pytest.fixture
def svhn_writer():
    """:func:`write_svhn_mat`, for tests that write their own files."""
    return write_svhn_mat


@pytest.fixture
def svhn_dir(tmp_path: Path) -> Written:
    """DIR/{train,test}_32x32.mat with every digit, 0 included (stored as 10)."""
    rng = np.random.default_rng(7)
    root = tmp_path / "svhn"
    train_x, train_y = random_images(rng, 10), np.arange(10)
    test_x, test_y = random_images(rng, 3), np.array([0, 5, 0])
    write_svhn_mat(root / "train_32x32.mat", train_x, train_y, np.float64)  # MATLAB's default
    write_svhn_mat(root / "test_32x32.mat", test_x, test_y)
    return Written(root, train_x, train_y, test_x, test_y)


TINY_WNIDS = ["n09256479", "n01443537", "n04067472"]  # deliberately not sorted


def flat_image(rgb: tuple[int, int, int], mode: str = "RGB") -> Image.Image:
    """A 64x64 image of one colour (survives JPEG almost exactly)."""
    img = Image.new("RGB", (64, 64), rgb)
    return img.convert(mode)


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Written:
    """DIR/tiny-imagenet-200 with 3 wnids, 2 train JPEGs each, 4 val JPEGs (one grayscale)."""
    root = tmp_path / "tiny"
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    train_x, train_y = [], []
    for label, wnid in enumerate(TINY_WNIDS):
        folder = base / "train" / wnid / "images"
        folder.mkdir(parents=True)
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for j in range(2):
            rgb = (40 * label + 20, 100 + 50 * j, 200 - 30 * label)
            flat_image(rgb).save(folder / f"{wnid}_{j}.JPEG", quality=95)
            train_x.append(rgb)
            train_y.append(label)
    val = base / "val" / "images"
    val.mkdir(parents=True)
    rows = [("val_0.JPEG", 2, (10, 200, 30), "RGB"), ("val_1.JPEG", 0, (128, 128, 128), "L"),
            ("val_2.JPEG", 1, (250, 20, 90), "RGB"), ("val_3.JPEG", 2, (60, 60, 200), "RGB")]
    lines = []
    for filename, label, rgb, mode in rows:
        flat_image(rgb, mode).save(val / filename, quality=95)
        lines.append(f"{filename}\t{TINY_WNIDS[label]}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    test_x = [rgb for _, _, rgb, _ in rows]
    test_y = [label for _, label, _, _ in rows]

    def full(colours: list) -> np.ndarray:
        return np.array(colours, np.uint8)[:, None, None, :].repeat(64, 1).repeat(64, 2)

    return Written(root, full(train_x), np.array(train_y), full(test_x), np.array(test_y))
