"""In-memory data set type, data set metadata, shared validation and the uint8 array cache.

Every loader decodes its files once into an :class:`ArrayDataset` (uint8 images, int64 labels) and
:func:`cached` keeps that result as an uncompressed ``.npz`` so the next run starts in a second.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lkca.atomic_files import write_atomic
from lkca.errors import DataFormatError, OutputError

CACHE_VERSION = 1  # bump when a loader's output changes, so old caches are not reused


@dataclass
class ArrayDataset:
    """A whole split held in memory.

    ``images``: uint8, (N, H, W, C) with C = 3 for every built-in data set.
    ``labels``: int64, (N,), each in ``[0, num_classes)``.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str
    split: str

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"{self.name}: images must be uint8 (N, H, W, C), "
                f"got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.dtype != np.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(
                f"{self.name}: labels must be int64 ({len(self.images)},), "
                f"got {self.labels.dtype} {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DatasetInfo:
    """What the model and the augmentation recipe need to know about a data set (docs/recipe.md)."""

    name: str
    num_classes: int
    img_size: int
    in_chans: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    autoaugment_policy: str | None  # "cifar10", "svhn", "imagenet" or None
    hflip: bool
    crop_padding: int
    class_names: tuple[str, ...] | None = None  # where the data set fixes them without its files


# --- validation shared by the loaders ---------------------------------------------------------

def data_error(name: str, path: Path | str, problem: str, layout: str) -> DataFormatError:
    """Build the one-line error ``"<name>: <path> <problem>; expected <layout>"``."""
    problem = " ".join(str(problem).split())  # an embedded exception text must stay on one line
    return DataFormatError(f"{name}: {path} {problem}; expected {layout}")


def require_dir(name: str, path: Path, layout: str) -> Path:
    """Return ``path`` if it is a directory, else raise :class:`DataFormatError`."""
    if not path.is_dir():
        problem = "is not a directory" if path.exists() else "does not exist"
        raise data_error(name, path, problem, layout)
    return path


def require_file(name: str, path: Path, layout: str) -> Path:
    """Return ``path`` if it is a file, else raise :class:`DataFormatError`."""
    if not path.is_file():
        problem = "is not a file" if path.exists() else "is missing"
        raise data_error(name, path, problem, layout)
    return path


