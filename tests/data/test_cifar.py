"""CIFAR-10/100 loaders: decoding, validation and the restricted unpickler."""

from __future__ import annotations

import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest

from lkca.data import load_dataset
from lkca.errors import DataFormatError


def test_cifar10_shapes_and_labels(cifar10_dir) -> None:
    for split, x, y in (("train", cifar10_dir.train_images, cifar10_dir.train_labels),
                        ("test", cifar10_dir.test_images, cifar10_dir.test_labels)):
        ds = load_dataset("cifar10", cifar10_dir.root, split)
        assert (ds.name, ds.split, ds.num_classes, len(ds)) == ("cifar10", split, 10, len(y))
        assert ds.images.dtype == np.uint8 and ds.images.shape == (len(y), 32, 32, 3)
        assert ds.images.flags.c_contiguous
        assert ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.images, x)
        np.testing.assert_array_equal(ds.labels, y)


def test_cifar100_uses_fine_labels(cifar100_dir) -> None:
    ds = load_dataset("cifar100", cifar100_dir.root, "train")
    assert ds.num_classes == 100 and ds.images.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(ds.images, cifar100_dir.train_images)
    np.testing.assert_array_equal(ds.labels, cifar100_dir.train_labels)
    test = load_dataset("cifar100", cifar100_dir.root, "test")
    np.testing.assert_array_equal(test.labels, [99, 0, 63])


def _batch3(d) -> Path:
    return d.root / "cifar-10-batches-py" / "data_batch_3"


def _expect_error(d, path: Path, *words: str, split: str = "train") -> str:
    with pytest.raises(DataFormatError) as info:
        load_dataset("cifar10", d.root, split)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    assert "cifar-10-batches-py/{data_batch_1..5,test_batch}" in msg
    for word in words:
        assert word in msg, msg
    return msg


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        load_dataset("cifar10", tmp_path / "nowhere", "train")


def test_missing_batch_names_it(cifar10_dir) -> None:
    _batch3(cifar10_dir).unlink()
    msg = _expect_error(cifar10_dir, _batch3(cifar10_dir), "is missing")
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in msg


@pytest.mark.parametrize("keep", [0.5, 0.02, 0.0])
def test_truncated_pickle(cifar10_dir, keep: float) -> None:
    path = _batch3(cifar10_dir)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    _expect_error(cifar10_dir, path)


def test_not_a_pickle(cifar10_dir) -> None:
    _batch3(cifar10_dir).write_text("<html>404 Not Found</html>\n")
    _expect_error(cifar10_dir, _batch3(cifar10_dir))


def test_not_a_dict(cifar10_dir) -> None:
    _batch3(cifar10_dir).write_bytes(pickle.dumps([1, 2, 3]))
    _expect_error(cifar10_dir, _batch3(cifar10_dir), "not a dict")


def test_missing_key(cifar10_dir, cifar_writer) -> None:
    # a CIFAR-100 file where CIFAR-10 is expected: no b"labels"
    x = np.zeros((2, 32, 32, 3), np.uint8)
    cifar_writer(_batch3(cifar10_dir), x, np.array([1, 2]), b"fine_labels")
    _expect_error(cifar10_dir, _batch3(cifar10_dir), "'labels'")


def test_wrong_data_shape(cifar10_dir) -> None:
    batch = {b"data": np.zeros((2, 1000), np.uint8), b"labels": [0, 1]}
    _batch3(cifar10_dir).write_bytes(pickle.dumps(batch))
    _expect_error(cifar10_dir, _batch3(cifar10_dir), "(2, 1000)")


def test_wrong_dtype(cifar10_dir) -> None:
    batch = {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}
    _batch3(cifar10_dir).write_bytes(pickle.dumps(batch))
    _expect_error(cifar10_dir, _batch3(cifar10_dir), "float32")


def test_label_count_mismatch(cifar10_dir) -> None:
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}
    _batch3(cifar10_dir).write_bytes(pickle.dumps(batch))
    _expect_error(cifar10_dir, _batch3(cifar10_dir), "labels")


def test_label_out_of_range(cifar10_dir, cifar_writer) -> None:
    x = np.zeros((3, 32, 32, 3), np.uint8)
    cifar_writer(_batch3(cifar10_dir), x, np.array([0, 10, 1]), b"labels")
    _expect_error(cifar10_dir, _batch3(cifar10_dir), "label 10", "[0, 10)")


