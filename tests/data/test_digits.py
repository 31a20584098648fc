"""The bundled digits data set: format, the fixed stratified split and its normalisation constants."""

from __future__ import annotations

import numpy as np
import pytest

from lkca.data import dataset_info, load_dataset
from lkca.data.digits import digits_arrays
from lkca.errors import DataFormatError


@pytest.fixture(scope="module")
def splits():
    return load_dataset("digits", None, "train"), load_dataset("digits", None, "test")


def test_format(splits) -> None:
    train, test = splits
    assert (len(train), len(test)) == (1437, 360)
    for ds in splits:
        assert ds.images.dtype == np.uint8 and ds.images.shape[1:] == (8, 8, 3)
        assert ds.labels.dtype == np.int64 and ds.num_classes == 10 and ds.name == "digits"
        assert (ds.images == ds.images[..., :1]).all()  # grey copied to 3 channels
    assert train.images.min() == 0 and train.images.max() == 255


def test_scaling_of_raw_values() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits().images
    images, _ = digits_arrays()
    np.testing.assert_array_equal(images[..., 0], np.rint(raw * 255 / 16))
    assert images[..., 0][raw == 8].min() == 128 and images[..., 0][raw == 16].min() == 255


def test_split_is_fixed_and_partitions_the_data(splits) -> None:
    again = load_dataset("digits", None, "train")
    np.testing.assert_array_equal(again.images, splits[0].images)
    np.testing.assert_array_equal(again.labels, splits[0].labels)
    images, labels = digits_arrays()

    def rows(x: np.ndarray, y: np.ndarray) -> list[bytes]:
        return sorted(xi.tobytes() + yi.tobytes() for xi, yi in zip(x, y))

    train, test = splits
    joined = rows(np.concatenate([train.images, test.images]),
                  np.concatenate([train.labels, test.labels]))
    assert joined == rows(images, labels)


def test_split_is_stratified(splits) -> None:
    _, labels = digits_arrays()
    total = np.bincount(labels, minlength=10)
    test = np.bincount(splits[1].labels, minlength=10)
    assert (np.abs(test - 0.2 * total) <= 1).all()


def test_normalisation_constants_match_train_split(splits) -> None:
    x = splits[0].images / 255.0
    info = dataset_info("digits")
    np.testing.assert_allclose(info.mean, [x.mean()] * 3, atol=5e-5)
    np.testing.assert_allclose(info.std, [x.std()] * 3, atol=5e-5)
    assert (info.img_size, info.hflip, info.crop_padding) == (8, False, 1)
    assert info.autoaugment_policy is None


def test_a_data_directory_for_digits_is_refused_not_ignored(capsys) -> None:
    with pytest.raises(DataFormatError, match="digits are bundled .* --data-dir /nonexistent would "
                                              "be ignored; leave --data-dir out"):
        load_dataset("digits", "/nonexistent", "train")
    from lkca.cli import main

    assert main(["train", "--data-dir", "/nonexistent", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "leave --data-dir out" in err
