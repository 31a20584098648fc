"""The data sets ``lkca`` knows by name: ``@register_dataset`` loaders, their metadata and
``load_dataset`` (the registry style of :mod:`lkca.models.registry`; docs/datasets.md).

Each loader module registers its data sets with their :class:`DatasetInfo`; importing
:mod:`lkca.data` imports them all, so :data:`DATASETS` is complete whenever this module is used.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from lkca.data.base import ArrayDataset, DatasetInfo
from lkca.errors import DataFormatError

SPLITS = ("train", "test")

Loader = Callable[[Path, str], ArrayDataset]
DATASETS: dict[str, DatasetInfo] = {}  # filled by @register_dataset
_LOADERS: dict[str, Loader] = {}


def register_dataset(info: DatasetInfo) -> Callable[[Loader], Loader]:
    """Register ``loader(data_dir, split) -> ArrayDataset`` as the data set ``info.name``."""

    def wrap(loader: Loader) -> Loader:
        if info.name in DATASETS:
            raise ValueError(f"data set {info.name!r} is registered twice")
        DATASETS[info.name] = info
        _LOADERS[info.name] = loader
        return loader

    return wrap


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
    (see :func:`lkca.data.base.cached`). ``data_dir`` is ``None`` for ``digits`` (bundled; a
    folder is refused rather than ignored) and a folder for every other data set.
    Tiny-ImageNet's "test" split is its labelled val folder. A split that holds no image is
    refused here (DataFormatError), before a run trains an epoch on it or divides by its size.
    """
    info = dataset_info(name)
    if split not in SPLITS:
        raise DataFormatError(f"unknown split {split!r} for {info.name}; use 'train' or 'test'")
    if data_dir is not None and info.name == "digits":
        raise DataFormatError(
            f"digits are bundled with scikit-learn and read no data directory, so --data-dir "
            f"{data_dir} would be ignored; leave --data-dir out, or name the data set it holds "
            "with --dataset (cifar10, cifar100, svhn, tinyimagenet)"
        )
    if data_dir is None:
        if info.name != "digits":
            raise DataFormatError(
                f"{info.name} needs a data directory; pass --data-dir DIR (digits needs none)"
            )
        path = None
    else:
        path = Path(data_dir).expanduser()
    data = _LOADERS[info.name](path, split)  # type: ignore[arg-type]
    if len(data) == 0:
        where = f" in {path}" if path is not None else ""
        raise DataFormatError(f"the {split} split of {info.name}{where} holds no images; restore "
                              "its files as distributed (docs/datasets.md)")
    return data
