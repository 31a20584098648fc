"""Tiny-ImageNet loader: wnids order, val annotations, grayscale JPEGs and validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lkca.data import load_dataset
from lkca.data.tiny_imagenet import decode_images
from lkca.errors import DataFormatError


def _base(d) -> Path:
    return d.root / "tiny-imagenet-200"


def test_train_follows_wnids_order(tiny_dir) -> None:
    ds = load_dataset("tinyimagenet", tiny_dir.root, "train")
    assert (ds.name, ds.split, ds.num_classes) == ("tinyimagenet", "train", 3)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (6, 64, 64, 3)
    np.testing.assert_array_equal(ds.labels, [0, 0, 1, 1, 2, 2])
    # flat colours survive JPEG to within a few levels
    assert np.abs(ds.images.astype(int) - tiny_dir.train_images).max() <= 3


def test_test_split_is_val_with_annotations(tiny_dir) -> None:
    ds = load_dataset("tinyimagenet", tiny_dir.root, "test")
    assert ds.images.shape == (4, 64, 64, 3) and ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, tiny_dir.test_labels)
    assert np.abs(ds.images.astype(int) - tiny_dir.test_images).max() <= 3
    grey = ds.images[1]  # val_1.JPEG is a one-channel JPEG
    with Image.open(_base(tiny_dir) / "val" / "images" / "val_1.JPEG") as img:
        assert img.mode == "L"
    assert (grey == grey[..., :1]).all()


def test_decode_many_in_threads(tiny_dir) -> None:
    paths = sorted((_base(tiny_dir) / "train").glob("*/images/*.JPEG")) * 200
    images = decode_images(paths, "test")  # 1200 files: also exercises the progress bar
    assert images.shape == (1200, 64, 64, 3)
    np.testing.assert_array_equal(images[6:12], images[:6])


def _expect_error(d, path: Path, *words: str, split: str = "train") -> None:
    with pytest.raises(DataFormatError) as info:
        load_dataset("tinyimagenet", d.root, split)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and "tiny-imagenet-200.zip" in msg, msg
    for word in words:
        assert word in msg, msg


def test_missing_wnids(tiny_dir) -> None:
    path = _base(tiny_dir) / "wnids.txt"
    path.unlink()
    _expect_error(tiny_dir, path, "is missing")


def test_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(DataFormatError, match="tiny-imagenet-200 does not exist"):
        load_dataset("tinyimagenet", tmp_path / "data", "train")


def test_missing_class_folder(tiny_dir) -> None:
    folder = _base(tiny_dir) / "train" / "n01443537" / "images"
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    _expect_error(tiny_dir, folder, "does not exist")


@pytest.mark.parametrize("split", ["train", "test"])
def test_corrupt_image_names_the_file(tiny_dir, split: str) -> None:
    if split == "train":
        path = _base(tiny_dir) / "train" / "n04067472" / "images" / "n04067472_1.JPEG"
    else:
        path = _base(tiny_dir) / "val" / "images" / "val_2.JPEG"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    _expect_error(tiny_dir, path, "corrupt", split=split)


def test_truncated_image(tiny_dir) -> None:
    path = _base(tiny_dir) / "val" / "images" / "val_0.JPEG"
    Image.effect_noise((64, 64), 64).convert("RGB").save(path, quality=95)
    path.write_bytes(path.read_bytes()[:400])
    _expect_error(tiny_dir, path, split="test")


def test_wrong_image_size(tiny_dir) -> None:
    path = _base(tiny_dir) / "val" / "images" / "val_3.JPEG"
    Image.new("RGB", (32, 48)).save(path)
    _expect_error(tiny_dir, path, "32x48", split="test")


def test_unknown_wnid_in_val_annotations(tiny_dir) -> None:
    ann = _base(tiny_dir) / "val" / "val_annotations.txt"
    lines = ann.read_text().splitlines()
    lines[2] = "val_2.JPEG\tn99999999\t0\t0\t63\t63"
    ann.write_text("\n".join(lines) + "\n")
    _expect_error(tiny_dir, ann, "line 3", "n99999999", split="test")


def test_val_image_listed_but_missing(tiny_dir) -> None:
    path = _base(tiny_dir) / "val" / "images" / "val_1.JPEG"
    path.unlink()
    _expect_error(tiny_dir, path, "is missing", split="test")


def test_duplicate_wnid(tiny_dir) -> None:
    path = _base(tiny_dir) / "wnids.txt"
    path.write_text("n01443537\nn01443537\n")
    _expect_error(tiny_dir, path, "twice")


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    """A PNG declaring 20000x20000 pixels: refused from its header, never decoded."""
    from png_headers import write_header_only_png

    from lkca.data.tiny_imagenet import decode_image
    from lkca.errors import DataFormatError

    path = write_header_only_png(tmp_path / "bomb.JPEG", 20000, 20000)
    with pytest.raises(DataFormatError, match="bomb.JPEG") as err:
        decode_image(path)
    assert "\n" not in str(err.value)


def test_a_dangling_image_link_is_refused_naming_it(tiny_dir) -> None:
    folder = sorted((_base(tiny_dir) / "train").iterdir())[0] / "images"
    link = folder / "zz_dangling.JPEG"
    link.symlink_to(folder / "nowhere.JPEG")
    _expect_error(tiny_dir, link, "is not a readable file (a broken link")


@pytest.mark.parametrize("name", ["wnids.txt", "val/val_annotations.txt"])
def test_a_list_file_that_is_not_utf8_is_refused_naming_it(tiny_dir, name) -> None:
    path = _base(tiny_dir) / name
    path.write_bytes(path.read_bytes() + b"\xff\xfe\n")
    _expect_error(tiny_dir, path, "is not UTF-8 text (byte", split="test")