def test_cifar100_label_out_of_range(cifar100_dir, cifar_writer) -> None:
    path = cifar100_dir.root / "cifar-100-python" / "test"
    cifar_writer(path, np.zeros((1, 32, 32, 3), np.uint8), np.array([100]), b"fine_labels")
    with pytest.raises(DataFormatError, match=r"label 100 .*\[0, 100\)") as info:
        load_dataset("cifar100", cifar100_dir.root, "test")
    assert str(path) in str(info.value) and "cifar-100-python/{train,test}" in str(info.value)


class _Exec:
    """Unpickling this runs Python code that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


class _System(_Exec):
    """Unpickling this runs a shell command that creates ``marker``."""

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.mark.parametrize("payload", [_Exec, _System])
def test_malicious_pickle_is_refused(cifar10_dir, tmp_path: Path, payload) -> None:
    # the payload really runs code under a plain pickle.loads ...
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps({b"data": payload(probe)}))
    assert probe.exists()
    # ... but the loader refuses it before running anything
    marker = tmp_path / "pwned"
    batch = {b"data": payload(marker), b"labels": [0]}
    _batch3(cifar10_dir).write_bytes(pickle.dumps(batch, protocol=2))
    _expect_error(cifar10_dir, _batch3(cifar10_dir), "refused")
    assert not marker.exists()


def _reconstruct_pickle(shape: tuple[int, ...], raw: bytes) -> bytes:
    """A protocol-2 pickle of {b"data": ndarray} spelt out opcode by opcode, as numpy writes one
    (_reconstruct, then BUILD with (version, shape, dtype, fortran, bytes)), with any shape."""
    def glob(module: str, name: str) -> bytes:
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def ints(values: tuple[int, ...]) -> bytes:
        return b"(" + b"".join(b"\x8a\x08" + v.to_bytes(8, "little") for v in values) + b"t"

    minus_one = b"J\xff\xff\xff\xff"
    dtype = (glob("numpy", "dtype") + b"U\x02u1\x89\x88\x87R"
             + b"(K\x03U\x01|NNN" + minus_one + minus_one + b"K\x00tb")
    array = (glob("numpy.core.multiarray", "_reconstruct") + glob("numpy", "ndarray")
             + b"K\x00\x85C\x01b\x87R" + b"(K\x01" + ints(shape) + dtype + b"\x89"
             + b"B" + len(raw).to_bytes(4, "little") + raw + b"tb")
    return b"\x80\x02}U\x04data" + array + b"s."


@pytest.mark.parametrize("raw, expected", [
    (b"\x80\x04\x8e" + (2**60).to_bytes(8, "little") + b"abc", "claims expected 1152921504606846976 bytes"),
    (b"\x80\x04\x95" + (2**60).to_bytes(8, "little") + b"abc", "a frame of 1152921504606846976 bytes"),
    (b"\x80\x04\x8d" + (2**60).to_bytes(8, "little") + b"abc", "claims expected 1152921504606846976 bytes"),
    (_reconstruct_pickle((700_000, 3072), b"\x00" * 16), "more than the 30720000 values the split"),
    (_reconstruct_pickle((10**12,), b"\x00" * 16), "an array of shape (1000000000000,)"),
    (_reconstruct_pickle((4, 3072), b"\x00" * 16), "over 16 bytes that do not fill it"),
    (pickle.dumps({b"data": np.zeros((1, 3072), dtype=object), b"labels": [0]}, protocol=2),
     "was refused"),
])
def test_a_crafted_batch_is_refused_before_it_allocates(cifar10_dir, raw, expected) -> None:
    """Lengths, frames and array shapes past what the file holds or the split needs: refused
    in one line under a 6 GiB address-space cap, the data folder as it was (no cache)."""
    from memory_cap import assert_refused_capped

    (cifar10_dir.root / "cifar-10-batches-py" / "data_batch_1").write_bytes(raw)
    assert_refused_capped(["train", "--model", "vit_lkca_500k", "--dataset", "cifar10",
                           "--data-dir", str(cifar10_dir.root), "--device", "cpu", "--epochs", "1",
                           "--out", str(cifar10_dir.root / "run")], expected, cifar10_dir.root)


def test_the_checked_array_builder_reads_numpy_pickles_of_every_protocol(cifar10_dir) -> None:
    from lkca.data.cifar import read_batch

    images = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    path = cifar10_dir.root / "one"
    for protocol in (2, 4, 5):
        path.write_bytes(pickle.dumps({b"data": images, b"labels": [1, 2]}, protocol=protocol))
        got, labels = read_batch(path, "cifar10", "labels", 10, 10)
        np.testing.assert_array_equal(got.transpose(0, 3, 1, 2).reshape(2, 3072), images)
        assert labels.tolist() == [1, 2]
