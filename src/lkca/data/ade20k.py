"""ADE20K (SceneParsing, 150 classes) from the extracted ``ADEChallengeData2016.zip`` folder.

Layout: ``DIR/ADEChallengeData2016/images/{training,validation}/*.jpg`` and
``annotations/{training,validation}/*.png`` (8-bit label maps, 0 = "other", 1..150 = classes),
paired by file stem. Images differ in size, so a split is a lazy list of paths with
:meth:`ADE20K.decode`; nothing is cached as one array. Labels are reduced as MMSegmentation's
``reduce_zero_label=True``: class c becomes c - 1 and 0 becomes 255 (ignored).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from lkca.data.base import data_error, require_dir

NAME = "ade20k"
NUM_CLASSES = 150
IGNORE_INDEX = 255
FOLDER = "ADEChallengeData2016"
SPLITS = {"train": "training", "training": "training", "val": "validation",
          "validation": "validation", "test": "validation"}
LAYOUT = (f"DIR/{FOLDER}/{{images,annotations}}/{{training,validation}}/ with <stem>.jpg images "
          "and <stem>.png 8-bit label maps (0..150), as extracted from ADEChallengeData2016.zip")


@contextmanager
def _opened(path: Path, problem: str) -> Iterator[Image.Image]:
    """``Image.open(path)``, where an unreadable file or one whose header declares more pixels
    than PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, its warning made an error
    here) is a :class:`~lkca.errors.DataFormatError` "``path`` ``problem`` (why)": the pixels of
    such a file are never decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                yield im
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as err:
        raise data_error(NAME, path, f"{problem} ({err})", LAYOUT) from None


def reduce_zero_label(label: np.ndarray) -> np.ndarray:
    """(H, W) uint8 0..150 -> 0..149 with 0 -> 255 (uint8 wrap-around of label - 1)."""
    return (label.astype(np.uint8) - np.uint8(1)).astype(np.uint8)


def find_root(data_dir: Path | str) -> Path:
    """``data_dir/ADEChallengeData2016`` if it exists, else ``data_dir`` itself if it has the
    ``images`` and ``annotations`` folders; DataFormatError otherwise."""
    data_dir = Path(data_dir)
    if (data_dir / FOLDER).is_dir():
        return data_dir / FOLDER
    if (data_dir / "images").is_dir() and (data_dir / "annotations").is_dir():
        return data_dir
    return require_dir(NAME, data_dir / FOLDER, LAYOUT)


class ADE20K:
    """One split: ``image_paths[i]`` and ``label_paths[i]`` share a stem; ``len(ds)`` pairs.

    ``ds[i]`` / ``ds.decode(i)`` -> (image uint8 (H, W, 3) RGB, label uint8 (H, W) in 0..149 or
    255). Missing partners, undecodable files, image/label size mismatches, non-8-bit labels
    and label values above 150 raise :class:`DataFormatError` naming the file.
    """

    def __init__(self, data_dir: Path | str, split: str = "training") -> None:
        if split not in SPLITS:
            raise data_error(NAME, data_dir, f"has no split {split!r} (use one of "
                             f"{', '.join(sorted(SPLITS))})", LAYOUT)
        self.split = SPLITS[split]
        self.root = find_root(data_dir)
        img_dir = require_dir(NAME, self.root / "images" / self.split, LAYOUT)
        ann_dir = require_dir(NAME, self.root / "annotations" / self.split, LAYOUT)
        images = {Path(e.name).stem: Path(e.path) for e in os.scandir(img_dir)
                  if e.name.lower().endswith((".jpg", ".jpeg"))}
        labels = {Path(e.name).stem: Path(e.path) for e in os.scandir(ann_dir)
                  if e.name.lower().endswith(".png")}
        if not images:
            raise data_error(NAME, img_dir, "has no .jpg images", LAYOUT)
        for stem in sorted(images.keys() - labels.keys())[:1]:
            raise data_error(NAME, images[stem], f"has no annotation {ann_dir / (stem + '.png')}",
                             LAYOUT)
        for stem in sorted(labels.keys() - images.keys())[:1]:
            raise data_error(NAME, labels[stem], f"has no image {img_dir / (stem + '.jpg')}", LAYOUT)
        stems = sorted(images)
        self.image_paths = [images[s] for s in stems]
        self.label_paths = [labels[s] for s in stems]
        self.num_classes = NUM_CLASSES
        self.ignore_index = IGNORE_INDEX

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.decode(i)

    def decode_image(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 (H, W, 3) RGB."""
        path = self.image_paths[i]
        with _opened(path, "cannot be decoded as an image") as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)  # writable: torch warns on read-only

    def decode_label(self, i: int, reduce: bool = True) -> np.ndarray:
        """Label map ``i`` as uint8 (H, W): 0..149 and 255 if ``reduce``, else the raw 0..150."""
        path = self.label_paths[i]
        with _opened(path, "cannot be decoded as a label map") as im:
            mode = im.mode
            label = np.array(im, dtype=np.uint8) if mode in ("L", "P") else None
        if label is None:
            raise data_error(NAME, path, f"is a {mode} image, not an 8-bit label map", LAYOUT)
        top = int(label.max()) if label.size else 0
        if top > NUM_CLASSES:
            raise data_error(NAME, path, f"has label value {top}, above the {NUM_CLASSES} classes",
                             LAYOUT)
        return reduce_zero_label(label) if reduce else label

    def decode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``i``: (image uint8 (H, W, 3), reduced label uint8 (H, W)) of equal H, W."""
        image, label = self.decode_image(i), self.decode_label(i)
        if image.shape[:2] != label.shape:
            raise data_error(NAME, self.label_paths[i], f"is {label.shape[1]}x{label.shape[0]} "
                             f"but its image {self.image_paths[i].name} is "
                             f"{image.shape[1]}x{image.shape[0]} (W x H)", LAYOUT)
        return image, label

    def check_sizes(self) -> None:
        """Read every pair's headers (fast, no decoding) and raise on the first size mismatch."""
        for img_path, lbl_path in zip(self.image_paths, self.label_paths):
            with _opened(img_path, "cannot be read as an image") as im:
                img_size = im.size
            with _opened(lbl_path, "cannot be read as a label map") as im:
                lbl_size = im.size
            if img_size != lbl_size:
                raise data_error(NAME, lbl_path, f"is {lbl_size[0]}x{lbl_size[1]} but its image "
                                 f"{img_path.name} is {img_size[0]}x{img_size[1]} (W x H)", LAYOUT)


def load_ade20k(data_dir: Path | str, split: str = "training", check: bool = False) -> ADE20K:
    """The ADE20K ``split`` ("training"/"train" or "validation"/"val"/"test") under ``data_dir``;
    ``check=True`` also compares every pair's image and label sizes from the file headers."""
    ds = ADE20K(data_dir, split)
    if check:
        ds.check_sizes()
    return ds
