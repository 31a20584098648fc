"""The uint8 .npz cache: reuse, invalidation, corruption recovery and the fallback folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lkca.data import ArrayDataset, cifar, load_dataset
from lkca.data.base import cached


def _npz(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("decoded the source files although a valid cache exists")

    monkeypatch.setattr(cifar, "read_batch", fail)


def test_second_load_reads_cache(cifar10_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset("cifar10", cifar10_dir.root, "train")
    (cache,) = _npz(cifar10_dir.root / ".lkca_cache")
    assert cache.name.startswith("cifar10-train-")
    _forbid_decoding(monkeypatch)
    second = load_dataset("cifar10", cifar10_dir.root, "train")
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.images.dtype == np.uint8 and second.labels.dtype == np.int64
    assert (second.num_classes, second.name, second.split) == (10, "cifar10", "train")
    assert not list((cifar10_dir.root / ".lkca_cache").glob("*.tmp"))


def test_touching_a_source_invalidates(cifar10_dir) -> None:
    load_dataset("cifar10", cifar10_dir.root, "test")
    (old,) = _npz(cifar10_dir.root / ".lkca_cache")
    src = cifar10_dir.root / "cifar-10-batches-py" / "test_batch"
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    ds = load_dataset("cifar10", cifar10_dir.root, "test")
    (new,) = _npz(cifar10_dir.root / ".lkca_cache")  # the stale file was replaced
    assert new != old
    np.testing.assert_array_equal(ds.images, cifar10_dir.test_images)


def test_changed_source_content_is_reloaded(svhn_dir, svhn_writer) -> None:
    load_dataset("svhn", svhn_dir.root, "test")
    x = np.full((2, 32, 32, 3), 7, np.uint8)
    svhn_writer(svhn_dir.root / "test_32x32.mat", x, np.array([3, 0]))
    ds = load_dataset("svhn", svhn_dir.root, "test")
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, [3, 0])


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty"])
def test_corrupt_cache_is_rebuilt(cifar10_dir, damage: str) -> None:
    load_dataset("cifar10", cifar10_dir.root, "test")
    (cache,) = _npz(cifar10_dir.root / ".lkca_cache")
    raw = cache.read_bytes()
    cache.write_bytes({"garbage": b"\x00" * 100, "truncate": raw[: len(raw) // 2],
                       "empty": b""}[damage])
    ds = load_dataset("cifar10", cifar10_dir.root, "test")
    np.testing.assert_array_equal(ds.images, cifar10_dir.test_images)
    with np.load(cache) as z:  # rewritten whole
        np.testing.assert_array_equal(z["images"], cifar10_dir.test_images)


def test_fallback_when_data_dir_unwritable(cifar10_dir, tmp_path: Path) -> None:
    # a plain file where the cache folder should be: mkdir fails even for root
    (cifar10_dir.root / ".lkca_cache").write_text("")
    ds = load_dataset("cifar10", cifar10_dir.root, "test")
    (cache,) = _npz(tmp_path / "env-cache")  # $LKCA_CACHE_DIR, set by conftest
    np.testing.assert_array_equal(ds.images, cifar10_dir.test_images)
    assert load_dataset("cifar10", cifar10_dir.root, "test").images.shape == (4, 32, 32, 3)
    assert _npz(tmp_path / "env-cache") == [cache]


def test_home_cache_without_env(cifar10_dir, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LKCA_CACHE_DIR")
    (cifar10_dir.root / ".lkca_cache").write_text("")
    load_dataset("cifar10", cifar10_dir.root, "test")
    assert len(_npz(tmp_path / "home" / ".cache" / "lkca")) == 1


def _counting_decode(calls: list[int]):
    def decode() -> ArrayDataset:
        calls.append(1)
        return ArrayDataset(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 3]), 5, "toy", "train")

    return decode


def test_no_writable_folder_warns_and_returns(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    calls: list[int] = []
    with pytest.warns(UserWarning, match="could not write a cache"):
        ds = cached("toy", "train", [src], _counting_decode(calls), cache_dir=blocker / "sub")
    assert len(ds) == 2 and calls == [1]


def test_explicit_cache_dir_and_num_classes(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    calls: list[int] = []
    for _ in range(2):
        ds = cached("toy", "train", [src], _counting_decode(calls), cache_dir=tmp_path / "c")
    assert calls == [1] and ds.num_classes == 5
    np.testing.assert_array_equal(ds.labels, [0, 3])


def test_two_copies_share_a_fallback_folder(cifar10_dir, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "copy"
    shutil.copytree(cifar10_dir.root, other)
    for root in (cifar10_dir.root, other):
        (root / ".lkca_cache").write_text("")  # force both into $LKCA_CACHE_DIR
        load_dataset("cifar10", root, "test")
    assert len(_npz(tmp_path / "env-cache")) == 2  # neither deleted the other's cache
