"""Data sets as in-memory uint8 arrays: ``load_dataset(name, data_dir, split)`` and their metadata."""

# Importing the loader modules runs their @register_dataset decorators; digits, the embedded
# default, first: the order of DATASETS is the order of the names in messages.
import lkca.data.digits  # noqa: F401, I001
import lkca.data.cifar  # noqa: F401
import lkca.data.svhn  # noqa: F401
import lkca.data.tiny_imagenet  # noqa: F401
from lkca.data.base import ArrayDataset, DatasetInfo
from lkca.data.registry import DATASETS, dataset_info, load_dataset, register_dataset

__all__ = ["DATASETS", "ArrayDataset", "DatasetInfo", "dataset_info", "load_dataset",
           "register_dataset"]
