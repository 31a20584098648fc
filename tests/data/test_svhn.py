"""SVHN loader: .mat decoding, the 10 -> 0 label mapping and validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from lkca.data import load_dataset
from lkca.errors import DataFormatError


def test_svhn_shapes_and_digit_labels(svhn_dir) -> None:
    raw = scipy.io.loadmat(svhn_dir.root / "train_32x32.mat")["y"]
    assert raw.shape == (10, 1) and raw.min() == 1 and raw.max() == 10  # the real encoding
    for split, x, y in (("train", svhn_dir.train_images, svhn_dir.train_labels),
                        ("test", svhn_dir.test_images, svhn_dir.test_labels)):
        ds = load_dataset("svhn", svhn_dir.root, split)
        assert (ds.name, ds.split, ds.num_classes) == ("svhn", split, 10)
        assert ds.images.dtype == np.uint8 and ds.images.shape == (len(y), 32, 32, 3)
        assert ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.images, x)
        np.testing.assert_array_equal(ds.labels, y)  # 10 came back as digit 0


def _expect_error(root: Path, path: Path, *words: str) -> None:
    with pytest.raises(DataFormatError) as info:
        load_dataset("svhn", root, "test")
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and "DIR/test_32x32.mat" in msg, msg
    for word in words:
        assert word in msg, msg


def test_missing_file(svhn_dir) -> None:
    path = svhn_dir.root / "test_32x32.mat"
    path.unlink()
    _expect_error(svhn_dir.root, path, "is missing")


def test_missing_data_dir(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope", tmp_path / "nope", "does not exist")


@pytest.mark.parametrize("content", [b"", b"not a mat file at all" * 20, "truncate"])
def test_corrupt_mat(svhn_dir, content) -> None:
    path = svhn_dir.root / "test_32x32.mat"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if content == "truncate" else content)
    _expect_error(svhn_dir.root, path)


def test_missing_variable(svhn_dir) -> None:
    path = svhn_dir.root / "test_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8)})
    _expect_error(svhn_dir.root, path, "'y'")


def test_wrong_shape(svhn_dir) -> None:
    path = svhn_dir.root / "test_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((2, 32, 32, 3), np.uint8), "y": np.ones((2, 1))})
    _expect_error(svhn_dir.root, path, "(2, 32, 32, 3)")


def test_label_count_mismatch(svhn_dir) -> None:
    path = svhn_dir.root / "test_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((3, 1))})
    _expect_error(svhn_dir.root, path, "shape (3,)")


def test_label_out_of_range(svhn_dir) -> None:
    path = svhn_dir.root / "test_32x32.mat"
    y = np.array([[1], [11]], np.uint8)
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": y})
    _expect_error(svhn_dir.root, path, "label 11", "outside 1..10")


def test_compressed_garbage_is_refused_naming_the_file(svhn_dir) -> None:
    """A v5 file whose compressed element holds garbage (scipy's zlib.error)."""
    from tiny_train import snapshot

    path = svhn_dir.root / "test_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1))},
                     do_compression=True)
    data = bytearray(path.read_bytes())
    data[136:200] = b"\xff" * 64  # inside the first compressed element, past its tag
    path.write_bytes(bytes(data))
    before = snapshot(svhn_dir.root)
    _expect_error(svhn_dir.root, path, "is corrupt or not a MATLAB file (error:")
    assert snapshot(svhn_dir.root) == before


@pytest.mark.parametrize("label, shown", [(1e300, "1e+300"), (float("nan"), "nan"), (2.5, "2.5")])
def test_a_label_that_is_no_integer_is_reported_as_read(svhn_dir, label, shown) -> None:
    path = svhn_dir.root / "test_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8),
                            "y": np.array([[1.0], [label]])})
    _expect_error(svhn_dir.root, path, f"has label {shown} at index 1, not an integer in 1..10")
