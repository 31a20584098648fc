"""Tiny-ImageNet-200 from the extracted ``tiny-imagenet-200.zip`` folder.

``DIR/tiny-imagenet-200/wnids.txt`` fixes the class order (line i is class i);
``train/<wnid>/images/*.JPEG`` is the training split and the labelled ``val/`` folder
(``val/images/*.JPEG`` + ``val/val_annotations.txt``) serves as the "test" split, as in the paper.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from lkca.bounded_files import FileLimit, read_text
from lkca.data.base import (
    ArrayDataset,
    DatasetInfo,
    cached,
    data_error,
    require_dir,
    require_file,
)
from lkca.data.registry import register_dataset

NAME = "tinyimagenet"
SIZE = 64
LAYOUT = (
    "DIR/tiny-imagenet-200/{wnids.txt,train/<wnid>/images/*.JPEG,val/images/*.JPEG,"
    "val/val_annotations.txt} as extracted from "
    "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
)
PROGRESS_MIN_FILES = 1000  # below this a progress bar is noise


def read_wnids(root: Path) -> list[str]:
    """Class ids in ``wnids.txt`` order (one per line, blank lines ignored)."""
    path = require_file(NAME, root / "wnids.txt", LAYOUT)
    wnids = [line.strip() for line in _text(path).splitlines() if line.strip()]
    if not wnids:
        raise data_error(NAME, path, "is empty", LAYOUT)
    seen = set()
    for wnid in wnids:
        if wnid in seen:
            raise data_error(NAME, path, f"lists {wnid} twice", LAYOUT)
        seen.add(wnid)
    return wnids


MAX_TEXT_BYTES = 16 * 1024 * 1024  # wnids.txt is 2 kB, val_annotations.txt 300 kB


def _text(path: Path) -> str:
    """The UTF-8 text of a list file, within :data:`MAX_TEXT_BYTES` (a DataFormatError naming
    it otherwise)."""
    try:
        return read_text(path, MAX_TEXT_BYTES)
    except FileLimit as err:
        raise data_error(NAME, path, err.problem, LAYOUT) from None
    except OSError as err:
        raise data_error(NAME, path, f"cannot be read ({err.strerror or err})", LAYOUT) from None


def list_train(root: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    """Training image paths (sorted within each class) and their class indices."""
    paths: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        folder = require_dir(NAME, root / "train" / wnid / "images", LAYOUT)
        entries = [e for e in os.scandir(folder) if e.name.endswith(".JPEG")]
        for entry in entries:
            if not entry.is_file():  # a dangling link, a folder, a FIFO: never opened
                raise data_error(NAME, folder / entry.name, "is not a readable file (a broken "
                                 "link, a folder or a device)", LAYOUT)
        files = sorted(e.name for e in entries)
        if not files:
            raise data_error(NAME, folder, "has no .JPEG images", LAYOUT)
        paths += [folder / f for f in files]
        labels += [label] * len(files)
    return paths, labels


def list_val(root: Path, wnids: list[str]) -> tuple[list[Path], list[int], Path]:
    """Validation image paths and labels, in ``val_annotations.txt`` order; also that file."""
    ann = require_file(NAME, root / "val" / "val_annotations.txt", LAYOUT)
    folder = require_dir(NAME, root / "val" / "images", LAYOUT)
    index = {wnid: i for i, wnid in enumerate(wnids)}
    paths: list[Path] = []
    labels: list[int] = []
    for lineno, line in enumerate(_text(ann).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise data_error(
                NAME, ann, f"line {lineno} is not 'filename<TAB>wnid<TAB>x<TAB>y<TAB>w<TAB>h'",
                LAYOUT,
            )
        filename, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in index:
            raise data_error(
                NAME, ann, f"line {lineno} names wnid {wnid!r}, which is not in wnids.txt", LAYOUT
            )
        paths.append(require_file(NAME, folder / filename, LAYOUT))
        labels.append(index[wnid])
    if not paths:
        raise data_error(NAME, ann, "lists no images", LAYOUT)
    return paths, labels, ann


def decode_image(path: Path) -> np.ndarray:
    """One JPEG as (64, 64, 3) uint8 RGB (grayscale and CMYK files are converted)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.size != (SIZE, SIZE):  # from the header: a huge image is never decoded
                raise data_error(NAME, path, f"is {img.size[0]}x{img.size[1]}, not 64x64", LAYOUT)
            arr = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as err:
        raise data_error(
            NAME, path, f"is corrupt or not an image ({type(err).__name__}: {err})", LAYOUT
        ) from None
    if arr.shape != (SIZE, SIZE, 3):
        raise data_error(NAME, path, f"is {arr.shape[1]}x{arr.shape[0]}, not 64x64", LAYOUT)
    return arr


def decode_images(paths: list[Path], desc: str) -> np.ndarray:
    """Decode many JPEGs into one (N, 64, 64, 3) uint8 array, in parallel threads.

    PIL releases the GIL while decoding, so threads scale with cores (~100k files in seconds).
    """
    from tqdm.auto import tqdm

    out = np.empty((len(paths), SIZE, SIZE, 3), dtype=np.uint8)

    def work(chunk: range) -> int:
        for i in chunk:
            out[i] = decode_image(paths[i])
        return len(chunk)

    chunks = [range(i, min(i + 64, len(paths))) for i in range(0, len(paths), 64)]
    workers = min(32, (os.cpu_count() or 1) + 4)
    quiet = len(paths) <= PROGRESS_MIN_FILES or not sys.stderr.isatty()  # a log: no redraws
    with ThreadPoolExecutor(workers) as pool, tqdm(
        total=len(paths), desc=desc, unit="img", disable=quiet
    ) as bar:
        futures = [pool.submit(work, c) for c in chunks]
        try:
            for future in as_completed(futures):
                bar.update(future.result())
        except BaseException:  # a bad file: stop decoding the rest before raising
            for future in futures:
                future.cancel()
            raise
    return out


# Mean/std and AutoAugment policy: the SPT recipe (aanna0701/SPT_LSA_ViT utils/dataloader.py).
@register_dataset(DatasetInfo(
    NAME, num_classes=200, img_size=SIZE, in_chans=3,
    mean=(0.4802, 0.4481, 0.3975), std=(0.2770, 0.2691, 0.2821),
    autoaugment_policy="imagenet", hflip=True, crop_padding=4,
))
def load_tiny_imagenet(data_dir: Path, split: str) -> ArrayDataset:
    """Tiny-ImageNet: train 100,000 / test (= val) 10,000 images, (N, 64, 64, 3) uint8.

    ``num_classes`` is the number of wnids in ``wnids.txt`` (200 for the real data set).
    """
    root = require_dir(NAME, require_dir(NAME, data_dir, LAYOUT) / "tiny-imagenet-200", LAYOUT)
    wnids = read_wnids(root)
    if split == "train":
        paths, labels = list_train(root, wnids)
        sources = [root / "wnids.txt", *paths]
    else:
        paths, labels, ann = list_val(root, wnids)
        sources = [root / "wnids.txt", ann, *paths]

    def decode() -> ArrayDataset:
        images = decode_images(paths, f"{NAME} {split}")
        return ArrayDataset(images, np.asarray(labels, np.int64), len(wnids), NAME, split)

    return cached(NAME, split, sources, decode, data_dir=data_dir)
