"""A prediction picture: the input image and its colour-coded segmentation side by side.

Palette: ADE20K's official colours are a hand-made table of 150 RGB triples (CSAIL's scene-parsing
toolkit), not the output of a rule, so they are not reproduced here. ``palette()`` instead
generates the PASCAL VOC colour map (each index's bits spread over the high bits of R, G and B),
which is deterministic and gives 150 distinct colours; class c (0-based, after reduce-zero-label)
gets VOC colour c + 1, so no class is black, and black marks ignored pixels (255).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lkca.atomic_files import write_atomic
from lkca.errors import DataFormatError
from lkca.seg.segmentor import Segmentor
from lkca.seg.transforms import resize_for_test


def palette(num_classes: int = 150) -> np.ndarray:
    """(num_classes, 3) uint8: the VOC bit-interleaving colour of index c + 1 for class c."""
    colours = np.zeros((num_classes, 3), dtype=np.uint8)
    for c in range(num_classes):
        index, rgb = c + 1, [0, 0, 0]
        for bit in range(7, -1, -1):  # index bits 0, 1, 2 -> R, G, B bit 7; bits 3, 4, 5 -> bit 6 ...
            for channel in range(3):
                rgb[channel] |= ((index >> channel) & 1) << bit
            index >>= 3
        colours[c] = rgb
    return colours


def colorize(pred: np.ndarray, num_classes: int = 150) -> np.ndarray:
    """Class map (H, W) int -> (H, W, 3) uint8 RGB; values outside the classes (e.g. 255) black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:num_classes] = palette(num_classes)
    return table[np.clip(pred, 0, 255).astype(np.uint8)]


def side_by_side(image: np.ndarray, pred: np.ndarray, num_classes: int = 150) -> Image.Image:
    """The image (H, W, 3) on the left, its colour-coded prediction (H, W) on the right: 2W x H."""
    h, w = pred.shape
    canvas = Image.new("RGB", (2 * w, h))
    canvas.paste(Image.fromarray(image), (0, 0))
    canvas.paste(Image.fromarray(colorize(pred, num_classes)), (w, 0))
    return canvas


def load_image(path: Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB, or a DataFormatError naming it."""
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)  # writable, for torch
    except FileNotFoundError:
        raise DataFormatError(f"image {path} does not exist; check the path") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise DataFormatError(f"image {path} cannot be decoded ({err}); pass a JPEG or PNG") from None


@torch.no_grad()
def predict_image(model: Segmentor, image: np.ndarray, mode: str = "whole", crop_size: int = 512,
                  stride: int = 341, scale: tuple[int, int] = (2048, 512)) -> np.ndarray:
    """Class map (H, W) int64 of an (H, W, 3) uint8 image, with the test pipeline of
    :func:`lkca.seg.engine.evaluate` (keep-ratio resize to ``scale``, logits resized back)."""
    device = next(model.parameters()).device
    x = resize_for_test(image, device, scale)
    size = image.shape[:2]
    logits = (model.predict_whole(x, out_size=size) if mode == "whole" else
              model.predict_slide(x, crop_size, stride, out_size=size))
    return logits.argmax(1)[0].cpu().numpy()


def save_png(picture: Image.Image, path: Path) -> None:
    """Write ``picture`` to ``path`` as PNG, atomically (:func:`lkca.atomic_files.write_atomic`)."""
    write_atomic(path, lambda f: picture.save(f, format="PNG"))
