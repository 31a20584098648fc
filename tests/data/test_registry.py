"""The data set registry: names, metadata from docs/recipe.md, and load_dataset's checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lkca.data import DATASETS, DatasetInfo, dataset_info, load_dataset
from lkca.errors import DataFormatError, UserError


def test_names() -> None:
    assert set(DATASETS) == {"digits", "cifar10", "cifar100", "svhn", "tinyimagenet"}
    assert all(isinstance(i, DatasetInfo) and i.name == n for n, i in DATASETS.items())


@pytest.mark.parametrize("name, classes, size, mean, std, policy", [
    ("cifar10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "cifar10"),
    ("cifar100", 100, 32, (0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "cifar10"),
    ("svhn", 10, 32, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), "svhn"),
    ("tinyimagenet", 200, 64, (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821), "imagenet"),
])
def test_recipe_values(name, classes, size, mean, std, policy) -> None:
    info = dataset_info(name)
    assert (info.num_classes, info.img_size, info.in_chans) == (classes, size, 3)
    assert (info.mean, info.std, info.autoaugment_policy) == (mean, std, policy)
    assert (info.hflip, info.crop_padding) == (True, 4)


@pytest.mark.parametrize("typo, match", [
    ("cifar", "cifar10"), ("tinyimagnet", "tinyimagenet"), ("svnh", "svhn"), ("digit", "digits"),
])
def test_unknown_name_suggests_close_match(typo: str, match: str) -> None:
    with pytest.raises(DataFormatError) as info:
        dataset_info(typo)
    msg = str(info.value)
    assert f"did you mean '{match}'?" in msg and "\n" not in msg
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def test_unknown_name_without_match_lists_all() -> None:
    with pytest.raises(DataFormatError, match="known datasets: digits, cifar10") as info:
        load_dataset("coco", None, "train")
    assert "did you mean" not in str(info.value)


def test_spelling_variants() -> None:
    assert dataset_info("CIFAR-10").name == "cifar10"
    assert dataset_info("tiny_imagenet").name == "tinyimagenet"


def test_bad_split(cifar10_dir) -> None:
    with pytest.raises(DataFormatError, match="unknown split 'val'"):
        load_dataset("cifar10", cifar10_dir.root, "val")


def test_data_dir_required() -> None:
    with pytest.raises(DataFormatError, match="--data-dir"):
        load_dataset("svhn", None, "train")


def test_str_and_home_relative_data_dir(svhn_dir, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    rel = "~/" + str(svhn_dir.root.relative_to(tmp_path))
    assert len(load_dataset("svhn", rel, "test")) == 3


def test_import_stays_light() -> None:
    # torch comes with the lkca package itself; the data set decoders load only when used
    code = ("import sys, lkca.data; heavy = {'sklearn', 'scipy.io', 'PIL.Image'}"
            "; print(sorted(heavy & set(sys.modules)))")
    src = str(Path(__file__).parents[2] / "src")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": src})
    assert out.stdout.strip() == "[]"
