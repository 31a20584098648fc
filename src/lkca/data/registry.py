"""The data sets ``lkca`` knows by name: their metadata and their loaders (DESIGN.md sections 3, 6)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from lkca.data.base import ArrayDataset, DatasetInfo
from lkca.data.cifar import load_cifar10, load_cifar100
from lkca.data.digits import load_digits_split
from lkca.data.svhn import load_svhn
from lkca.data.tiny_imagenet import load_tiny_imagenet
from lkca.errors import DataFormatError

SPLITS = ("train", "test")

# Means/stds and AutoAugment policies: the SPT recipe (aanna0701/SPT_LSA_ViT utils/dataloader.py).
# Flip + crop(padding 4) for all four real data sets, as SPT does, even for SVHN.
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits", num_classes=10, img_size=8, in_chans=3,
        # images / 255 of the fixed train split (1,437 images), over all pixels and channels
        # (the 3 channels are copies): x.mean(), x.std() with numpy's default ddof=0.
        mean=(0.3054, 0.3054, 0.3054), std=(0.3760, 0.3760, 0.3760),
        autoaugment_policy=None, hflip=False, crop_padding=1,  # digits are not mirror-symmetric
    ),
    "cifar10": DatasetInfo(
        "cifar10", num_classes=10, img_size=32, in_chans=3,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        autoaugment_policy="cifar10", hflip=True, crop_padding=4,
    ),
    "cifar100": DatasetInfo(
        "cifar100", num_classes=100, img_size=32, in_chans=3,
        mean=(0.5070, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
        autoaugment_policy="cifar10", hflip=True, crop_padding=4,
    ),
    "svhn": DatasetInfo(
        "svhn", num_classes=10, img_size=32, in_chans=3,
        mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
        autoaugment_policy="svhn", hflip=True, crop_padding=4,
    ),
    "tinyimagenet": DatasetInfo(
        "tinyimagenet", num_classes=200, img_size=64, in_chans=3,
        mean=(0.4802, 0.4481, 0.3975), std=(0.2770, 0.2691, 0.2821),
        autoaugment_policy="imagenet", hflip=True, crop_padding=4,
    ),
}

_LOADERS: dict[str, Callable[[Path, str], ArrayDataset]] = {
    "digits": load_digits_split,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "svhn": load_svhn,
    "tinyimagenet": load_tiny_imagenet,
}


def dataset_info(name: str) -> DatasetInfo:
    """Metadata of data set ``name``; an unknown name raises :class:`DataFormatError`
    with the closest known name as a suggestion."""
    if name in DATASETS:
        return DATASETS[name]
    key = name.lower().replace("-", "").replace("_", "")
    if key in DATASETS:  # "CIFAR-10", "tiny_imagenet"
        return DATASETS[key]
    close = difflib.get_close_matches(key, DATASETS, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise DataFormatError(
        f"unknown dataset {name!r}; {hint}known datasets: {', '.join(DATASETS)}"
    )


def load_dataset(name: str, data_dir: str | Path | None, split: str) -> ArrayDataset:
    """Load split ``"train"`` or ``"test"`` of data set ``name`` from ``data_dir``.

    Returns uint8 images (N, H, W, 3) and int64 labels; decoded files are cached as ``.npz``
    (see :func:`lkca.data.base.cached`). ``data_dir`` may be ``None`` only for ``digits``.
    Tiny-ImageNet's "test" split is its labelled val folder.
    """
    info = dataset_info(name)
    if split not in SPLITS:
        raise DataFormatError(f"unknown split {split!r} for {info.name}; use 'train' or 'test'")
    if data_dir is None:
        if info.name != "digits":
            raise DataFormatError(
                f"{info.name} needs a data directory; pass --data-dir DIR (digits needs none)"
            )
        path = None
    else:
        path = Path(data_dir).expanduser()
    return _LOADERS[info.name](path, split)  # type: ignore[arg-type]