def check_images(
    images: object, *, name: str, path: Path | str, size: tuple[int, int], layout: str
) -> np.ndarray:
    """Check decoded images are uint8 (N, H, W, 3) with (H, W) == ``size``; return them."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        got = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise data_error(name, path, f"has images of type {got}, not uint8", layout)
    if images.ndim != 4 or images.shape[1:] != (*size, 3):
        raise data_error(
            name, path, f"has images of shape {images.shape}, not (N, {size[0]}, {size[1]}, 3)",
            layout,
        )
    return images


def check_labels(
    labels: object, *, name: str, path: Path | str, num_classes: int, count: int, layout: str,
    valid: str | None = None,
) -> np.ndarray:
    """Convert labels to int64 (count,), checking each lies in ``[0, num_classes)``.

    ``valid`` describes the allowed range in the error message (default ``[0, num_classes)``).
    """
    try:
        arr = np.asarray(labels)
    except (TypeError, ValueError) as err:
        raise data_error(name, path, f"has unreadable labels ({err})", layout) from None
    if arr.dtype.kind == "f" and arr.shape == (count,):  # MATLAB files store labels as doubles
        bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < 0) | (arr >= num_classes)
        if bad.any():  # refused as read: a cast would wrap 1e300 to -2**63
            raise data_error(
                name, path, f"has label {float(arr[bad][0])!r} at index {int(np.argmax(bad))}, "
                f"not an integer in {valid or f'[0, {num_classes})'}", layout,
            )
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iub" or arr.shape != (count,):
        raise data_error(
            name, path, f"has labels of type {arr.dtype} and shape {arr.shape}, "
            f"not {count} integers", layout,
        )
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= num_classes)
    if bad.any():
        raise data_error(
            name, path, f"has label {arr[bad][0]} at index {int(np.argmax(bad))}, "
            f"outside {valid or f'[0, {num_classes})'}", layout,
        )
    return arr


# --- the uint8 cache --------------------------------------------------------------------------

def cache_dirs(data_dir: Path | None) -> list[Path]:
    """Candidate cache folders in order of preference.

    ``<data_dir>/.lkca_cache`` keeps the cache beside the data; ``$LKCA_CACHE_DIR`` and then
    ``~/.cache/lkca`` are used when the data directory is read-only.
    """
    dirs = [data_dir / ".lkca_cache"] if data_dir is not None else []
    if os.environ.get("LKCA_CACHE_DIR"):
        dirs.append(Path(os.environ["LKCA_CACHE_DIR"]).expanduser())
    dirs.append(Path.home() / ".cache" / "lkca")
    return dirs


def source_key(name: str, split: str, sources: Sequence[Path]) -> str:
    """Hash of the sources' absolute paths, sizes and modification times (hex, 20 chars)."""
    h = hashlib.sha256(f"v{CACHE_VERSION}\0{name}\0{split}".encode())
    for src in sources:
        st = os.stat(src)
        h.update(f"\0{os.path.abspath(src)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _read_cache(path: Path, key: str, name: str, split: str) -> ArrayDataset | None:
    try:
        # our own handle: np.load leaks its file when the zip directory is unreadable
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            ds = ArrayDataset(z["images"], z["labels"], int(z["num_classes"]), name, split)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # corrupt or foreign: rebuild
    if len(ds) and (ds.labels.min() < 0 or ds.labels.max() >= ds.num_classes):
        return None
    return ds


def _write_cache(folder: Path, path: Path, key: str, ds: ArrayDataset) -> None:
    """Write the cache file atomically (readers see the old file or the complete new one); a
    folder, device or FIFO at its name is never replaced (OutputError: the next folder)."""
    write_atomic(path, lambda f: np.savez(f, images=ds.images, labels=ds.labels,
                                          key=np.array(key), num_classes=np.array(ds.num_classes)))
    stem = path.name.rsplit("-", 1)[0]
    for old in folder.glob(f"{stem}-*.npz"):  # caches of older versions of the same files
        if old != path:
            old.unlink(missing_ok=True)


def cached(
    name: str,
    split: str,
    sources: Sequence[Path],
    decode: Callable[[], ArrayDataset],
    cache_dir: Path | None = None,
    *,
    data_dir: Path | None = None,
) -> ArrayDataset:
    """Return ``decode()``, reading it from / storing it in a ``.npz`` cache.

    The file ``<name>-<split>-<place>-<key>.npz`` is keyed by :func:`source_key`, so touching,
    replacing or moving a source file rebuilds it (and deletes the stale file); ``place`` hashes
    the sources' folder. ``cache_dir`` forces one folder; otherwise the folders of
    :func:`cache_dirs` (for ``data_dir``) are searched and the first writable one receives a new
    cache. A corrupt cache file is ignored and overwritten. If no folder is writable the data is
    returned uncached, with a warning.
    """
    if cache_dir is not None:
        folders = [Path(cache_dir)]
    else:
        folders = cache_dirs(data_dir)
    key = source_key(name, split, sources)
    # the sources' folder in the name: stale-file cleanup must not touch another copy's cache
    place = os.path.commonpath([os.path.abspath(s) for s in sources]) if sources else ""
    filename = f"{name}-{split}-{hashlib.sha256(place.encode()).hexdigest()[:8]}-{key}.npz"
    for folder in folders:
        if (folder / filename).is_file():
            ds = _read_cache(folder / filename, key, name, split)
            if ds is not None:
                return ds
    ds = decode()
    errors = []
    for folder in folders:
        try:
            _write_cache(folder, folder / filename, key, ds)
            return ds
        except OutputError as err:  # read-only data directory, full disk, ...: the next folder
            errors.append(f"{folder} ({err})")
    warnings.warn(f"{name}: could not write a cache in any of {', '.join(errors)}", stacklevel=2)
    return ds

