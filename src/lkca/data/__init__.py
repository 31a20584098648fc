"""Data sets as in-memory uint8 arrays: ``load_dataset(name, data_dir, split)`` and their metadata."""

from lkca.data.base import ArrayDataset, DatasetInfo
from lkca.data.registry import DATASETS, dataset_info, load_dataset

__all__ = ["DATASETS", "ArrayDataset", "DatasetInfo", "dataset_info", "load_dataset"]
